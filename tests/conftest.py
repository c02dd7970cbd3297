"""Fixtures shared by every test folder: stores (a SQLite file, and PostgreSQL for real), tiny git repositories."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from stores.db import make_engine

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Ada Tester",
    "GIT_AUTHOR_EMAIL": "ada@example.com",
    "GIT_COMMITTER_NAME": "Ada Tester",
    "GIT_COMMITTER_EMAIL": "ada@example.com",
    "GIT_AUTHOR_DATE": "2024-01-02T03:04:05+00:00",
    "GIT_COMMITTER_DATE": "2024-01-02T03:04:05+00:00",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "wb.db"


@pytest.fixture
def engine(db_path: Path) -> Iterator[Engine]:
    engine = make_engine(db_path)
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def _detached_workers_stop(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Workers a test starts detached (the TUI, `train`, `llm serve`) exit soon when idle and are stopped after it."""
    import sys

    monkeypatch.setenv("WORKBENCH_WORKER_IDLE_S", "5")
    yield
    worker_module = sys.modules.get("workbench.jobs.worker")
    for process in getattr(worker_module, "spawned", []):
        if process.poll() is None:
            process.terminate()  # SIGTERM: its jobs go back to the queue
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    if worker_module is not None:
        worker_module.spawned.clear()


# A PostgreSQL server for the whole session: the one `.ci/run` started (its URL in this variable),
# or one this session starts and stops itself.
PG_URL_ENV = "WORKBENCH_TEST_PG_URL"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The admin URL of a PostgreSQL server on loopback."""
    if os.environ.get(PG_URL_ENV):
        yield os.environ[PG_URL_ENV]
        return
    from tests.pg_server import find_bindir, start, stop

    if find_bindir() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql)")
    url, base = start()
    os.environ[PG_URL_ENV] = url  # subprocesses of tests (workers) reach the same server
    try:
        yield url
    finally:
        os.environ.pop(PG_URL_ENV, None)
        stop(base)


def _pg_admin(url: str) -> object:
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def _database_url(server_url: str, name: str) -> str:
    return f"{server_url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(scope="session")
def pg_template(pg_server: str) -> str:
    """A database migrated to the head revision, copied for each test (copying beats migrating)."""
    name = f"wb_template_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:6]}"
    with _pg_admin(pg_server) as admin:  # type: ignore[attr-defined]
        admin.execute(f'CREATE DATABASE "{name}"')
    make_engine(_database_url(pg_server, name)).dispose()
    return name


@pytest.fixture
def pg_empty_url(pg_server: str) -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped after the test."""
    name = f"wb_{uuid.uuid4().hex[:12]}"
    with _pg_admin(pg_server) as admin:  # type: ignore[attr-defined]
        admin.execute(f'CREATE DATABASE "{name}"')
    yield _database_url(pg_server, name)
    with _pg_admin(pg_server) as admin:  # type: ignore[attr-defined]
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url(pg_server: str, pg_template: str) -> Iterator[str]:
    """A new PostgreSQL store at the head revision, dropped after the test."""
    name = f"wb_{uuid.uuid4().hex[:12]}"
    with _pg_admin(pg_server) as admin:  # type: ignore[attr-defined]
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield _database_url(pg_server, name)
    with _pg_admin(pg_server) as admin:  # type: ignore[attr-defined]
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, db_path: Path) -> str:
    """A new store on SQLite (a file) and on PostgreSQL: tests using it run on both."""
    if request.param == "sqlite":
        return str(db_path)
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def any_engine(store_url: str) -> Iterator[Engine]:
    """An engine on `store_url`: SQLite and PostgreSQL."""
    engine = make_engine(store_url)
    yield engine
    engine.dispose()


class GitRepo:
    """A throwaway repository in tmp_path with helpers to write files and commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        env = {**os.environ, **GIT_ENV}
        return subprocess.run(
            ["git", *args], cwd=self.path, env=env, check=True, capture_output=True, text=True
        ).stdout

    def write(self, relative: str, content: str | bytes) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content, encoding="utf-8")

    def commit(self, message: str, files: dict[str, str | bytes] | None = None) -> str:
        for relative, content in (files or {}).items():
            self.write(relative, content)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").strip()


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[str], GitRepo]:
    def factory(name: str = "repo") -> GitRepo:
        return GitRepo(tmp_path / name)

    return factory


from tests.ml_fixtures import tiny_model_dir  # noqa: E402,F401  shared session fixture
