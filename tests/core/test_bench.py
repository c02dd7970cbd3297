from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

import pytest

from core.curation.stripping import strip_comments
from core.errors import BenchmarkError
from core.evaluation.bench import OBJECTIVES, judge_items, load_benchmark, objective_file, resolve_bench_dir
from core.evaluation.judges import BaselineJudge, parse_judge_spec
from core.evaluation.scoring import ScoredResult, score_run
from tests.fixtures import BENCH_DIR  # noqa: E402

needs_bench = pytest.mark.skipif(not BENCH_DIR.is_dir(), reason="../shared/codeprefbench is absent")


@functools.cache
def _stripped(code: str) -> str:
    return strip_comments(code)


def _raw_tasks(objective: str) -> list[dict]:
    with gzip.open(BENCH_DIR / objective_file(objective), "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _expected(objective: str, rule: str, orders: tuple[bool, ...]) -> float:
    """Score a baseline straight from the files under the workbench protocol (independent of core.evaluation)."""
    credits = []
    for task in _raw_tasks(objective):
        codes = list(task["choices"])
        if objective != "human-preference":
            codes = [_stripped(code) for code in codes]
        for swapped in orders:
            shown = codes[::-1] if swapped else codes
            better = task["gt_choice"] if not swapped else 1 - task["gt_choice"]
            if rule == "always-a":
                pick = 0
            elif len(shown[0]) == len(shown[1]):
                credits.append(0.5)
                continue
            else:
                shorter = 0 if len(shown[0]) < len(shown[1]) else 1
                pick = shorter if rule == "shorter" else 1 - shorter
            credits.append(1.0 if pick == better else 0.0)
    return sum(credits) / len(credits)


@functools.cache
def _items(orders: str, protocol: str) -> list:
    return judge_items(load_benchmark(BENCH_DIR), orders=orders, protocol=protocol)


def _scores(spec: str, orders: str, protocol: str = "codefavor") -> dict[str, float]:
    items = _items(orders, protocol)
    outputs = BaselineJudge(parse_judge_spec(spec)).decide(items)
    scores = score_run(
        ScoredResult(i.objective, i.task_id, i.order, i.gt, o.decision) for i, o in zip(items, outputs)
    )
    return {s.objective: s.accuracy for s in scores.objectives} | {"consistency": scores.objectives[0].consistency}


def _percent(scores: dict[str, float]) -> tuple[float, ...]:
    return tuple(round(100 * scores[objective], 1) for objective in OBJECTIVES)


@needs_bench
def test_codefavor_protocol_reproduces_the_reference_baselines_in_the_given_order() -> None:
    # Order: correctness / efficiency / security / human preference, as in the paper's tables.
    assert _percent(_scores("baseline:always-a", "given")) == (49.2, 51.1, 51.2, 55.9)
    assert _percent(_scores("baseline:shorter", "given")) == (65.9, 63.6, 33.3, 38.6)
    # The opposite rule, ties to B as well (so it is not exactly 100 minus "shorter").
    assert _percent(_scores("baseline:longer", "given")) == (33.9, 36.4, 67.1, 61.4)


@needs_bench
def test_a_code_that_does_not_parse_keeps_its_comments_and_the_other_is_stripped() -> None:
    """Each code is stripped on its own (the reference's `PairwiseRMCaller.batch_infer` fallback).

    Task CSE/1837's second choice is Python 2 and does not parse: it is judged as given, the first
    loses its comments. That gives the paper's 69/207 = 33.3 for shorter on security; evaluate.py's
    one-try `task_try_to_remove_comment`, which keeps both codes when either fails, would give 68/207 = 32.9.
    """
    from core.curation.stripping import regenerate_without_docstrings

    items = {i.task_id: i for i in _items("given", "codefavor") if i.objective == "security"}
    task = next(t for t in _raw_tasks("security") if t["task_id"] == "CSE/1837")
    assert items["CSE/1837"].code_a == regenerate_without_docstrings(task["choices"][0]) != task["choices"][0]
    assert items["CSE/1837"].code_b == task["choices"][1]
    correct = 0
    for raw in _raw_tasks("security"):
        try:
            first, second = (regenerate_without_docstrings(code) for code in raw["choices"])
        except SyntaxError:
            first, second = raw["choices"]
        correct += (0 if len(first) < len(second) else 1) == raw["gt_choice"]
    assert round(100 * correct / 207, 1) == 32.9  # the keep-both rule, which this protocol does not follow


@needs_bench
def test_workbench_protocol_baselines_match_independent_scores() -> None:
    given = _scores("baseline:always-a", "given", "workbench")
    for objective in OBJECTIVES:
        assert given[objective] == pytest.approx(_expected(objective, "always-a", (False,)))
    assert round(100 * given["correctness"], 1) == 49.2  # the paper's always-A figure
    both = _scores("baseline:always-a", "both", "workbench")
    assert all(both[objective] == pytest.approx(0.5) for objective in OBJECTIVES)
    assert both["consistency"] == 0.0
    for rule in ("shorter", "longer"):
        scores = _scores(f"baseline:{rule}", "both", "workbench")
        for objective in OBJECTIVES:
            assert scores[objective] == pytest.approx(_expected(objective, rule, (False, True)))


@needs_bench
def test_benchmark_version_is_a_content_hash(tmp_path: Path) -> None:
    benchmark = load_benchmark(BENCH_DIR)
    assert {name: len(tasks) for name, tasks in benchmark.tasks.items()} == {
        "correctness": 660, "efficiency": 352, "security": 207, "human-preference": 145,
    }
    assert len(judge_items(benchmark)) == 2728
    copy = _write_bench(tmp_path, {o: _raw_tasks(o) for o in OBJECTIVES})
    assert load_benchmark(copy).version == benchmark.version
    tasks = _raw_tasks("security")
    tasks[0]["gt_choice"] = 1 - tasks[0]["gt_choice"]
    changed = _write_bench(tmp_path / "changed", {o: _raw_tasks(o) for o in OBJECTIVES} | {"security": tasks})
    assert load_benchmark(changed).version != benchmark.version


def _write_bench(folder: Path, tasks: dict[str, list], raw: dict[str, bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for objective, records in tasks.items():
        data = "".join(json.dumps(r) + "\n" for r in records).encode()
        (folder / objective_file(objective)).write_bytes(gzip.compress((raw or {}).get(objective, data)))
    return folder


GOOD = {"task_id": "t/0", "instruction": "Add.", "choices": ["def f(a, b):\n    return a + b\n", "def f(a, b):\n    return a - b\n"], "gt_choice": 0}


@pytest.mark.parametrize(
    ("records", "raw", "message"),
    [
        ([GOOD], b'{"task_id": "t/1", "instruction": "x", \n', "line 1: bad JSON"),
        ([GOOD | {"choices": ["a", "b", "c"]}], None, "line 1: expected 2 choices, found 3"),
        ([GOOD | {"gt_choice": 2}], None, "gt_choice must be 0 or 1"),
        ([{k: v for k, v in GOOD.items() if k != "instruction"}], None, "missing field 'instruction'"),
        ([], None, "holds no tasks"),
    ],
)
def test_bad_benchmark_files_fail_with_a_clear_line(tmp_path: Path, records: list, raw: bytes | None, message: str) -> None:
    tasks = {o: [GOOD] for o in OBJECTIVES} | {"efficiency": records}
    folder = _write_bench(tmp_path, tasks, {"efficiency": raw} if raw else None)
    with pytest.raises(BenchmarkError, match=message) as caught:
        load_benchmark(folder)
    assert "efficiency-alignment.jsonl.gz" in str(caught.value)


def test_missing_files_and_folders_are_named(tmp_path: Path) -> None:
    folder = _write_bench(tmp_path, {o: [GOOD] for o in OBJECTIVES if o != "security"})
    with pytest.raises(BenchmarkError, match="security-alignment.jsonl.gz is missing"):
        load_benchmark(folder)
    assert set(load_benchmark(folder, ["correctness"]).tasks) == {"correctness"}
    (folder / objective_file("correctness")).write_bytes(b"not gzip")
    with pytest.raises(BenchmarkError, match="not a readable gzip"):
        load_benchmark(folder, ["correctness"])
    with pytest.raises(BenchmarkError, match="does not exist"):
        load_benchmark(tmp_path / "nope")
    with pytest.raises(BenchmarkError, match="--bench"):
        resolve_bench_dir(None, env={})
    assert resolve_bench_dir(None, env={"WORKBENCH_BENCH": str(folder)}) == folder


def test_items_strip_comments_for_verifiable_objectives_only(tmp_path: Path) -> None:
    commented = GOOD | {"choices": ["def f(a, b):\n    # add them\n    return a + b\n", "def f(a, b):\n    return a - b  # oops\n"]}
    folder = _write_bench(tmp_path, {o: [commented] for o in OBJECTIVES})
    items = {(i.objective, i.order): i for i in judge_items(load_benchmark(folder), protocol="workbench")}
    assert "#" not in items[("correctness", "given")].code_a
    assert "# add them" in items[("human-preference", "given")].code_a
    swapped = items[("security", "swapped")]
    assert swapped.gt == "B" and "a + b" in swapped.code_b
    kept = judge_items(load_benchmark(folder), objectives=["correctness"], orders="given", strip=False)
    reference = {(i.objective, i.order): i for i in judge_items(load_benchmark(folder))}
    assert reference[("correctness", "given")].code_a == "def f(a, b):\n    return a + b\n"  # astor's output
    assert "# add them" in reference[("human-preference", "given")].code_a
    assert len(kept) == 1 and "# add them" in kept[0].code_a
