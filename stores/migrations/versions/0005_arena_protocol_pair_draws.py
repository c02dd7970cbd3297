"""Arena evaluation (CodeArena), the evaluation protocol of a run, and a DPO run's pair draws.

- arena_sets, arena_questions, arena_answers, arena_runs, arena_judgements (#17).
- eval_runs.protocol: runs stored before it used the workbench layout (server default), new runs
  default to codefavor (the model's default).
- train_pair_draws: the pair a DPO run drew for each group at each epoch.

A store written by a workbench between the arena, training and protocol branches and alembic may
hold some of these already (they were made by create_all): those are left as they are.

Revision ID: 0005_arena_protocol_pair_draws
Revises: 0004_jobs_bus
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_arena_protocol_pair_draws"
down_revision = "0004_jobs_bus"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names())
    if "arena_sets" not in tables:
        op.create_table(
            "arena_sets",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("name", sa.String(), nullable=False),
            sa.Column("source", sa.String(), nullable=False),
            sa.Column("content_hash", sa.String(), nullable=False),
            sa.Column("question_count", sa.Integer(), nullable=False),
            sa.Column("created_at", TIME, nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("name"),
            sa.UniqueConstraint("content_hash"),
        )
    if "arena_questions" not in tables:
        op.create_table(
            "arena_questions",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("set_id", sa.Integer(), nullable=False),
            sa.Column("position", sa.Integer(), nullable=False),
            sa.Column("external_id", sa.String(), nullable=False),
            sa.Column("question", sa.Text(), nullable=False),
            sa.Column("category", sa.String(), nullable=False),
            sa.Column("language", sa.String(), nullable=False),
            sa.ForeignKeyConstraint(["set_id"], ["arena_sets.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("set_id", "external_id", name="uq_arena_question"),
        )
        op.create_index("ix_arena_questions_set_id", "arena_questions", ["set_id"])
    if "arena_answers" not in tables:
        op.create_table(
            "arena_answers",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("question_id", sa.Integer(), nullable=False),
            sa.Column("model", sa.String(), nullable=False),
            sa.Column("source", sa.String(), nullable=False),
            sa.Column("text", sa.Text(), nullable=False),
            sa.Column("finish_reason", sa.String(), nullable=False),
            sa.Column("prompt_tokens", sa.Integer(), nullable=False),
            sa.Column("completion_tokens", sa.Integer(), nullable=False),
            sa.Column("latency_s", sa.Float(), nullable=False),
            sa.Column("cached", sa.Boolean(), nullable=False),
            sa.Column("lineage_json", sa.Text(), nullable=False),
            sa.Column("job_id", sa.Integer(), nullable=True),
            sa.Column("created_at", TIME, nullable=False),
            sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
            sa.ForeignKeyConstraint(["question_id"], ["arena_questions.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("question_id", "model", name="uq_arena_answer"),
        )
        op.create_index("ix_arena_answers_model", "arena_answers", ["model"])
        op.create_index("ix_arena_answers_question_id", "arena_answers", ["question_id"])
    if "arena_runs" not in tables:
        op.create_table(
            "arena_runs",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("set_id", sa.Integer(), nullable=False),
            sa.Column("candidate", sa.String(), nullable=False),
            sa.Column("baseline", sa.String(), nullable=False),
            sa.Column("judge_spec", sa.String(), nullable=False),
            sa.Column("judge_kind", sa.String(), nullable=False),
            sa.Column("orders", sa.String(), nullable=False),
            sa.Column("prompt_version", sa.String(), nullable=False),
            sa.Column("parser_version", sa.String(), nullable=False),
            sa.Column("lineage_json", sa.Text(), nullable=False),
            sa.Column("state", sa.String(), nullable=False),
            sa.Column("total", sa.Integer(), nullable=False),
            sa.Column("job_id", sa.Integer(), nullable=True),
            sa.Column("created_at", TIME, nullable=False),
            sa.Column("finished_at", TIME, nullable=True),
            sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
            sa.ForeignKeyConstraint(["set_id"], ["arena_sets.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("set_id", "candidate", "baseline", "judge_spec", "orders", name="uq_arena_run"),
        )
        op.create_index("ix_arena_runs_set_id", "arena_runs", ["set_id"])
    if "arena_judgements" not in tables:
        op.create_table(
            "arena_judgements",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("run_id", sa.Integer(), nullable=False),
            sa.Column("question_id", sa.Integer(), nullable=False),
            sa.Column("judge_order", sa.String(), nullable=False),
            sa.Column("candidate_side", sa.String(), nullable=False),
            sa.Column("candidate_answer_id", sa.Integer(), nullable=False),
            sa.Column("baseline_answer_id", sa.Integer(), nullable=False),
            sa.Column("position_verdict", sa.String(), nullable=False),
            sa.Column("verdict", sa.String(), nullable=False),
            sa.Column("raw_output", sa.Text(), nullable=False),
            sa.Column("latency_s", sa.Float(), nullable=False),
            sa.Column("prompt_tokens", sa.Integer(), nullable=False),
            sa.Column("completion_tokens", sa.Integer(), nullable=False),
            sa.Column("cached", sa.Boolean(), nullable=False),
            sa.Column("created_at", TIME, nullable=False),
            sa.ForeignKeyConstraint(["baseline_answer_id"], ["arena_answers.id"]),
            sa.ForeignKeyConstraint(["candidate_answer_id"], ["arena_answers.id"]),
            sa.ForeignKeyConstraint(["question_id"], ["arena_questions.id"]),
            sa.ForeignKeyConstraint(["run_id"], ["arena_runs.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("run_id", "question_id", "judge_order", name="uq_arena_judgement"),
        )
        op.create_index("ix_arena_judgements_run", "arena_judgements", ["run_id", "id"])
    if "train_pair_draws" not in tables:
        op.create_table(
            "train_pair_draws",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("job_id", sa.Integer(), nullable=False),
            sa.Column("epoch", sa.Integer(), nullable=False),
            sa.Column("group_key", sa.String(), nullable=False),
            sa.Column("row", sa.Integer(), nullable=False),
            sa.Column("pair_id", sa.Integer(), nullable=True),
            sa.ForeignKeyConstraint(["job_id"], ["train_runs.job_id"]),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_train_pair_draws_run_epoch", "train_pair_draws", ["job_id", "epoch"])
    if "protocol" not in {column["name"] for column in inspector.get_columns("eval_runs")}:
        with op.batch_alter_table("eval_runs") as runs:
            runs.add_column(sa.Column("protocol", sa.String(), nullable=False, server_default="workbench"))


def downgrade() -> None:
    raise NotImplementedError("stores are only upgraded")
