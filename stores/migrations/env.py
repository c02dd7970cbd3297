"""alembic's environment: the connection `stores.migrations.upgrade` passes, or `WORKBENCH_DB` for the alembic CLI."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from stores.migrations import target_metadata

connection = context.config.attributes.get("connection")


def run(bound: Connection) -> None:
    context.configure(
        connection=bound, target_metadata=target_metadata(bound.dialect.name),
        render_as_batch=True, compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    run(connection)
else:  # the alembic CLI, for `revision --autogenerate`
    from stores.db import make_engine

    with make_engine(migrate=False).connect() as cli_connection:
        run(cli_connection)
