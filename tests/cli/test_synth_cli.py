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
    # Two answers were unusable: the run says so in one line and exits 3 (neither bad input nor usage).
    assert result.exit_code == 3, result.output  # type: ignore[attr-defined]
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]  # type: ignore[attr-defined]
    assert error_lines == ["error: 2 of 8 items failed: 2 unusable answers (e.g. no INSTRUCTION section in the answer)"] \
        or error_lines == ["error: 2 of 8 items failed: 2 unusable answers (e.g. no YES/NO verdict in the answer)"]
    summary = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert (summary["stop_reason"], summary["done"], summary["pairs"], summary["failed"]) == ("done", 8, 3, 2)
    assert summary["failed_by_kind"] == {"answer": 2} and summary["requests"] == len(server.requests)
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
    assert result.exit_code == 2 and "model spec 'gpt-4o'" in result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    result = invoke(db_path, "synth", "commit-instruct", "--critic", "openai:m@http://127.0.0.1:9/v1")
    assert result.exit_code == 1 and "no mined commits" in result.stderr  # type: ignore[attr-defined]
    result = invoke(db_path, "synth", "commit-instruct", "--critic", "openai:m@http://127.0.0.1:9/v1",
                    "--budget", "lots")
    assert result.exit_code == 2 and "budget 'lots'" in result.stderr  # type: ignore[attr-defined]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "ok"}\n{not json\n', encoding="utf-8")
    result = invoke(db_path, "instructions", "import", str(bad))
    assert result.exit_code == 1 and "bad.jsonl:2:2: not valid JSON" in result.stderr  # type: ignore[attr-defined]


def test_unreachable_server_fails_items_with_reason_and_rerun_retries(db_path: Path) -> None:
    engine = make_engine(db_path)
    add_commits(engine, ["Fix total #1"])
    spec = "openai:critic@http://127.0.0.1:9/v1?retries=1&timeout=1"
    result = invoke(db_path, "synth", "commit-instruct", "--critic", spec, "--json")
    assert result.exit_code == 3, result.output  # type: ignore[attr-defined]
    assert result.stderr.splitlines()[-1].startswith(  # type: ignore[attr-defined]
        "error: 1 of 1 items failed: 1 LLM request failed (llm error at step explain: critic at "
        "http://127.0.0.1:9/v1/chat/completions: gave up after 2 attempts (connection failed: Connection refused")
    summary = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert (summary["requests"], summary["retries"], summary["answers"]) == (2, 1, 0)
    assert summary["http_failures"] == {"connect": 2} and summary["failed_by_kind"] == {"llm:connect": 1}
    assert list_jobs(engine, kind="synth")[0].state == "failed"
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
        assert result.exit_code == 3, result.output  # type: ignore[attr-defined]
        resent = [json.dumps(r["messages"], ensure_ascii=False) for r in server.requests[sent_before:]]

    sent_first = {json.dumps(r["messages"], ensure_ascii=False) for r in server.requests[:sent_before]}
    assert len(sent_first & stored_before) == len(stored_before)  # same encoding on both sides
    assert resent and not set(resent) & stored_before, "a request whose answer was stored was sent again"
    jobs = list_jobs(engine, kind="synth")
    # The killed job, taken over; it ends failed because some answers are unusable.
    assert [(job.state, job.attempts) for job in jobs] == [("failed", 2)]
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
        assert "budget reached (2500): " in capped.stderr  # type: ignore[attr-defined]
        over = json.loads(capped.stdout)["budget_overshoot_tokens"]  # type: ignore[attr-defined]
        assert over == json.loads(capped.stdout)["tokens"] - 2500 > 0  # type: ignore[attr-defined]
        assert f"({over:,} over)" in capped.stderr  # type: ignore[attr-defined]
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
    assert [process.returncode for process in (first, second)] == [3, 3], [err.decode()[-2000:] for _out, err in outputs]
    jobs = list_jobs(engine, kind="synth")
    # The second command joined the first one's job; unusable answers fail some items, so the job.
    assert len(jobs) == 1 and jobs[0].state == "failed"
    assert {json.loads(out)["job_id"] for out, _err in outputs} == {jobs[0].id}
    with Session(engine) as session:
        items = session.exec(select(SynthItemRow)).all()
        pairs = session.exec(select(PairRow)).all()
    assert len(items) == total and {item.state for item in items} <= {"pair", "filtered", "failed"}
    assert {item.attempts for item in items} == {1}  # no item claimed twice
    assert len({item.worker_id for item in items}) == 2  # both commands ended items
    assert len(pairs) == sum(item.state == "pair" for item in items) == len({p.content_hash for p in pairs})
    engine.dispose()


