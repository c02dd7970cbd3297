"""Execution-labelled pairs (Code-Optimise, #16): problems, sampling configurations, solutions with
their verdicts and runtimes, code-optimise pair lineage, and policy evaluations.

A store written by a workbench between the codeopt branch and this revision may hold these tables
already (create_all made them): those are left as they are.

Revision ID: 0006_execution_labelling
Revises: 0005_arena_protocol_pair_draws
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_execution_labelling"
down_revision = "0005_arena_protocol_pair_draws"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if "code_problems" not in tables:
        op.create_table(
            "code_problems",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("task_id", sa.String(), nullable=False),
            sa.Column("source", sa.String(), nullable=False),
            sa.Column("prompt", sa.Text(), nullable=False),
            sa.Column("entry_point", sa.String(), nullable=False),
            sa.Column("test", sa.Text(), nullable=False),
            sa.Column("canonical_solution", sa.Text(), nullable=False),
            sa.Column("content_hash", sa.String(), nullable=False),
            sa.Column("created_at", TIME, nullable=False),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("content_hash"),
        )
        op.create_index("ix_code_problems_source", "code_problems", ["source"])
        op.create_index("ix_code_problems_task_id", "code_problems", ["task_id"])
    if "code_sample_configs" not in tables:
        op.create_table(
            "code_sample_configs",
            sa.Column("key", sa.String(), nullable=False),
            sa.Column("model", sa.String(), nullable=False),
            sa.Column("prompt_version", sa.String(), nullable=False),
            sa.Column("temperature", sa.Float(), nullable=False),
            sa.Column("top_p", sa.Float(), nullable=False),
            sa.Column("max_tokens", sa.Integer(), nullable=False),
            sa.Column("seed", sa.Integer(), nullable=False),
            sa.Column("created_at", TIME, nullable=False),
            sa.PrimaryKeyConstraint("key"),
        )
    if "code_solutions" not in tables:
        op.create_table(
            "code_solutions",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("problem_id", sa.Integer(), nullable=False),
            sa.Column("config_key", sa.String(), nullable=False),
            sa.Column("sample_index", sa.Integer(), nullable=False),
            sa.Column("sampled", sa.Boolean(), nullable=False),
            sa.Column("answer", sa.Text(), nullable=False),
            sa.Column("code", sa.Text(), nullable=False),
            sa.Column("code_hash", sa.String(), nullable=False),
            sa.Column("finish_reason", sa.String(), nullable=False),
            sa.Column("conversation_id", sa.Integer(), nullable=True),
            sa.Column("exec_state", sa.String(), nullable=False),
            sa.Column("exec_job_id", sa.Integer(), nullable=True),
            sa.Column("status", sa.String(), nullable=False),
            sa.Column("detail", sa.Text(), nullable=False),
            sa.Column("runtime_median_s", sa.Float(), nullable=True),
            sa.Column("runtime_cv", sa.Float(), nullable=True),
            sa.Column("runtime_runs", sa.Integer(), nullable=False),
            sa.Column("stable", sa.Boolean(), nullable=False),
            sa.Column("samples_json", sa.Text(), nullable=False),
            sa.Column("isolation", sa.String(), nullable=False),
            sa.Column("executed_at", TIME, nullable=True),
            sa.Column("created_at", TIME, nullable=False),
            sa.ForeignKeyConstraint(["config_key"], ["code_sample_configs.key"]),
            sa.ForeignKeyConstraint(["exec_job_id"], ["jobs.id"]),
            sa.ForeignKeyConstraint(["problem_id"], ["code_problems.id"]),
            sa.PrimaryKeyConstraint("id"),
            sa.UniqueConstraint("config_key", "problem_id", "sample_index", name="uq_code_solution_slot"),
        )
        op.create_index("ix_code_solutions_code_hash", "code_solutions", ["code_hash"])
        op.create_index("ix_code_solutions_exec", "code_solutions", ["exec_state", "id"])
        op.create_index("ix_code_solutions_problem", "code_solutions", ["problem_id", "config_key"])
    if "code_pair_links" not in tables:
        op.create_table(
            "code_pair_links",
            sa.Column("pair_id", sa.Integer(), nullable=False),
            sa.Column("problem_id", sa.Integer(), nullable=False),
            sa.Column("chosen_solution_id", sa.Integer(), nullable=False),
            sa.Column("rejected_solution_id", sa.Integer(), nullable=False),
            sa.Column("objective", sa.String(), nullable=False),
            sa.Column("created_at", TIME, nullable=False),
            sa.ForeignKeyConstraint(["chosen_solution_id"], ["code_solutions.id"]),
            sa.ForeignKeyConstraint(["pair_id"], ["pairs.id"]),
            sa.ForeignKeyConstraint(["problem_id"], ["code_problems.id"]),
            sa.ForeignKeyConstraint(["rejected_solution_id"], ["code_solutions.id"]),
            sa.PrimaryKeyConstraint("pair_id"),
        )
        op.create_index("ix_code_pair_links_problem_id", "code_pair_links", ["problem_id"])
    if "policy_evals" not in tables:
        op.create_table(
            "policy_evals",
            sa.Column("id", sa.Integer(), nullable=False),
            sa.Column("job_id", sa.Integer(), nullable=True),
            sa.Column("model", sa.String(), nullable=False),
            sa.Column("config_key", sa.String(), nullable=False),
            sa.Column("samples_per_problem", sa.Integer(), nullable=False),
            sa.Column("ks_json", sa.Text(), nullable=False),
            sa.Column("problem_ids_json", sa.Text(), nullable=False),
            sa.Column("selection", sa.String(), nullable=False),
            sa.Column("state", sa.String(), nullable=False),
            sa.Column("metrics_json", sa.Text(), nullable=False),
            sa.Column("seen_problems", sa.Integer(), nullable=False),
            sa.Column("created_at", TIME, nullable=False),
            sa.Column("finished_at", TIME, nullable=True),
            sa.ForeignKeyConstraint(["config_key"], ["code_sample_configs.key"]),
            sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
            sa.PrimaryKeyConstraint("id"),
        )
        op.create_index("ix_policy_evals_state", "policy_evals", ["state"])
    if "policy_eval_problems" not in tables:
        op.create_table(
            "policy_eval_problems",
            sa.Column("eval_id", sa.Integer(), nullable=False),
            sa.Column("problem_id", sa.Integer(), nullable=False),
            sa.Column("samples", sa.Integer(), nullable=False),
            sa.Column("passed", sa.Integer(), nullable=False),
            sa.Column("pass_at_json", sa.Text(), nullable=False),
            sa.Column("mean_runtime_s", sa.Float(), nullable=True),
            sa.Column("mean_length_chars", sa.Float(), nullable=True),
            sa.ForeignKeyConstraint(["eval_id"], ["policy_evals.id"]),
            sa.ForeignKeyConstraint(["problem_id"], ["code_problems.id"]),
            sa.PrimaryKeyConstraint("eval_id", "problem_id"),
        )


def downgrade() -> None:
    raise NotImplementedError("stores are only upgraded")
