"""`workbench synth mutate` and `synth commit-signal` over mined commit records in a store."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from core.evaluation.protocols import CODEFAVOR_CRITERIA as CRITERIA
from stores.db import make_engine
from stores.jobs import list_jobs
from stores.mining.tables import BlobRow, CommitRow, RepositoryRow
from tests.fixtures import HOSTILE_ALL, stored_pairs
from workbench.cli import app

OLD = '''import json
import yaml


def load(text):
    """Parse the settings document."""
    return yaml.load(text, Loader=yaml.Loader)


def count(xs, limit):
    n = 0
    for x in xs:
        if x < limit:
            n += 1
    return n
'''
NEW = OLD.replace("yaml.load(text, Loader=yaml.Loader)", "yaml.safe_load(text)")
LATER = NEW + '''

def names(people):
    seen = set()
    out = []
    for person in people:
        if person not in seen:
            seen.add(person)
            out.append(person)
    return out


def decode(blob):
    return json.loads(blob)
'''


def _blob(session: Session, text: str) -> str:
    sha = hashlib.sha1(text.encode()).hexdigest()
    if session.get(BlobRow, sha) is None:
        session.add(BlobRow(sha=sha, size=len(text), text=text))
    return sha


def add_changes(engine: Engine, changes: Sequence[tuple[str, str, str, str]]) -> list[int]:
    """(message, path, old text, new text) as commit records; return their ids."""
    ids = []
    with Session(engine) as session:
        repo = RepositoryRow(path="/tmp/mutations", name="mutations")
        session.add(repo)
        session.flush()
        for index, (message, path, old, new) in enumerate(changes):
            row = CommitRow(
                repository_id=repo.id, sha=f"{index:040x}", parent_sha="0" * 40, author="Ada",
                author_email="ada@example.com", authored_at=datetime(2024, 1, 2, tzinfo=timezone.utc),
                message=message, path=path, old_path=path, old_blob=_blob(session, old), new_blob=_blob(session, new),
                content_key=f"k{index}", lines_added=1, lines_removed=1,
                language="python" if path.endswith(".py") else "go",
            )
            session.add(row)
            session.flush()
            ids.append(int(row.id))  # type: ignore[arg-type]
        session.commit()
    return ids


def invoke(db: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["--db", str(db), *args])


def test_mutation_pairs_are_stored_once_with_lineage_and_the_seed_decides(db_path: Path, tmp_path: Path) -> None:
    engine = make_engine(db_path)
    ids = add_changes(engine, [("safe yaml", "cfg.py", OLD, NEW), ("names", "cfg.py", NEW, LATER),
                               ("go code", "main.go", "package main\n", "package main\n\nfunc f() {}\n")])
    result = invoke(db_path, "synth", "mutate", "--seed", "3", "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    summary = json.loads(result.stdout)  # type: ignore[attr-defined]
    counters = summary["counters"]
    assert (summary["state"], summary["done"], summary["total"]) == ("done", 2, 2)  # Python records only
    # load and count from the first record; names and decode are new in the second (load and count repeat).
    assert (counters["functions"], counters["repeated_functions"]) == (4, 2)
    pairs = stored_pairs(engine)
    assert counters["stored"] == len(pairs) == counters["pairs"]
    assert all(p.source == "mutation" and p.status == "pending" for p in pairs)
    by_function = {(p.meta["function"], p.meta["objective"]): p for p in pairs}
    assert {key[0] for key in by_function} == {"load", "count", "names", "decode"}
    assert by_function[("names", "efficiency")].meta["mutation"] == "quadratic-dedupe"
    assert by_function[("names", "efficiency")].commit_id == ids[1]
    assert by_function[("count", "correctness")].commit_id == ids[0]
    decode = by_function[("decode", "security")]
    assert decode.meta["mutation"] in ("eval-of-input", "pickle-of-input") and decode.meta["bandit_added"]
    assert decode.criteria == CRITERIA["security"] and decode.chosen.endswith("return json.loads(blob)\n")
    listed = invoke(db_path, "pairs", "list", "--where", "source=mutation")
    assert len(listed.stdout.strip().splitlines()) == len(pairs) + 1  # type: ignore[attr-defined]

    again = json.loads(invoke(db_path, "synth", "mutate", "--seed", "3", "--json").stdout)  # type: ignore[attr-defined]
    assert (again["counters"]["stored"], again["counters"]["already_stored"]) == (0, len(pairs))
    other = tmp_path / "other.db"
    add_changes(make_engine(other), [("safe yaml", "cfg.py", OLD, NEW), ("names", "cfg.py", NEW, LATER)])
    assert invoke(other, "synth", "mutate", "--seed", "3").exit_code == 0  # type: ignore[attr-defined]
    assert [(p.chosen, p.rejected) for p in stored_pairs(make_engine(other))] == [(p.chosen, p.rejected) for p in pairs]

    only_security = tmp_path / "security.db"
    add_changes(make_engine(only_security), [("names", "cfg.py", NEW, LATER)])
    result = invoke(only_security, "synth", "mutate", "--objective", "security", "--limit", "1")
    assert result.exit_code == 0 and "pairs stored" in result.stdout  # type: ignore[attr-defined]
    assert {p.meta["objective"] for p in stored_pairs(make_engine(only_security))} == {"security"}
    assert [job.kind for job in list_jobs(make_engine(only_security))] == ["mutate"]


def test_commit_signal_pairs_take_the_new_code_of_a_fix(db_path: Path) -> None:
    engine = make_engine(db_path)
    ids = add_changes(engine, [(f"use safe_load {HOSTILE_ALL}", "cfg.py", OLD, NEW), ("names", "cfg.py", NEW, LATER)])
    result = invoke(db_path, "synth", "commit-signal")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "1 pairs stored" in result.stdout  # type: ignore[attr-defined]
    (pair,) = stored_pairs(engine)
    assert (pair.source, pair.commit_id, pair.meta["bandit_removed"]) == ("commit-signal", ids[0], ["B506"])
    assert "yaml.safe_load(text)" in pair.chosen and "yaml.Loader" in pair.rejected
    assert pair.instruction == "Write a Python function `def load(text)`.\n\nParse the settings document."


def test_offline_sources_need_mined_python_and_known_objectives(db_path: Path) -> None:
    for args, message, code in [  # 1 for data the store lacks, 2 for a usage error
        (["synth", "mutate"], "no mined Python commit records", 1),
        (["synth", "commit-signal"], "no mined Python commit records", 1),
        (["synth", "mutate", "--objective", "style"], "unknown objective 'style'", 2),
    ]:
        result = invoke(db_path, *args)
        assert result.exit_code == code, result.output  # type: ignore[attr-defined]
        assert result.stderr.startswith("error: ") and message in result.stderr  # type: ignore[attr-defined]
    assert list_jobs(make_engine(db_path)) == []
