"""`workbench synth|instructions|llm` through the CLI, including kill -9 and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from stores.curation.tables import PairRow
from stores.db import make_engine
from stores.jobs import list_jobs
from stores.synthesis.runs import item_counts
from stores.synthesis.tables import ConversationRow, SynthItemRow
from tests.fixtures import HOSTILE_TEXT, stored_pairs
from tests.llm_server import LoopbackLLM
from tests.synth_answers import synth_responder
from tests.synth_fixtures import add_commits, commit_messages
from workbench.cli import app

REPO_ROOT = Path(__file__).resolve().parents[2]


def invoke(db: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["--db", str(db), *args])


def test_commit_instruct_command_reports_counts_and_pairs_show(db_path: Path) -> None:
    engine = make_engine(db_path)
    add_commits(engine, commit_messages(7) + [f"Fix {HOSTILE_TEXT} #99"])
    with LoopbackLLM(synth_responder) as server:
        spec = f"openai:critic@{server.base_url}"
        estimate = invoke(db_path, "synth", "commit-instruct", "--critic", spec, "--estimate", "--json")
        assert estimate.exit_code == 0, estimate.output  # type: ignore[attr-defined]
        assert json.loads(estimate.stdout)["items"] == 8  # type: ignore[attr-defined]
        assert not server.requests
        result = invoke(db_path, "synth", "commit-instruct", "--critic", spec, "--concurrency", "3", "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    summary = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert (summary["stop_reason"], summary["done"], summary["pairs"]) == ("done", 8, 3)
    assert "estimate: 8 items" in result.stderr  # type: ignore[attr-defined]
    listed = invoke(db_path, "pairs", "list")
    assert listed.exit_code == 0 and len(listed.stdout.strip().splitlines()) == 4  # type: ignore[attr-defined]
    first = stored_pairs(engine)[0]
    shown = invoke(db_path, "pairs", "show", str(first.id))
    assert shown.exit_code == 0 and first.chosen in shown.stdout  # type: ignore[attr-defined]
    convs = invoke(db_path, "synth", "conversations", "--limit", "5")
    assert convs.exit_code == 0  # type: ignore[attr-defined]


def test_bad_options_are_one_line_errors(db_path: Path, tmp_path: Path) -> None:
    result = invoke(db_path, "synth", "commit-instruct", "--critic", "gpt-4o")
    assert result.exit_code == 1 and "model spec 'gpt-4o'" in result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    result = invoke(db_path, "synth", "commit-instruct", "--critic", "openai:m@http://127.0.0.1:9/v1")
    assert result.exit_code == 1 and "no mined commits" in result.stderr  # type: ignore[attr-defined]
    result = invoke(db_path, "synth", "commit-instruct", "--critic", "openai:m", "--budget", "lots")
    assert result.exit_code == 1 and "budget 'lots'" in result.stderr  # type: ignore[attr-defined]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "ok"}\n{not json\n', encoding="utf-8")
    result = invoke(db_path, "instructions", "import", str(bad))
    assert result.exit_code == 1 and "bad.jsonl:2: not valid JSON" in result.stderr  # type: ignore[attr-defined]


def test_unreachable_server_fails_items_with_reason_and_rerun_retries(db_path: Path) -> None:
    engine = make_engine(db_path)
    add_commits(engine, ["Fix total #1"])
    spec = "openai:critic@http://127.0.0.1:9/v1?retries=0&timeout=1"
    result = invoke(db_path, "synth", "commit-instruct", "--critic", spec)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    with Session(engine) as session:
        item = session.exec(select(SynthItemRow)).one()
        assert item.state == "failed" and item.retryable and "connection failed" in item.reason
    with LoopbackLLM(synth_responder) as server:
        spec = f"openai:critic@{server.base_url}"
        # a different URL, same model: same configuration, so the failed item is retried
        invoke(db_path, "synth", "commit-instruct", "--critic", spec)
    with Session(engine) as session:
        assert session.exec(select(SynthItemRow)).one().state == "pair"


def test_critic_evol_command_imports_instructions(db_path: Path, tmp_path: Path) -> None:
    source = tmp_path / "seed.csv"
    source.write_text("id,instruction\n1,Count the words in a text.\n2,Reverse a string.\n", encoding="utf-8")
    with LoopbackLLM(synth_responder) as server:
        result = invoke(db_path, "synth", "critic-evol", "--draft", f"openai:d@{server.base_url}",
                        "--critic", f"openai:c@{server.base_url}", "--instructions", str(source), "--json")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    summary = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert (summary["pairs"], summary["filtered"], summary["failed"]) == (1, 1, 0)
    again = invoke(db_path, "instructions", "import", str(source))
    assert "2 instructions read, 0 new" in again.stdout  # type: ignore[attr-defined]


def test_kill_9_then_rerun_finishes_with_exact_counts(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine(db_path)
    total = 42
    add_commits(engine, commit_messages(total))
    with LoopbackLLM(synth_responder, delay_s=0.05) as server:
        command = [sys.executable, "-c", "from workbench.cli import app; app()", "--db", str(db_path),
                   "synth", "commit-instruct", "--critic", f"openai:critic@{server.base_url}", "--concurrency", "6"]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Session(engine) as session:
                finished = len(session.exec(select(SynthItemRow).where(SynthItemRow.state != "pending")).all())
            if finished >= 15:
                break
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        with Session(engine) as session:
            claimed_at_kill = len(session.exec(select(SynthItemRow).where(SynthItemRow.state == "claimed")).all())
            stored_before = {row.messages_json for row in session.exec(select(ConversationRow)).all()}
        assert claimed_at_kill > 0, "the kill should land while items are in flight"
        sent_before = len(server.requests)
        monkeypatch.setenv("WORKBENCH_LEASE_S", "2")  # from here on, a heartbeat 2 s old has run out
        time.sleep(2.5)  # no process check, only leases: the job's and its items' run out

        result = invoke(db_path, "synth", "commit-instruct", "--critic", f"openai:critic@{server.base_url}",
                        "--concurrency", "6", "--json")
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        resent = [json.dumps(r["messages"], ensure_ascii=False) for r in server.requests[sent_before:]]

    sent_first = {json.dumps(r["messages"], ensure_ascii=False) for r in server.requests[:sent_before]}
    assert len(sent_first & stored_before) == len(stored_before)  # same encoding on both sides
    assert resent and not set(resent) & stored_before, "a request whose answer was stored was sent again"
    jobs = list_jobs(engine, kind="synth")
    assert [(job.state, job.attempts) for job in jobs] == [("done", 2)]  # the killed job, taken over
    with Session(engine) as session:
        items = session.exec(select(SynthItemRow)).all()
        pairs = session.exec(select(PairRow)).all()
    states = [item.state for item in items]
    assert len(items) == total and "pending" not in states and "claimed" not in states
    per_seven = {"pair": 2, "filtered": 3, "failed": 2}
    assert {s: states.count(s) for s in per_seven} == {s: n * total // 7 for s, n in per_seven.items()}
    assert len(pairs) == states.count("pair") == len({p.content_hash for p in pairs})
    assert sorted(p.id for p in pairs) == sorted(i.pair_id for i in items if i.state == "pair")
    final = jobs[0].summary
    assert (final["items_pair"], final["items_filtered"], final["items_failed"]) == (12, 18, 12)
    assert item_counts(engine, jobs[0].summary["config_key"]).total == total


def test_budget_flag_stops_cleanly_and_rerun_completes(db_path: Path) -> None:
    engine = make_engine(db_path)
    add_commits(engine, [f"Fix total #{i}" for i in range(8)])
    with LoopbackLLM(synth_responder) as server:
        spec = f"openai:critic@{server.base_url}"
        capped = invoke(db_path, "synth", "commit-instruct", "--critic", spec, "--concurrency", "2",
                        "--budget", "2500", "--json")
        assert capped.exit_code == 0, capped.output  # type: ignore[attr-defined]
        assert json.loads(capped.stdout)["stop_reason"] == "budget"  # type: ignore[attr-defined]
        assert "budget reached" in capped.stderr  # type: ignore[attr-defined]
        assert list_jobs(engine, kind="synth")[0].state == "cancelled"
        rest = invoke(db_path, "synth", "commit-instruct", "--critic", spec, "--json")
    first, second = json.loads(capped.stdout), json.loads(rest.stdout)  # type: ignore[attr-defined]
    assert first["done"] + second["done"] == 8 and first["pairs"] + second["pairs"] == 8
    assert first["requests"] + second["requests"] == 24 == len(server.requests)


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_two_commands_on_the_same_run_cooperate(store: str, db_path: Path, request: pytest.FixtureRequest) -> None:
    url = str(db_path) if store == "sqlite" else str(request.getfixturevalue("pg_url"))
    engine = make_engine(url)
    total = 84
    add_commits(engine, commit_messages(total))
    with LoopbackLLM(synth_responder, delay_s=0.1) as server:  # long enough for the second to start meanwhile
        command = [sys.executable, "-c", "from workbench.cli import app; app()", "--db", url, "synth",
                   "commit-instruct", "--critic", f"openai:critic@{server.base_url}", "--concurrency", "2", "--json"]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not list_jobs(engine, kind="synth"):
            time.sleep(0.05)
        second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        outputs = [process.communicate(timeout=300) for process in (first, second)]
    assert [process.returncode for process in (first, second)] == [0, 0], [err.decode()[-2000:] for _out, err in outputs]
    jobs = list_jobs(engine, kind="synth")
    assert len(jobs) == 1 and jobs[0].state == "done"  # the second command joined the first one's job
    assert {json.loads(out)["job_id"] for out, _err in outputs} == {jobs[0].id}
    with Session(engine) as session:
        items = session.exec(select(SynthItemRow)).all()
        pairs = session.exec(select(PairRow)).all()
    assert len(items) == total and {item.state for item in items} <= {"pair", "filtered", "failed"}
    assert {item.attempts for item in items} == {1}  # no item claimed twice
    assert len({item.worker_id for item in items}) == 2  # both commands ended items
    assert len(pairs) == sum(item.state == "pair" for item in items) == len({p.content_hash for p in pairs})
    engine.dispose()
