"""Opening a store: one already at the head revision is opened without alembic; others are migrated."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from stores.db import make_engine
from stores.migrations import HEAD_REVISION, head_revision

# Run in a fresh interpreter: whether an open imported alembic is only visible there.
OPEN_AND_REPORT = """
import sys
from sqlalchemy import text
from stores.db import make_engine
engine = make_engine(sys.argv[1])
with engine.connect() as connection:
    print(connection.execute(text("SELECT version_num FROM alembic_version")).scalar_one())
print("alembic" in sys.modules)
"""


def _open_fresh(db_path: Path) -> tuple[str, bool]:
    result = subprocess.run([sys.executable, "-c", OPEN_AND_REPORT, str(db_path)], capture_output=True, text=True,
                            check=True)
    revision, imported = result.stdout.strip().splitlines()
    return revision, imported == "True"


def test_the_head_constant_is_alembic_s_head() -> None:
    assert HEAD_REVISION == head_revision()


def test_a_store_at_the_head_opens_without_alembic(db_path: Path) -> None:
    make_engine(db_path).dispose()
    assert _open_fresh(db_path) == (HEAD_REVISION, False)


def test_a_store_missing_a_table_is_checked_the_full_way(db_path: Path) -> None:
    make_engine(db_path).dispose()
    with sqlite3.connect(db_path) as connection:
        connection.execute("DROP TABLE exports")
    assert _open_fresh(db_path) == (HEAD_REVISION, True)


def test_a_store_of_a_newer_workbench_is_still_refused(db_path: Path) -> None:
    make_engine(db_path).dispose()
    with sqlite3.connect(db_path) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    result = subprocess.run([sys.executable, "-c", OPEN_AND_REPORT, str(db_path)], capture_output=True, text=True)
    assert result.returncode != 0 and "newer workbench" in result.stderr


def test_a_database_whose_driver_is_not_installed_is_one_error() -> None:
    import importlib.util

    import pytest

    from core.errors import StoreError

    if importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("the MySQL driver is installed here")
    with pytest.raises(StoreError, match="its database driver MySQLdb is not installed"):
        make_engine("mysql://user@localhost/workbench")
