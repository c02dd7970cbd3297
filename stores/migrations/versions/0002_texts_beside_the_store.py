"""Store version 2: file texts move to their own file beside a SQLite store.

In their own file with a rollback journal, new pages are written once instead of twice (log and
checkpoint), which made mining a third faster. SQLite cannot check a foreign key across files, so
the keys from `commits` to `blobs` go: the table is rebuilt without them (SQLite's documented
way to change a table's constraints). Elsewhere the texts stay where they are and only the keys go.

Revision ID: 0002_texts_beside_the_store
Revises: 0001_store_v1
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import inspect, text

from stores.migrations.frozen import store_schema

revision = "0002_texts_beside_the_store"
down_revision = "0001_store_v1"
branch_labels = None
depends_on = None

TEXTS = "texts"


def upgrade() -> None:
    bind = op.get_bind()
    version_2 = store_schema(2, blobs_schema=TEXTS)
    if bind.dialect.name != "sqlite":
        for key in inspect(bind).get_foreign_keys("commits"):
            if key["referred_table"] == "blobs" and key["name"]:
                op.drop_constraint(key["name"], "commits", type_="foreignkey")
        return
    version_2.tables[f"{TEXTS}.blobs"].create(bind, checkfirst=True)
    if not inspect(bind).has_table("blobs"):
        return
    op.execute(text(f"INSERT OR IGNORE INTO {TEXTS}.blobs (sha, size, text) SELECT sha, size, text FROM main.blobs"))
    with op.batch_alter_table("commits", copy_from=version_2.tables["commits"], recreate="always"):
        pass
    op.execute(text("DROP TABLE main.blobs"))


def downgrade() -> None:
    raise NotImplementedError("stores are only upgraded")
