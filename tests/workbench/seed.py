"""Seeded stores for screen tests: fixed dates and texts, hostile text included."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from stores.db import make_engine
from stores.jobs import create_job, finish_job
from stores.mining.tables import BlobRow, CommitRow, RepositoryRow
from tests.fixtures import HOSTILE_TEXT


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def seed_commits(db_path: Path, count: int, *, with_job: bool = True) -> Engine:
    """A store with one repository and `count` commit records (record 1 carries hostile text)."""
    engine = make_engine(db_path)
    moment = datetime(2024, 5, 6, 7, 8, tzinfo=timezone.utc)
    old_text = f"def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s  # {HOSTILE_TEXT}\n"
    new_text = f"def total(xs):\n    return sum(xs)  # {HOSTILE_TEXT}\n"
    with engine.begin() as connection:
        connection.execute(insert(RepositoryRow.__table__), [{
            "path": "/repos/demo", "name": "demo", "license": "MIT", "head_sha": _sha("head"), "created_at": moment}])
        connection.execute(insert(BlobRow.__table__), [
            {"sha": _sha(old_text), "size": len(old_text), "text": old_text},
            {"sha": _sha(new_text), "size": len(new_text), "text": new_text},
        ])
        rows = []
        for index in range(count):
            message = f"Use sum() {HOSTILE_TEXT}\n\nBody [red]not markup[/red]\n" if index == 0 else f"change {index}\n"
            rows.append({
                "repository_id": 1, "job_id": None, "sha": _sha(f"commit {index}"),
                "parent_sha": _sha(f"commit {index - 1}"), "author": "Ada [b]Tester[/b]",
                "author_email": "ada@example.com", "authored_at": moment, "message": message,
                "path": f"src/pkg/module_{index % 97}.py", "old_path": f"src/pkg/module_{index % 97}.py",
                "old_blob": _sha(old_text), "new_blob": _sha(new_text),
                "content_key": _sha(f"key {index}"), "lines_added": 1, "lines_removed": 4, "language": "python",
            })
            if len(rows) == 5000:
                connection.execute(insert(CommitRow.__table__), rows)
                rows = []
        if rows:
            connection.execute(insert(CommitRow.__table__), rows)
    if with_job:
        job_id = create_job(engine, "mine", f"mine /repos/demo {HOSTILE_TEXT}", pid=0)
        finish_job(engine, job_id, "done", summary={"records_kept": count}, done=count)
    return engine