def test_a_dollar_budget_without_a_price_is_refused(db_path: Path) -> None:
    engine = make_engine(db_path)
    add_commits(engine, ["Fix total #1"])
    with LoopbackLLM(synth_responder) as server:
        spec = f"openai:critic@{server.base_url}"
        refused = invoke(db_path, "synth", "commit-instruct", "--critic", spec, "--budget", "$0.01")
        assert refused.exit_code == 2, refused.output  # type: ignore[attr-defined]  # usage error
        assert refused.stderr.strip() == (  # type: ignore[attr-defined]
            "error: budget '$0.01' is in dollars, but the critic model 'critic' has no price: pass "
            "--price-in/--price-out (USD per 1M tokens) or give the budget in tokens (e.g. 2M)")
        assert not server.requests and not list_jobs(engine, kind="synth")
        priced = invoke(db_path, "synth", "commit-instruct", "--critic", spec, "--budget", "$0.01",
                        "--price-in", "1", "--price-out", "2", "--json")
    assert priced.exit_code == 0, priced.output  # type: ignore[attr-defined]
    assert json.loads(priced.stdout)["pairs"] == 1  # type: ignore[attr-defined]


def test_a_404_endpoint_fails_the_run_with_exit_3_and_no_retries(db_path: Path) -> None:
    engine = make_engine(db_path)
    add_commits(engine, [f"Fix total #{i}" for i in range(3)])
    with LoopbackLLM(synth_responder) as server:
        server.add_faults("404", "404", "404")
        result = invoke(db_path, "synth", "commit-instruct", "--critic", f"openai:critic@{server.base_url}")
        assert len(server.requests) == 3
    assert result.exit_code == 3  # type: ignore[attr-defined]
    assert result.stderr.splitlines()[-1].startswith(  # type: ignore[attr-defined]
        "error: 3 of 3 items failed: 3 LLM requests failed (e.g. llm error at step explain: critic at ")
    assert "HTTP 404: not found" in result.stderr.splitlines()[-1]  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]


def test_sigint_keeps_the_run_counters(db_path: Path) -> None:
    engine = make_engine(db_path)
    add_commits(engine, [f"Fix total #{i}" for i in range(40)])
    with LoopbackLLM(synth_responder, delay_s=0.1) as server:
        command = [sys.executable, "-c", "from workbench.cli import app; app()", "--db", str(db_path),
                   "synth", "commit-instruct", "--critic", f"openai:critic@{server.base_url}", "--concurrency", "2"]
        process = subprocess.Popen(command, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with Session(engine) as session:
                if len(session.exec(select(SynthItemRow).where(SynthItemRow.state == "pair")).all()) >= 3:
                    break
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=30)
        sent = len(server.requests)
    assert process.returncode == 130 and "error: interrupted: synth job" in err.decode()
    (job,) = list_jobs(engine, kind="synth")
    with Session(engine) as session:
        pairs = len(session.exec(select(SynthItemRow).where(SynthItemRow.state == "pair")).all())
    assert job.state == "cancelled" and job.summary["stop_reason"] == "interrupted"
    assert job.summary["done"] == job.summary["pairs"] == pairs >= 3
    # Attempts include those in flight at the interrupt (at most the concurrency, 2, may not have reached it).
    assert sent - 2 <= job.summary["requests"] <= sent + 2 and job.summary["items_pair"] == pairs
