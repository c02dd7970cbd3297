"""`workbench problems` and `workbench codeopt` end to end on a file store, against a loopback server."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.training.preference import read_preference_records
from stores.db import make_engine
from tests.codeopt_fixtures import PolicyStandIn, demo_problem
from tests.fixtures import HOSTILE_ALL, stored_pairs
from tests.llm_server import LoopbackLLM
from workbench.cli import app


def run(db: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["--db", str(db), *args])


def write_problems(path: Path, problems: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(p) + "\n" for p in problems), encoding="utf-8")
    return path


def _record(k: int, note: str = "") -> dict[str, object]:
    problem = asdict(demo_problem(k, note=note))
    problem.pop("source")
    return problem


def test_import_list_show_with_hostile_text_shown_plainly(tmp_path: Path, db_path: Path) -> None:
    hostile = _record(1, note=HOSTILE_ALL.replace("\x00", ""))
    hostile["task_id"] = f"Evil/{HOSTILE_ALL}"
    path = write_problems(tmp_path / "p.jsonl", [hostile, _record(2)])
    result = run(db_path, "problems", "import", str(path))
    assert result.exit_code == 0 and result.stdout.strip() == "imported 2 problems (0 already stored)"
    assert run(db_path, "problems", "import", str(path)).stdout.strip() == "imported 0 problems (2 already stored)"
    listed = run(db_path, "problems", "list")
    shown = run(db_path, "problems", "show", "1")
    for output in (listed.stdout, shown.stdout):
        assert "\x1b" not in output and "\u202e" not in output and "\x9b" not in output
        assert "[bold]x[/bold]" in output  # markup-like text printed as it is
    assert "␛[2J" in shown.stdout and "⟨U+202E⟩" in shown.stdout  # controls made visible
    as_json = json.loads(run(db_path, "problems", "list", "--json").stdout)
    assert as_json[0]["task_id"] == f"Evil/{HOSTILE_ALL}" and as_json[1]["entry_point"] == "add_2"


def test_humaneval_import_and_errors_are_one_line(tmp_path: Path, db_path: Path) -> None:
    assert run(db_path, "problems", "import", "--humaneval").stdout.strip() == "imported 164 problems (0 already stored)"
    usage = run(db_path, "problems", "import")
    assert usage.exit_code == 2 and usage.stderr.startswith("error:") and len(usage.stderr.strip().splitlines()) == 1
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(_record(3)) + "\n{oops\n")
    result = run(db_path, "problems", "import", str(bad))
    assert result.exit_code == 1 and result.stderr.startswith("error:") and "bad.jsonl:2" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(json.loads(run(db_path, "problems", "list", "--limit", "1000", "--json").stdout)) == 164  # nothing added
    missing = run(db_path, "problems", "show", "999")
    assert missing.exit_code == 1 and "problem 999 does not exist" in missing.stderr
    split = run(db_path, "codeopt", "sample", "--model", "openai:x@http://127.0.0.1:9/v1", "--split", "test")
    assert split.exit_code == 2 and split.stderr.startswith("error:")


def test_sample_execute_pairs_and_eval_from_the_command_line(tmp_path: Path, db_path: Path) -> None:
    records = [_record(k) for k in range(8)]
    run(db_path, "problems", "import", str(write_problems(tmp_path / "p.jsonl", records)))
    with LoopbackLLM(PolicyStandIn()) as server:
        spec = f"openai:policy@{server.base_url}"
        sampled = run(db_path, "codeopt", "sample", "--model", spec, "-n", "10", "--split", "train",
                      "--held-out-fraction", "0.3", "--json")
        assert sampled.exit_code == 0, sampled.stderr
        summary = json.loads(sampled.stdout)
        assert summary["stop_reason"] == "done" and summary["answered"] == 10 * summary["problems"]
        executed = run(db_path, "codeopt", "execute", "--workers", "2", "--timeout", "5", "--json")
        assert executed.exit_code == 0, executed.stderr
        counts = json.loads(executed.stdout)
        assert counts["passed"] == 6 * summary["problems"] and counts["timeout"] == 0
        passed = run(db_path, "codeopt", "solutions", "--status", "passed", "--limit", "1000", "--json").stdout
        assert len(json.loads(passed)) == counts["passed"]
        made = json.loads(run(db_path, "codeopt", "pairs", "--objectives", "correctness", "--json").stdout)
        assert made["correctness"] == 12 * summary["problems"] and made["efficiency"] == 0
        stats = json.loads(run(db_path, "pairs", "stats", "--json").stdout)["stats"]
        assert stats["by_source"] == {"code-optimise": made["added"]}
        # The DPO export carries each pair's problem id as `group`, so the trainer draws per problem.
        exported = run(db_path, "export", "--out", str(tmp_path / "out"), "--format", "dpo")
        assert exported.exit_code == 0, exported.stderr
        rows = [json.loads(line) for split in ("train", "validation")
                for line in (tmp_path / "out" / "dpo" / f"{split}.jsonl").read_text().splitlines()]
        problem_of = {pair.id: str(pair.meta["problem_id"]) for pair in stored_pairs(make_engine(db_path))}
        assert len(rows) == made["added"] and all(row["group"] == problem_of[row["pair_id"]] for row in rows)
        records = [r for split in ("train", "validation")
                   for r in read_preference_records(tmp_path / "out" / "dpo" / f"{split}.jsonl")]
        assert len({r.group for r in records}) == summary["problems"]
        evaluated = run(db_path, "codeopt", "eval", "--model", spec, "-n", "4", "--k", "1,4", "--split", "held-out",
                        "--held-out-fraction", "0.3", "--workers", "2", "--timeout", "5")
        assert evaluated.exit_code == 0, evaluated.stderr
        assert "pass@1" in evaluated.stdout and "pass@4" in evaluated.stdout
    evals = json.loads(run(db_path, "codeopt", "evals", "--json").stdout)
    assert evals[0]["state"] == "done" and evals[0]["seen_problems"] == 0
    assert run(db_path, "codeopt", "pairs", "--objectives", "speed").exit_code == 2
    sandbox = run(db_path, "codeopt", "sandbox")
    assert sandbox.exit_code == 0 and "audit hook" in sandbox.stdout


def test_detach_queues_sample_execute_pairs_and_eval_for_a_worker(tmp_path: Path, db_path: Path) -> None:
    from stores.jobs import get_job
    from tests.workers import wait_for_job, worker_thread

    run(db_path, "problems", "import", str(write_problems(tmp_path / "p.jsonl", [_record(k) for k in range(4)])))
    engine = make_engine(db_path)
    with LoopbackLLM(PolicyStandIn()) as server, worker_thread(engine) as worker:  # a live worker: none is started
        spec = f"openai:policy@{server.base_url}"

        def queued(*args: str) -> dict[str, object]:
            result = run(db_path, "codeopt", *args, "--detach", "--json")
            assert result.exit_code == 0, result.stderr
            job = json.loads(result.stdout)
            assert job["state"] == "queued" and job["kind"] == f"codeopt-{args[0]}"
            finished = wait_for_job(engine, int(job["job_id"]), timeout=300)
            assert finished.state == "done" and finished.worker_id == worker.id, finished.error
            return finished.summary

        assert queued("sample", "--model", spec, "-n", "10")["answered"] == 40
        assert queued("execute", "--workers", "2", "--timeout", "5")["passed"] == 24
        assert queued("pairs", "--objectives", "correctness")["added"] == 4 * 12
        evaluated = queued("eval", "--model", spec, "-n", "10", "--k", "1", "--split", "all")
        assert evaluated["metrics"]["pass_at"]["1"] == pytest.approx(0.6)
        assert len(server.requests) == 40  # the evaluation reused the samples of the same configuration
    assert get_job(engine, 1).kind == "codeopt-sample"


def test_bad_input_with_detach_is_refused_before_anything_is_queued(tmp_path: Path, db_path: Path) -> None:
    spec = "openai:policy@http://127.0.0.1:9/v1"
    for args, code in ((["sample", "--model", spec], 2), (["eval", "--model", spec, "-n", "2", "--k", "3"], 2),
                       (["pairs", "--objectives", "speed"], 2), (["sample", "--model", "nope:x"], 2)):
        result = run(db_path, "codeopt", *args, "--detach")
        assert result.exit_code == code and result.stderr.startswith("error:"), (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert json.loads(run(db_path, "jobs", "list", "--json").stdout) == []
