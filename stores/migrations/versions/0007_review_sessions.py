"""Review sessions (#15): which front-end session made each review action and what it set, so that a
session's undo takes back only its own actions and leaves pairs changed since alone.

A store written by a workbench between the TUI branch and this revision may hold the table already
(create_all made it): it is left as it is.

Revision ID: 0007_review_sessions
Revises: 0006_execution_labelling
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_review_sessions"
down_revision = "0006_execution_labelling"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "review_sessions" in set(sa.inspect(op.get_bind()).get_table_names()):
        return
    op.create_table(
        "review_sessions",
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(), nullable=False),
        sa.Column("after_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["action_id"], ["review_actions.id"]),
        sa.PrimaryKeyConstraint("action_id"),
    )
    op.create_index("ix_review_sessions_session_id", "review_sessions", ["session_id"])


def downgrade() -> None:
    raise NotImplementedError("stores are only upgraded")
