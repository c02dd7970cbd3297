"""Claims with leases: workers take items in small transactions, renew them by heartbeat, lose them when it stops.

One statement claims a batch: `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)` on
PostgreSQL, so workers on many machines skip each other's rows instead of waiting; SQLite has
one writer at a time, which makes the same statement (without the locking clause) atomic. A row
is claimable when pending, or claimed with a heartbeat older than the lease. Times come from the
database server on PostgreSQL, so machines with skewed clocks agree on which leases ran out.

A table whose rows are claimed names its claim columns `state`, `worker_id`, `heartbeat_at` and
`attempts`, or maps those roles to its own names in `info={"claim_columns": {...}}` (a solution's
execution claim lives beside its verdict as `exec_state`, `exec_worker_id`, ...).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import Column as SqlColumn
from sqlalchemy import Table, and_, func, literal, or_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.elements import ColumnElement

from stores.tables import WorkItemRow, utcnow

PENDING, CLAIMED, DONE = "pending", "claimed", "done"


def now_expr(connection: Connection) -> Any:
    """The current time as the store sees it: the server's clock on PostgreSQL, this process's on SQLite."""
    if connection.dialect.name == "sqlite":
        return utcnow()
    return func.now()


def expired_before(connection: Connection, lease_s: float) -> Any:
    """Heartbeats before this moment have run out."""
    if connection.dialect.name == "sqlite":
        return utcnow() - timedelta(seconds=lease_s)
    return func.now() - literal(timedelta(seconds=lease_s))


class ClaimColumns(NamedTuple):
    """The columns of a claimable table that hold a claim: its state, holder, heartbeat and claim count."""

    state: SqlColumn[Any]
    worker_id: SqlColumn[Any]
    heartbeat_at: SqlColumn[Any]
    attempts: SqlColumn[Any]


def claim_columns(table: Table) -> ClaimColumns | None:
    """The claim columns of `table` (its `claim_columns` info maps roles to other names), or None when it has none."""
    names = {role: role for role in ClaimColumns._fields}
    names.update(table.info.get("claim_columns", {}))
    if not all(name in table.c for name in names.values()):
        return None
    return ClaimColumns(*(table.c[names[role]] for role in ClaimColumns._fields))


def _columns(table: Table) -> ClaimColumns:
    columns = claim_columns(table)
    if columns is None:
        raise ValueError(f"table {table.name} has no claim columns")
    return columns


def claimable(connection: Connection, table: Table, lease_s: float) -> ColumnElement[bool]:
    """Pending rows, and claimed rows whose heartbeat ran out."""
    columns = _columns(table)
    return or_(
        columns.state == PENDING,
        and_(columns.state == CLAIMED, columns.heartbeat_at < expired_before(connection, lease_s)),
    )


def claim_rows(
    connection: Connection, table: Table, where: ColumnElement[bool], *, worker_id: str, limit: int,
    lease_s: float, extra_values: dict[str, Any] | None = None,
) -> list[int]:
    """Claim up to `limit` claimable rows of `table` matching `where` (oldest id first); return their ids.

    The table needs an `id` and the claim columns (`claim_columns`). The caller commits; until
    then the rows stay locked (PostgreSQL) or the write lock is held (SQLite).
    """
    if limit <= 0:
        return []
    columns = _columns(table)
    chosen = (
        select(table.c.id).where(where, claimable(connection, table, lease_s))
        .order_by(table.c.id).limit(limit).with_for_update(skip_locked=True)
    )
    values: dict[Any, Any] = {columns.state: CLAIMED, columns.worker_id: worker_id,
                              columns.heartbeat_at: now_expr(connection), columns.attempts: columns.attempts + 1}
    values.update({table.c[name]: value for name, value in (extra_values or {}).items()})
    statement = (
        update(table).where(table.c.id.in_(chosen.scalar_subquery())).values(values).returning(table.c.id)
    )
    return sorted(int(row_id) for row_id in connection.execute(statement).scalars().all())


def claim_tables() -> list[Table]:
    """Every table whose rows workers claim: those with claim columns (jobs aside)."""
    from sqlmodel import SQLModel

    import stores.all_tables  # noqa: F401  registers every table on SQLModel.metadata

    return [table for table in SQLModel.metadata.sorted_tables
            if table.name != "jobs" and claim_columns(table) is not None]


def renew_claims(connection: Connection, table: Table, worker_id: str) -> int:
    """Refresh the heartbeat of every row `worker_id` holds; return how many."""
    columns = _columns(table)
    result = connection.execute(
        update(table).where(columns.worker_id == worker_id, columns.state == CLAIMED)
        .values({columns.heartbeat_at: now_expr(connection)})
    )
    return int(result.rowcount or 0)


# ---- work items of shared jobs (eval tasks x orders, pairs to analyse) ------------------------------

_WORK: Table = WorkItemRow.__table__  # type: ignore[attr-defined]


def add_work_items(engine: Engine, scope: str, keys: Sequence[str]) -> int:
    """Add the items of `scope` not there yet (as pending); return how many were added."""
    if not keys:
        return 0
    with engine.begin() as connection:
        existing = set(connection.execute(select(_WORK.c.item_key).where(_WORK.c.scope == scope)).scalars())
        rows = [{"scope": scope, "item_key": key, "state": PENDING, "attempts": 0}
                for key in dict.fromkeys(keys) if key not in existing]
        for start in range(0, len(rows), 500):
            connection.execute(_WORK.insert(), rows[start:start + 500])
        return len(rows)


def claim_work_items(engine: Engine, scope: str, worker_id: str, limit: int, lease_s: float) -> list[str]:
    """Claim up to `limit` items of `scope` for `worker_id`; return their keys."""
    with engine.begin() as connection:
        ids = claim_rows(connection, _WORK, _WORK.c.scope == scope, worker_id=worker_id, limit=limit, lease_s=lease_s)
        if not ids:
            return []
        keyed = dict(connection.execute(select(_WORK.c.id, _WORK.c.item_key).where(_WORK.c.id.in_(ids))).all())
        return [keyed[row_id] for row_id in ids]


def complete_work_items(engine: Engine, scope: str, keys: Sequence[str], worker_id: str) -> set[str]:
    """Mark items done if `worker_id` still holds them; return the keys it did hold.

    Call it in the same transaction as the results when possible; a key missing from the answer
    was taken over by another worker after this one's lease ran out.
    """
    if not keys:
        return set()
    with engine.begin() as connection:
        return complete_work_items_in(connection, scope, keys, worker_id)


def complete_work_items_in(connection: Connection, scope: str, keys: Sequence[str], worker_id: str) -> set[str]:
    """`complete_work_items` inside the caller's transaction."""
    held = set(connection.execute(
        update(_WORK).where(_WORK.c.scope == scope, _WORK.c.item_key.in_(list(keys)),
                            _WORK.c.worker_id == worker_id, _WORK.c.state == CLAIMED)
        .values(state=DONE, heartbeat_at=now_expr(connection)).returning(_WORK.c.item_key)
    ).scalars())
    return held


