from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from workbench.cli import app

BENCH_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "codeprefbench"
pytestmark = pytest.mark.skipif(not BENCH_DIR.is_dir(), reason="../shared/codeprefbench is absent")


def _invoke(db_path: Path, *args: str, env: dict[str, str] | None = None):  # noqa: ANN202
    return CliRunner().invoke(app, ["--db", str(db_path), *args], env={"WORKBENCH_BENCH": str(BENCH_DIR), **(env or {})})


def test_eval_run_show_leaderboard_and_exports(db_path: Path, tmp_path: Path) -> None:
    result = _invoke(db_path, "eval", "run", "--judge", "baseline:always-a", "--orders", "given")
    assert result.exit_code == 0, result.output
    assert "correctness\t49.2 ± 3.8\t\t49.2\t0\t660\t660" in result.stdout
    assert "human-preference\t55.9" in result.stdout
    assert "(done, 1364/1364)" in result.stdout
    assert result.stderr.strip() == "eval run 1: baseline:always-a"  # no progress line off a terminal
    result = _invoke(db_path, "eval", "run", "--judge", "baseline:shorter", "--limit", "20",
                     "--objectives", "correctness", "--objectives", "efficiency", "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["run"]["total"] == 80 and payload["run"]["state"] == "done"
    assert [s["objective"] for s in payload["scores"]["objectives"]] == ["correctness", "efficiency"]

    listed = _invoke(db_path, "eval", "list")
    assert listed.stdout.splitlines()[1].startswith("2\tbaseline:shorter\tdone\t80/80\tboth")
    shown = _invoke(db_path, "eval", "show", "1")
    assert "lineage: {\"baseline\": \"always-a\"}" in shown.stdout and "verifiable average\t50.5" in shown.stdout
    board = _invoke(db_path, "eval", "leaderboard", "--json")
    assert [row["run"] for row in json.loads(board.stdout)] == sorted(
        [1, 2], key=lambda run: -next(r["verifiable average"] for r in json.loads(board.stdout) if r["run"] == run)
    )

    markdown = _invoke(db_path, "eval", "export", "--format", "md")
    assert markdown.stdout.startswith("| run | judge | orders | correctness |")
    assert "| 1 | baseline:always-a | given | 49.2 | 51.1 | 51.2 | 50.5 | 55.9 |" in markdown.stdout
    target = tmp_path / "results.csv"
    exported = _invoke(db_path, "eval", "export", "2", "--format", "csv", "--output", str(target))
    assert exported.exit_code == 0 and f"wrote {target}" in exported.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 80 and {r["order"] for r in rows} == {"given", "swapped"}
    as_json = json.loads(_invoke(db_path, "eval", "export", "--format", "json").stdout)
    assert {row["judge"] for row in as_json} == {"baseline:always-a", "baseline:shorter"}


def test_eval_errors_are_one_line(db_path: Path, tmp_path: Path) -> None:
    cases = [
        (["eval", "run"], "pass --judge SPEC"),
        (["eval", "run", "--judge", "baseline:best"], "unknown baseline 'best'"),
        (["eval", "run", "--judge", "baseline:always-a", "--objectives", "speed"], "unknown objective 'speed'"),
        (["eval", "run", "--judge", "baseline:always-a", "--bench", str(tmp_path)], "correctness-alignment.jsonl.gz is missing"),
        (["eval", "show", "7"], "evaluation run 7 does not exist"),
        (["eval", "export", "--format", "xml"], "unknown export format 'xml'"),
    ]
    for args, message in cases:
        result = _invoke(db_path, *args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.strip() == f"error: {message}" or message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("correctness", "efficiency", "security", "human-preference"):
        (bad / f"{name}-alignment.jsonl.gz").write_bytes(gzip.compress(b'{"task_id": 1}\n'))
    result = _invoke(db_path, "eval", "run", "--judge", "baseline:always-a", "--bench", str(bad))
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: correctness-alignment.jsonl.gz line 1: missing field 'instruction'"
    assert _invoke(db_path, "eval", "list").stdout.count("\n") == 1  # no run was created
