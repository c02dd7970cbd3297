"""Jobs as the bus: workers with heartbeats, leases on jobs and claimed items, one job state.

- jobs: the owning worker and its heartbeat, the run a job advances, how often it was started;
  no host name (liveness is the heartbeat, which works across machines).
- workers, job_workers (each worker's part in a job, with its counters), work_items (claimable
  items of shared jobs: eval tasks x orders, pairs to analyse).
- synth_items: the claiming worker and its heartbeat.
- eval_runs: no state or finish time of their own; a run's state is its job's.

Jobs left queued or running by a workbench without heartbeats cannot be resumed by a worker that
knows nothing of their process: they end failed, saying so. Their items go back to pending.

Revision ID: 0004_jobs_bus
Revises: 0003_converge_legacy_stores
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_jobs_bus"
down_revision = "0003_converge_legacy_stores"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.execute(sa.text(
        "UPDATE jobs SET state = 'failed', error = 'stopped by the store upgrade to workers with heartbeats; "
        "re-run it to resume' WHERE state IN ('queued', 'running')"))
    with op.batch_alter_table("jobs") as jobs:
        jobs.add_column(sa.Column("run_key", sa.String(), nullable=True))
        jobs.add_column(sa.Column("worker_id", sa.String(), nullable=True))
        jobs.add_column(sa.Column("heartbeat_at", TIME, nullable=True))
        jobs.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        jobs.drop_column("host")
        jobs.create_index("ix_jobs_run_key", ["run_key"])
        jobs.create_index("ix_jobs_worker_id", ["worker_id"])
    op.create_table(
        "workers",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("kinds", sa.String(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("heartbeat_at", TIME, nullable=False),
        sa.Column("stopped_at", TIME, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "job_workers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("worker_id", sa.String(), nullable=False),
        sa.Column("role", sa.String(), nullable=False),
        sa.Column("counters_json", sa.Text(), nullable=False),
        sa.Column("heartbeat_at", TIME, nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("finished_at", TIME, nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_job_workers_job_id", "job_workers", ["job_id"])
    op.create_table(
        "work_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("item_key", sa.String(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("worker_id", sa.String(), nullable=True),
        sa.Column("heartbeat_at", TIME, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope", "item_key", name="uq_work_item"),
    )
    op.create_index("ix_work_items_claim", "work_items", ["scope", "state", "id"])
    op.create_index("ix_work_items_worker_id", "work_items", ["worker_id"])
    op.execute(sa.text("UPDATE synth_items SET state = 'pending' WHERE state = 'claimed'"))
    with op.batch_alter_table("synth_items") as items:
        items.add_column(sa.Column("worker_id", sa.String(), nullable=True))
        items.add_column(sa.Column("heartbeat_at", TIME, nullable=True))
        items.create_index("ix_synth_items_worker_id", ["worker_id"])
    with op.batch_alter_table("eval_runs") as runs:
        runs.drop_index("ix_eval_runs_state")
        runs.drop_column("state")
        runs.drop_column("finished_at")
    if op.get_bind().dialect.name != "sqlite":  # the models have no default; SQLite cannot drop one without a rebuild
        op.alter_column("jobs", "attempts", server_default=None)


def downgrade() -> None:
    raise NotImplementedError("stores are only upgraded")
