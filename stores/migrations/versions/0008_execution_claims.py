"""Execution claims with leases: several workers share one run of solutions in the sandbox.

code_solutions gains the claiming worker, its heartbeat and a claim count (stores.claims), so a
claim is renewed by its worker's heartbeat and taken over once that stops, instead of belonging
to a job. Claims held when the store is upgraded have no heartbeat to renew: they go back to pending.

Revision ID: 0008_execution_claims
Revises: 0007_review_sessions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_execution_claims"
down_revision = "0007_review_sessions"
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("code_solutions") as solutions:
        solutions.add_column(sa.Column("exec_worker_id", sa.String(), nullable=True))
        solutions.add_column(sa.Column("exec_heartbeat_at", TIME, nullable=True))
        solutions.add_column(sa.Column("exec_attempts", sa.Integer(), nullable=False, server_default="0"))
        solutions.create_index("ix_code_solutions_exec_worker_id", ["exec_worker_id"])
    op.execute(sa.text("UPDATE code_solutions SET exec_state = 'pending' WHERE exec_state = 'claimed'"))
    if op.get_bind().dialect.name != "sqlite":  # the models have no default; SQLite cannot drop one without a rebuild
        op.alter_column("code_solutions", "exec_attempts", server_default=None)


def downgrade() -> None:
    raise NotImplementedError("stores are only upgraded")
