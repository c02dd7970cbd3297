"""Bring stores written before alembic to the version 2 schema they were meant to have.

Before alembic the workbench created missing tables on every open, so a store last opened by an
older workbench lacks the tables added since; and `eval_runs.objective_totals_json` was added
(commit 9e89e3f) with no migration step at all. New stores already have both: nothing happens.

Revision ID: 0003_converge_legacy_stores
Revises: 0002_texts_beside_the_store
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import inspect

from stores.migrations.frozen import store_schema

revision = "0003_converge_legacy_stores"
down_revision = "0002_texts_beside_the_store"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    version_2 = store_schema(2, blobs_schema="texts" if sqlite else None)
    present = set(inspect(bind).get_table_names())
    for table in version_2.sorted_tables:
        if table.schema is None and table.name not in present:
            table.create(bind)
    columns = {column["name"] for column in inspect(bind).get_columns("eval_runs")}
    if "objective_totals_json" not in columns:
        # Existing runs get an empty mapping, which the scoreboard reads as "totals unknown".
        op.add_column("eval_runs", sa.Column("objective_totals_json", sa.Text(), nullable=False, server_default="{}"))
        if not sqlite:  # the models have no default; SQLite cannot drop one without a rebuild
            op.alter_column("eval_runs", "objective_totals_json", server_default=None)


def downgrade() -> None:
    raise NotImplementedError("stores are only upgraded")
