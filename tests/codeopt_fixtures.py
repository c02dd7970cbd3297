"""Small problems with tests and a policy stand-in whose answers pass, fail, run slowly or hold no code."""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import TYPE_CHECKING

from core.execution.problems import Problem

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

# Variant i answers the i-th request for a problem (ten requests cover every variant once).
PASSING_VARIANTS = (0, 1, 2, 3, 4, 8)
# The worker id the seeders claim slots and solutions under, as a sampling or execution job would.
SEEDER = "seeder"


def demo_problem(k: int, *, note: str = "") -> Problem:
    """add_k(x) returns x + k."""
    return Problem(
        task_id=f"Demo/{k}",
        prompt=f'def add_{k}(x: int) -> int:\n    """Return x plus {k}.{note}"""\n',
        entry_point=f"add_{k}",
        test=f"def check(candidate):\n    assert candidate(2) == {2 + k}\n    assert candidate(5) == {5 + k}\n",
        canonical_solution=f"    return x + {k}\n",
        source="jsonl",
    )


def demo_problems(count: int, *, start: int = 0) -> list[Problem]:
    """Problems add_start ... add_(start+count-1)."""
    return [demo_problem(k) for k in range(start, start + count)]


def variant(k: int, index: int) -> str:
    """The answer of variant `index` (0-9) for add_k."""
    name = f"add_{k}"
    fenced = {
        0: f"def {name}(x):\n    return x + {k}\n",
        1: f"def {name}(x):\n    return x + {k}\n",
        2: f"def {name}(x):\n    return x + {k}\n",
        3: f"def {name}(x):\n    total = x\n    for _ in range(30000):\n        total += 0\n    return total + {k}\n",
        4: f"def {name}(x):\n    return {k} + x\n",
        5: f"def {name}(x):\n    return x + {k + 1}\n",
        6: f"def {name}(x):\n    raise ValueError('no')\n",
        8: f"def {name}(x):\n    y = x\n    return y + {k}\n",
        9: f"def {name}(x):\n    return x * {k + 7}\n",
    }
    if index == 7:
        return "I am not able to solve this."
    return f"Here is the solution:\n```python\n{fenced[index]}```\n"


class PolicyStandIn:
    """A responder for the loopback server: the n-th request for add_k gets variant n % 10."""

    def __init__(self) -> None:
        self.seen: Counter[int] = Counter()
        self._lock = threading.Lock()

    def __call__(self, messages: list[dict[str, str]]) -> str:
        match = re.search(r"def add_(\d+)\(", messages[-1]["content"])
        assert match is not None, messages
        k = int(match.group(1))
        with self._lock:
            index = self.seen[k] % 10
            self.seen[k] += 1
        return variant(k, index)


def seed_codeopt(engine: Engine, *, hostile: str = "") -> list[int]:
    """Two problems (the first titled with `hostile`) with ten sampled answers each and fixed verdicts
    and runtimes, written through the store's own functions (for screens that must look the same each run)."""
    from core.execution.runtime import RuntimeStats
    from core.execution.sandbox import ExecutionResult
    from core.synthesis.steps import Answered
    from stores.execution.problems import add_problems
    from stores.execution.solutions import (
        ExecutionScope,
        SampleConfig,
        SqlSampleStore,
        claim_executions,
        prepare_samples,
        record_execution,
    )

    first = demo_problem(0, note=hostile)
    if hostile:
        first = Problem(f"Demo/{hostile}", first.prompt, first.entry_point, first.test, first.canonical_solution)
    ids, _added = add_problems(engine, [first, demo_problem(1)])
    config = SampleConfig("seedconfig", f"policy {hostile}".strip(), "codeopt-solve-v1", 0.8, 0.95, 256, 0)
    prepare_samples(engine, config, ids, 10)
    store = SqlSampleStore(engine, job_id=None, key=config.key, worker_id=SEEDER)
    for item in store.claim(100):
        slot_id = item.subject.solution_id
        index = (int(slot_id) - 1) % 10
        k = 0 if slot_id <= 10 else 1
        store.finish_item(item.item_id, Answered(variant(k, index), "stop"), None)
    for task in claim_executions(engine, SEEDER, 100, ExecutionScope()):
        index = (task.solution_id - 1) % 10
        if index in PASSING_VARIANTS:
            median = 0.004 if index == 3 else 0.001 + 0.0001 * index
            result = ExecutionResult("passed", samples=(median,) * 5, layers=("netns", "uid", "audit"))
            stats = RuntimeStats(median, 0.01, 5, True)
        else:
            detail = f"AssertionError: {hostile}" if index == 5 else "ValueError: no"
            result = ExecutionResult("failed", detail, layers=("netns", "uid", "audit"))
            stats = RuntimeStats(None, None, 0, False)
        record_execution(engine, task.solution_id, result, stats, ",".join(result.layers), worker_id=SEEDER)
    return ids


def seed_samples(engine: Engine, problems: list[Problem], samples_per_problem: int) -> list[int]:
    """Store demo `problems` (add_k) with `samples_per_problem` sampled answers each (the policy stand-in's
    variants in order), not executed yet, through the store's own functions; return the problem ids."""
    from core.synthesis.steps import Answered
    from stores.execution.problems import add_problems
    from stores.execution.solutions import SampleConfig, SqlSampleStore, prepare_samples

    ids, _added = add_problems(engine, problems)
    config = SampleConfig("seedsamples", "policy", "codeopt-solve-v1", 0.8, 0.95, 256, 0)
    prepare_samples(engine, config, ids, samples_per_problem)
    store = SqlSampleStore(engine, job_id=None, key=config.key, worker_id=SEEDER)
    for item in store.claim(len(ids) * samples_per_problem):
        k = int(item.subject.problem.entry_point.removeprefix("add_"))
        store.finish_item(item.item_id, Answered(variant(k, item.subject.sample_index % 10), "stop"), None)
    return ids


def seed_solutions(engine: Engine, problem: Problem, verdicts: list[tuple[str, str, float | None]]) -> int:
    """Store `problem` with one sampled answer per (code, status, median seconds) and that verdict,
    through the store's own functions; return the problem id."""
    from core.execution.runtime import RuntimeStats
    from core.execution.sandbox import ExecutionResult
    from core.synthesis.steps import Answered
    from stores.execution.problems import add_problems
    from stores.execution.solutions import (
        ExecutionScope,
        SampleConfig,
        SqlSampleStore,
        claim_executions,
        prepare_samples,
        record_execution,
    )

    (problem_id,), _added = add_problems(engine, [problem])
    config = SampleConfig(f"seed-{problem_id}", "policy", "codeopt-solve-v1", 0.8, 0.95, 256, 0)
    slots = prepare_samples(engine, config, [problem_id], len(verdicts))
    store = SqlSampleStore(engine, job_id=None, key=config.key, worker_id=SEEDER)
    items = {item.subject.solution_id: item.item_id for item in store.claim(len(slots))}
    for slot, (code, _status, _median) in zip(slots, verdicts):
        store.finish_item(items[slot], Answered(f"```python\n{code}```\n", "stop"), None)
    by_slot = dict(zip(slots, verdicts))
    for task in claim_executions(engine, SEEDER, len(slots), ExecutionScope(config_key=config.key)):
        _code, status, median = by_slot[task.solution_id]
        samples = (median,) * 5 if median else ()
        result = ExecutionResult(status, "" if status == "passed" else "AssertionError: wrong", samples=samples)
        stats = RuntimeStats(median, 0.01 if median else None, len(samples), bool(median))
        record_execution(engine, task.solution_id, result, stats, "seeded", worker_id=SEEDER)
    return problem_id
