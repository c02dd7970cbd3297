"""Store rows for synthesis tests: mined commits inserted directly, without git."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime, timezone

from sqlalchemy.engine import Engine
from sqlmodel import Session

from stores.mining.tables import BlobRow, CommitRow, RepositoryRow

OLD = "def total(xs):\n    result = 0\n    for x in xs:\n        result += x\n    return result\n"


def _blob(session: Session, text: str) -> str:
    sha = hashlib.sha1(text.encode()).hexdigest()
    if session.get(BlobRow, sha) is None:
        session.add(BlobRow(sha=sha, size=len(text), text=text))
    return sha


def add_commits(engine: Engine, messages: Sequence[str], *, repo_path: str = "/tmp/repo") -> list[int]:
    """Insert one commit file per message (old side OLD, new side a variant); return their ids."""
    ids = []
    with Session(engine) as session:
        repo = RepositoryRow(path=repo_path, name="repo")
        session.add(repo)
        session.flush()
        for index, message in enumerate(messages):
            new = OLD.replace("return result", f"return result  # v{index}")
            row = CommitRow(
                repository_id=repo.id, sha=f"{index:040x}", parent_sha="0" * 40, author="Ada",
                author_email="ada@example.com", authored_at=datetime(2024, 1, 2, tzinfo=timezone.utc), message=message,
                path=f"pkg/mod{index}.py", old_path=f"pkg/mod{index}.py", old_blob=_blob(session, OLD),
                new_blob=_blob(session, new), content_key=f"k{index}", lines_added=1, lines_removed=1,
                language="python",
            )
            session.add(row)
            session.flush()
            ids.append(int(row.id))
        session.commit()
    return ids


def commit_messages(count: int) -> list[str]:
    """A realistic mix: most improve the code, some are version bumps, some go wrong."""
    kinds = ["Fix total on empty input", "Speed up total", "bump version to 1.2", "same-code refactor",
             "broken-code attempt", "refuse please", "mumble mumble"]
    return [f"{kinds[i % len(kinds)]} #{i}" for i in range(count)]