def release_work_items(engine: Engine, scope: str, worker_id: str, keys: Sequence[str] | None = None) -> int:
    """Give back items `worker_id` holds in `scope` (all of them when `keys` is None)."""
    condition = and_(_WORK.c.scope == scope, _WORK.c.worker_id == worker_id, _WORK.c.state == CLAIMED)
    if keys is not None:
        condition = and_(condition, _WORK.c.item_key.in_(list(keys)))
    with engine.begin() as connection:
        return int(connection.execute(update(_WORK).where(condition).values(state=PENDING)).rowcount or 0)


def work_counts(engine: Engine, scope: str, lease_s: float) -> dict[str, int]:
    """Items of `scope` by state: pending (claimable, including expired claims), claimed (held), done."""
    with engine.connect() as connection:
        expired = and_(_WORK.c.state == CLAIMED, _WORK.c.heartbeat_at < expired_before(connection, lease_s))
        rows = connection.execute(
            select(_WORK.c.state, func.count()).where(_WORK.c.scope == scope, ~expired).group_by(_WORK.c.state)
        ).all()
        stale = connection.execute(select(func.count()).where(_WORK.c.scope == scope, expired)).scalar_one()
    counts = {PENDING: 0, CLAIMED: 0, DONE: 0}
    counts.update({state: int(count) for state, count in rows})
    counts[PENDING] += int(stale)
    return counts


def has_claimable_work(engine: Engine, scope: str, lease_s: float) -> bool:
    """True when some item of `scope` can be claimed now."""
    with engine.connect() as connection:
        return connection.execute(
            select(_WORK.c.id).where(_WORK.c.scope == scope, claimable(connection, _WORK, lease_s)).limit(1)
        ).first() is not None


def clear_work_items(engine: Engine, scope: str) -> None:
    """Forget the items of a finished scope."""
    with engine.begin() as connection:
        connection.execute(_WORK.delete().where(_WORK.c.scope == scope))
