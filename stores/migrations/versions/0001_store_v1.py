"""Store version 1: every table as the workbench built them before file texts left the store.

Revision ID: 0001_store_v1
Revises:
"""

from __future__ import annotations

from alembic import op

from stores.migrations.frozen import store_schema

revision = "0001_store_v1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    store_schema(1).create_all(op.get_bind())


def downgrade() -> None:
    raise NotImplementedError("stores are only upgraded")
