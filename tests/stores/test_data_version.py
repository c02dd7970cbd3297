"""DataVersion: a number that changes with every commit to a SQLite store, from any connection."""

from __future__ import annotations

from pathlib import Path

from stores.db import make_engine
from stores.mining.commits import upsert_repository
from stores.versions import DataVersion


def test_data_version_changes_with_commits_from_any_connection(db_path: Path) -> None:
    engine = make_engine(db_path)
    watch = DataVersion(engine)
    first = watch.read()
    assert first is not None and watch.read() == first  # reads change nothing
    upsert_repository(engine, "/repos/a", license=None, head_sha=None)
    second = watch.read()
    assert second is not None and second != first
    other = make_engine(db_path)  # another process, as far as SQLite is concerned
    upsert_repository(other, "/repos/b", license=None, head_sha=None)
    assert watch.read() not in (None, second)
    watch.close()
    assert watch.read() is not None  # reopens


def test_data_version_is_unknown_for_a_store_it_cannot_watch(tmp_path: Path) -> None:
    assert DataVersion(make_engine("sqlite://")).read() is None
    engine = make_engine(tmp_path / "gone.db")
    (tmp_path / "gone.db").unlink()
    assert DataVersion(engine).read() is None  # not created again by the watch
    assert not (tmp_path / "gone.db").exists()
