"""`workbench arena ...` end to end with a loopback OpenAI-compatible server as candidate and judge."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from stores.db import make_engine
from stores.evaluation.tables import ArenaAnswerRow, ArenaJudgementRow
from stores.jobs import list_jobs
from stores.synthesis.tables import ResponseCacheRow
from tests.arena_fixtures import (
    CATEGORIES,
    LANGUAGES,
    QUESTIONS,
    arena_responder,
    category_of,
    expected_verdict,
    language_of,
    write_answers,
    write_set,
)
from tests.fixtures import HOSTILE_ALL
from tests.llm_server import LoopbackLLM
from workbench.cli import app

REPO_ROOT = Path(__file__).resolve().parents[2]
OUTCOME = {"much better": "win", "better": "win", "tie": "tie", "worse": "loss", "much worse": "loss",
           "undecided": "undecided"}


def invoke(db: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["--db", str(db), *args])


def ok(result: object) -> object:
    assert result.exit_code == 0, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    return result


def _expected_counts(key: object) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {}
    for index in range(QUESTIONS):
        for order in ("given", "swapped"):
            group = key(index)  # type: ignore[operator]
            counts.setdefault(group, Counter())[OUTCOME[expected_verdict(index, order)]] += 1
    return counts


def _group_counts(groups: list[dict]) -> dict[str, Counter[str]]:
    return {g["name"]: Counter({"win": g["wins"], "tie": g["ties"], "loss": g["losses"], "undecided": g["undecided"]})
            for g in groups}


def test_loopback_candidate_and_judge_give_exact_counts_per_category(db_path: Path, tmp_path: Path) -> None:
    set_file = write_set(tmp_path / "arena40.jsonl")
    imported = ok(invoke(db_path, "arena", "import", str(set_file), "--json"))
    assert json.loads(imported.stdout)["set"]["questions"] == QUESTIONS  # type: ignore[attr-defined]
    again = ok(invoke(db_path, "arena", "import", str(set_file)))
    assert again.stdout.startswith("already stored as set 1")  # type: ignore[attr-defined]
    with LoopbackLLM(arena_responder) as server:
        spec = f"openai:loop@{server.base_url}"
        answered = ok(invoke(db_path, "arena", "answer", "arena40", "--model", spec, "--name", "cand",
                             "--concurrency", "4", "--json"))
        assert json.loads(answered.stdout)["done"] == QUESTIONS  # type: ignore[attr-defined]
        assert len(server.requests) == QUESTIONS
        ok(invoke(db_path, "arena", "answer", "arena40", "--model", spec, "--name", "cand"))
        assert len(server.requests) == QUESTIONS, "a second run asked again for stored answers"

        judged = ok(invoke(db_path, "arena", "judge", "arena40", "--candidate", "cand", "--judge", spec,
                           "--concurrency", "4", "--json"))
        assert len(server.requests) == QUESTIONS + 2 * QUESTIONS
        rerun = ok(invoke(db_path, "arena", "judge", "arena40", "--candidate", "cand", "--judge", spec, "--json"))
        assert len(server.requests) == 3 * QUESTIONS, "a resumed run judged a question twice"
    payload = json.loads(judged.stdout)  # type: ignore[attr-defined]
    assert (payload["run"]["state"], payload["run"]["done"], payload["run"]["total"]) == ("done", 80, 80)
    scores = payload["scores"]
    assert _group_counts(scores["by_category"]) == _expected_counts(category_of)
    assert _group_counts(scores["by_language"]) == _expected_counts(language_of)
    assert sorted(g["name"] for g in scores["by_category"]) == sorted(CATEGORIES)
    assert all(g["judgements"] == 10 for g in scores["by_category"])
    expected_all = sum(_expected_counts(category_of).values(), Counter())
    overall = scores["overall"]
    assert (overall["wins"], overall["ties"], overall["losses"], overall["undecided"]) == (
        expected_all["win"], expected_all["tie"], expected_all["loss"], expected_all["undecided"])
    five_point = Counter(expected_verdict(i, o) for i in range(QUESTIONS) for o in ("given", "swapped"))
    assert scores["verdicts"] == {v: five_point[v] for v in scores["verdicts"]}
    consistent = sum(1 for i in range(QUESTIONS)
                     if OUTCOME[expected_verdict(i, "given")] == OUTCOME[expected_verdict(i, "swapped")] != "undecided")
    assert scores["consistency"] == pytest.approx(consistent / QUESTIONS)
    low, high = scores["interval"]
    win_rate = (expected_all["win"] + 0.5 * (expected_all["tie"] + expected_all["undecided"])) / 80
    assert low < win_rate < high
    assert json.loads(rerun.stdout)["scores"] == scores  # type: ignore[attr-defined]

    shown = ok(invoke(db_path, "arena", "scores", "1"))
    lines = shown.stdout.splitlines()  # type: ignore[attr-defined]
    assert f"win rate {100 * win_rate:.1f}%" in lines[1]
    assert sum(1 for line in lines if line.startswith("category\t")) == len(CATEGORIES)
    assert sum(1 for line in lines if line.startswith("language\t")) == len(LANGUAGES)
    exported = json.loads(ok(invoke(db_path, "arena", "export", "1", "--format", "json")).stdout)  # type: ignore[attr-defined]
    assert [row["group"] for row in exported].count("category") == len(CATEGORIES)
    csv_text = ok(invoke(db_path, "arena", "export", "--format", "csv")).stdout  # type: ignore[attr-defined]
    assert csv_text.splitlines()[0].startswith("run,set,candidate") and len(csv_text.splitlines()) == 2
    md = tmp_path / "board.md"
    ok(invoke(db_path, "arena", "export", "--format", "md", "--output", str(md)))
    assert md.read_text().startswith("| run | set | candidate |")
    judgements = json.loads(ok(invoke(db_path, "arena", "export", "1", "--judgements", "-f", "json")).stdout)  # type: ignore[attr-defined]
    assert len(judgements) == 80 and {j["order"] for j in judgements} == {"given", "swapped"}


def test_kill_9_then_resume_judges_nothing_twice(db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ok(invoke(db_path, "arena", "import", str(write_set(tmp_path / "arena40.jsonl"))))
    answers = write_answers(tmp_path / "cand.jsonl", {i: f"CANDIDATE answer {i}" for i in range(QUESTIONS)})
    ok(invoke(db_path, "arena", "import-answers", "arena40", str(answers), "--model", "cand"))
    engine = make_engine(db_path)
    with LoopbackLLM(arena_responder, delay_s=0.05) as server:
        spec = f"openai:judge@{server.base_url}"
        command = [sys.executable, "-c", "from workbench.cli import app; app()", "--db", str(db_path),
                   "arena", "judge", "arena40", "--candidate", "cand", "--judge", spec, "--concurrency", "3"]
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and process.poll() is None:
            with Session(engine) as session:
                stored = len(session.exec(select(ArenaJudgementRow.id)).all())
            if stored >= 20:
                break
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        with Session(engine) as session:
            before = {(j.question_id, j.judge_order): (j.id, j.raw_output, j.verdict)
                      for j in session.exec(select(ArenaJudgementRow)).all()}
            cached_before = len(session.exec(select(ResponseCacheRow.key)).all())
        assert 0 < len(before) < 80, "the kill should land mid-run"
        assert cached_before == len(before), "a cached verdict must be stored with its judgement"
        sent_before = len(server.requests)
        monkeypatch.setenv("WORKBENCH_LEASE_S", "2")  # from here on, a heartbeat 2 s old has run out
        time.sleep(2.5)  # no process check, only leases: the killed job's runs out

        resumed = ok(invoke(db_path, "arena", "judge", "arena40", "--candidate", "cand", "--judge", spec,
                            "--concurrency", "3", "--json"))
        resent = server.requests[sent_before:]
    assert len(resent) == 80 - len(before), "the resumed run asked for a judgement that was stored"
    with Session(engine) as session:
        rows = session.exec(select(ArenaJudgementRow)).all()
    assert len(rows) == 80 == len({(r.question_id, r.judge_order) for r in rows})
    after = {(r.question_id, r.judge_order): (r.id, r.raw_output, r.verdict) for r in rows}
    assert all(after[key] == value for key, value in before.items()), "a stored judgement changed"
    payload = json.loads(resumed.stdout)  # type: ignore[attr-defined]
    assert (payload["run"]["state"], payload["run"]["done"]) == ("done", 80)
    # The killed job, taken over by the same command once its lease ran out.
    assert [(job.state, job.attempts) for job in list_jobs(engine, kind="arena-judge")] == [("done", 2)]
    expected = Counter(OUTCOME[expected_verdict(i, o)] for i in range(QUESTIONS) for o in ("given", "swapped"))
    overall = payload["scores"]["overall"]
    assert (overall["wins"], overall["ties"], overall["losses"], overall["undecided"]) == (
        expected["win"], expected["tie"], expected["loss"], expected["undecided"])


def test_length_baselines_as_judges_match_win_rates_computed_here(db_path: Path, tmp_path: Path) -> None:
    ok(invoke(db_path, "arena", "import", str(write_set(tmp_path / "arena40.jsonl"))))
    baseline = {i: f"BASELINE answer {i}" for i in range(QUESTIONS)}
    # Shorter, as long as, or longer than the baseline's answer, by question.
    candidate = {i: baseline[i][: 8 + i % 5] if i % 3 == 0 else
                 ("b" * len(baseline[i]) if i % 3 == 1 else baseline[i] + " and more" * (i % 4 + 1))
                 for i in range(QUESTIONS)}
    ok(invoke(db_path, "arena", "import-answers", "arena40", str(write_answers(tmp_path / "c.jsonl", candidate)),
              "--model", "cand"))
    for judge, better in (("baseline:shorter", lambda c, b: c < b), ("baseline:longer", lambda c, b: c > b)):
        result = ok(invoke(db_path, "arena", "judge", "arena40", "--candidate", "cand", "--judge", judge, "--json"))
        scores = json.loads(result.stdout)["scores"]  # type: ignore[attr-defined]
        credit = {i: 0.5 if len(candidate[i]) == len(baseline[i]) else float(better(len(candidate[i]), len(baseline[i])))
                  for i in range(QUESTIONS)}
        overall = sum(credit.values()) / QUESTIONS  # both orders agree, so each question counts twice alike
        got = scores["overall"]
        assert (got["wins"] + 0.5 * (got["ties"] + got["undecided"])) / got["judgements"] == pytest.approx(overall)
        assert got["judgements"] == 80 and scores["consistency"] == pytest.approx(
            sum(1 for i in range(QUESTIONS) if credit[i] != 0.5) / QUESTIONS)
        for group in scores["by_category"]:
            members = [i for i in range(QUESTIONS) if category_of(i) == group["name"]]
            rate = (group["wins"] + 0.5 * (group["ties"] + group["undecided"])) / group["judgements"]
            assert rate == pytest.approx(sum(credit[i] for i in members) / len(members))
    board = json.loads(ok(invoke(db_path, "arena", "leaderboard", "--json")).stdout)  # type: ignore[attr-defined]
    assert [row["judge"] for row in board] == sorted(
        ["baseline:shorter", "baseline:longer"], key=lambda j: -next(r["win rate %"] for r in board if r["judge"] == j))
    assert {row["judge"] for row in board} == {"baseline:shorter", "baseline:longer"}


def test_budget_stops_generation_and_a_rerun_completes(db_path: Path, tmp_path: Path) -> None:
    ok(invoke(db_path, "arena", "import", str(write_set(tmp_path / "arena40.jsonl", 12))))
    with LoopbackLLM(arena_responder) as server:
        spec = f"openai:loop@{server.base_url}"
        first = ok(invoke(db_path, "arena", "answer", "arena40", "--model", spec, "--budget", "40",
                          "--concurrency", "1", "--json"))
        summary = json.loads(first.stdout)  # type: ignore[attr-defined]
        assert summary["stop_reason"] == "budget" and 0 < summary["done"] < 12
        assert "budget reached" in first.stderr  # type: ignore[attr-defined]
        second = ok(invoke(db_path, "arena", "answer", "arena40", "--model", spec, "--json"))
        assert json.loads(second.stdout)["done"] == 12  # type: ignore[attr-defined]
        assert len(server.requests) == 12
    with Session(make_engine(db_path)) as session:
        generated = session.exec(select(ArenaAnswerRow).where(ArenaAnswerRow.model == "loop")).all()
    assert len(generated) == 12 and all(json.loads(a.lineage_json)["spec"] == spec for a in generated)


def test_bad_input_is_one_line_and_stores_nothing(db_path: Path, tmp_path: Path) -> None:
    ok(invoke(db_path, "arena", "import", str(write_set(tmp_path / "s.jsonl", 3))))
    cases = [  # (arguments, exit code: 2 for a usage error, 1 for bad data, message)
        (["arena", "show", "nope"], 1, "arena set 'nope' does not exist"),
        (["arena", "judge", "s", "--candidate", "x", "--judge", "baseline:shorter"], 1, "the candidate 'x' has no answers"),
        (["arena", "judge", "s", "--candidate", "baseline", "--judge", "baseline:nonsense"], 2, "unknown baseline"),
        (["arena", "judge", "s", "--candidate", "baseline", "--judge", "baseline:shorter", "--orders", "some"],
         2, "orders must be"),
        (["arena", "answer", "s", "--model", "gpt-4o"], 2, "gpt-4o"),
        (["arena", "import", str(tmp_path / "missing.jsonl")], 2, "no such file"),
        (["arena", "export", "--format", "xml"], 2, "unknown export format"),
        (["arena", "scores", "9"], 1, "arena run 9 does not exist"),
    ]
    for args, code, message in cases:
        result = invoke(db_path, *args)
        assert result.exit_code == code, (args, result.output)  # type: ignore[attr-defined]
        assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr  # type: ignore[attr-defined]
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output  # type: ignore[attr-defined]
    stray = write_answers(tmp_path / "stray.jsonl", {0: "fine", 7: "no such question"})
    result = invoke(db_path, "arena", "import-answers", "s", str(stray), "--model", "m")
    assert result.exit_code == 1 and "first 'q7'" in result.stderr  # type: ignore[attr-defined]
    shown = json.loads(ok(invoke(db_path, "arena", "show", "s", "--json")).stdout)  # type: ignore[attr-defined]
    assert shown["set"]["models"] == {"baseline": 3}
    assert list_jobs(make_engine(db_path)) == []


def test_list_and_show_commands_keep_hostile_text_inert(db_path: Path, tmp_path: Path) -> None:
    records = [{"id": f"{HOSTILE_ALL} {i}", "question": f"Q{i}: {HOSTILE_ALL}", "category": HOSTILE_ALL,
                "language": "python", "baseline_answer": f"base {HOSTILE_ALL}"} for i in range(3)]
    path = tmp_path / "hostile.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    ok(invoke(db_path, "arena", "import", str(path), "--name", "hostile"))
    answers = tmp_path / "answers.jsonl"
    answers.write_text("".join(json.dumps({"id": r["id"], "answer": f"cand {HOSTILE_ALL}!"}) + "\n" for r in records),
                       encoding="utf-8")
    ok(invoke(db_path, "arena", "import-answers", "hostile", str(answers), "--model", HOSTILE_ALL))
    ok(invoke(db_path, "arena", "judge", "hostile", "--candidate", HOSTILE_ALL, "--judge", "baseline:longer"))
    commands = [
        ["arena", "sets"], ["arena", "show", "hostile", "--questions"], ["arena", "answers", "hostile", "--model",
                                                                       HOSTILE_ALL],
        ["arena", "runs"], ["arena", "scores", "1", "--judgements"], ["arena", "leaderboard"],
        ["arena", "export"], ["arena", "export", "1", "-f", "csv"], ["arena", "export", "1", "--judgements", "-f", "md"],
        ["arena", "sets", "--json"], ["arena", "scores", "1", "--judgements", "--json"],
        ["arena", "export", "1", "-f", "json"],
    ]
    for args in commands:
        result = ok(invoke(db_path, *args))
        raw = result.stdout_bytes  # type: ignore[attr-defined]
        assert raw, args
        for forbidden in (b"\x1b", b"\x00", "\u009b".encode(), "\u202e".encode()):
            assert forbidden not in raw, (args, forbidden)


def test_a_pairwise_model_of_ours_judges_like_its_reference_loop(db_path: Path, tmp_path: Path,
                                                                   tiny_model_dir: Path) -> None:
    from core.evaluation.arena import pairing
    from core.evaluation.pair_rm import full_logits_decisions, load_model_and_tokenizer

    count = 6
    ok(invoke(db_path, "arena", "import", str(write_set(tmp_path / "s.jsonl", count))))
    candidate = {i: f"def f(xs):\n    return sorted(xs)[{i}]\n" for i in range(count)}
    ok(invoke(db_path, "arena", "import-answers", "s", str(write_answers(tmp_path / "c.jsonl", candidate)),
              "--model", "cand"))
    result = ok(invoke(db_path, "arena", "judge", "s", "--candidate", "cand", "--judge", f"pair-rm:{tiny_model_dir}",
                       "--device", "cpu", "--batch-size", "4", "--json"))
    payload = json.loads(result.stdout)  # type: ignore[attr-defined]
    assert (payload["run"]["done"], payload["run"]["lineage"]["device"]) == (2 * count, "cpu")
    judged = {(j["question"], j["order"]): j["verdict"] for j in json.loads(
        ok(invoke(db_path, "arena", "export", "1", "--judgements", "-f", "json")).stdout)}  # type: ignore[attr-defined]
    model, tokenizer = load_model_and_tokenizer(tiny_model_dir, device="cpu", dtype=__import__("torch").float32)
    items = [pairing(i, order, f"Q{i}: how do I do task {i}?", category_of(i), language_of(i),
                     (0, candidate[i]), (0, f"BASELINE answer {i}"))
             for i in range(count) for order in ("given", "swapped")]
    reference = full_logits_decisions(model, tokenizer, [item.judge_item() for item in items], "cpu")
    expected = {(f"q{item.question_id}", item.order):
                "undecided" if decision == "?" else ("better" if decision == item.candidate_side else "worse")
                for item, decision in zip(items, reference)}
    assert judged == expected


def test_judging_stops_at_its_budget_resumes_and_runs_one_order_apart(db_path: Path, tmp_path: Path) -> None:
    ok(invoke(db_path, "arena", "import", str(write_set(tmp_path / "arena40.jsonl", 10))))
    answers = write_answers(tmp_path / "cand.jsonl", {i: f"CANDIDATE answer {i}" for i in range(10)})
    ok(invoke(db_path, "arena", "import-answers", "arena40", str(answers), "--model", "cand"))
    with LoopbackLLM(arena_responder) as server:
        spec = f"openai:judge@{server.base_url}"
        first = ok(invoke(db_path, "arena", "judge", "arena40", "--candidate", "cand", "--judge", spec,
                          "--budget", "500", "--concurrency", "1", "--json"))
        job = json.loads(first.stdout)["job"]  # type: ignore[attr-defined]
        assert job["stop_reason"] == "budget" and 0 < job["done"] < 20
        assert "budget reached" in first.stderr  # type: ignore[attr-defined]
        shown = json.loads(ok(invoke(db_path, "arena", "runs", "--json")).stdout)  # type: ignore[attr-defined]
        assert (shown[0]["state"], shown[0]["done"]) == ("stopped", job["done"])
        resumed = json.loads(ok(invoke(db_path, "arena", "judge", "arena40", "--candidate", "cand", "--judge",
                                       spec, "--json")).stdout)  # type: ignore[attr-defined]
        assert (resumed["run"]["id"], resumed["run"]["done"], resumed["run"]["state"]) == (1, 20, "done")
        assert len(server.requests) == 20
        given = json.loads(ok(invoke(db_path, "arena", "judge", "arena40", "--candidate", "cand", "--judge", spec,
                                     "--orders", "given", "--json")).stdout)  # type: ignore[attr-defined]
    assert (given["run"]["id"], given["run"]["total"], given["scores"]["consistency"]) == (2, 10, None)
    assert len(server.requests) == 20, "the given order of every question was already in the cache"
    assert given["job"]["counters"]["cache_hits"] == 10
