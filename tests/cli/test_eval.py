from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stores.db import make_engine
from tests.fixtures import BENCH_DIR  # noqa: E402
from workbench.cli import app

pytestmark = pytest.mark.skipif(not BENCH_DIR.is_dir(), reason="../shared/codeprefbench is absent")


def _invoke(db_path: Path, *args: str, env: dict[str, str] | None = None):  # noqa: ANN202
    return CliRunner().invoke(app, ["--db", str(db_path), *args], env={"WORKBENCH_BENCH": str(BENCH_DIR), **(env or {})})


def test_eval_run_show_leaderboard_and_exports(db_path: Path, tmp_path: Path) -> None:
    result = _invoke(db_path, "eval", "run", "--judge", "baseline:always-a", "--orders", "given")
    assert result.exit_code == 0, result.output
    assert "protocol codefavor" in result.stdout
    assert "correctness\t49.2 ± 3.8\t\t\t49.2\t0\t660\t660" in result.stdout
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
    assert listed.stdout.splitlines()[1].startswith("2\tbaseline:shorter\tcodefavor\tdone\t80/80\tboth")
    shown = _invoke(db_path, "eval", "show", "1")
    assert "lineage: {\"baseline\": \"always-a\"}" in shown.stdout and "verifiable average\t50.5" in shown.stdout
    assert "protocol: codefavor" in shown.stdout
    shown = _invoke(db_path, "eval", "show", "2").stdout
    # Given order, both orders, each with its band, and the order consistency, per objective.
    assert "objective\tgiven order %\tboth orders %\tconsistency %" in shown
    correctness = next(line for line in shown.splitlines() if line.startswith("correctness\t")).split("\t")
    assert correctness[1].count("±") == 1 and correctness[2].count("±") == 1 and correctness[3]
    board = _invoke(db_path, "eval", "leaderboard", "--json")
    assert [row["run"] for row in json.loads(board.stdout)] == sorted(
        [1, 2], key=lambda run: -next(r["verifiable average"] for r in json.loads(board.stdout) if r["run"] == run)
    )

    markdown = _invoke(db_path, "eval", "export", "--format", "md")
    assert markdown.stdout.startswith("| run | judge | protocol | orders | correctness | correctness ± | correctness both |")
    row = next(line for line in markdown.stdout.splitlines() if line.startswith("| 1 |")).split(" | ")
    assert row[1:4] == ["baseline:always-a", "codefavor", "given"] and row[4] == "49.2"
    assert row[-2] == "50.5" and row[-1] == " |"
    printed = _invoke(db_path, "eval", "leaderboard").stdout.splitlines()
    assert printed[0] == "run\tjudge\tprotocol\tcorrectness\tefficiency\tsecurity\thuman-preference\tverifiable average"
    shorter = next(line for line in printed if line.startswith("2\t")).split("\t")
    assert shorter[2] == "codefavor" and " / " in shorter[3] and "(c " in shorter[3]
    target = tmp_path / "results.csv"
    exported = _invoke(db_path, "eval", "export", "2", "--format", "csv", "--output", str(target))
    assert exported.exit_code == 0 and f"wrote {target}" in exported.stderr
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert len(rows) == 80 and {r["order"] for r in rows} == {"given", "swapped"}
    as_json = json.loads(_invoke(db_path, "eval", "export", "--format", "json").stdout)
    assert {row["judge"] for row in as_json} == {"baseline:always-a", "baseline:shorter"}


def test_eval_errors_are_one_line(db_path: Path, tmp_path: Path) -> None:
    make_engine(db_path).dispose()  # an empty store: lookups fail on the run, not on the store
    cases = [  # (arguments, message, exit code: 2 for a usage error, 1 for bad data)
        (["eval", "run"], "pass --judge SPEC", 2),
        (["eval", "run", "--judge", "baseline:best"], "unknown baseline 'best'", 2),
        (["eval", "run", "--judge", "baseline:always-a", "--objectives", "speed"], "unknown objective 'speed'", 2),
        (["eval", "run", "--judge", "baseline:always-a", "--bench", str(tmp_path)],
         "correctness-alignment.jsonl.gz is missing", 1),
        (["eval", "show", "7"], "evaluation run 7 does not exist", 1),
        (["eval", "export", "--format", "xml"], "unknown export format 'xml'", 2),
    ]
    for args, message, code in cases:
        result = _invoke(db_path, *args)
        assert result.exit_code == code, (args, result.output)
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
