"""CodePrefBench: load and validate the four objective files, version them, lay out judge items."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from core.curation.pairs import same_code
from core.errors import BenchmarkError, OptionError
from core.evaluation.protocols import (
    DEFAULT_PROTOCOL,
    VERIFIABLE_OBJECTIVES,
    WORKBENCH_CRITERIA,
    Choice,
    get_protocol,
)
from core.jsonl import lone_surrogate

BENCH_ENV_VAR = "WORKBENCH_BENCH"
OBJECTIVES: tuple[str, ...] = ("correctness", "efficiency", "security", "human-preference")
ORDERS: tuple[str, ...] = ("given", "swapped")
Order = Literal["given", "swapped"]

CRITERIA = WORKBENCH_CRITERIA  # the workbench protocol's wording, kept under its old name
VERIFIABLE = VERIFIABLE_OBJECTIVES


@dataclass(frozen=True, slots=True)
class BenchTask:
    """One benchmark task: an instruction, two codes and the index of the better one."""

    objective: str
    task_id: str
    instruction: str
    choices: tuple[str, str]
    gt_choice: int
    annotations: tuple[str, ...] = ()
    uid: str = ""  # task_id, numbered when the file repeats it; unique within the objective


@dataclass(frozen=True, slots=True)
class Benchmark:
    """The loaded benchmark: tasks per objective and a content hash used as its version."""

    directory: str
    version: str
    tasks: dict[str, tuple[BenchTask, ...]]

    def task(self, objective: str, uid: str) -> BenchTask:
        """The task with this uid in this objective, or raise BenchmarkError."""
        for task in self.tasks.get(objective, ()):
            if task.uid == uid:
                return task
        raise BenchmarkError(f"benchmark has no task {uid!r} in objective {objective!r}")


@dataclass(frozen=True, slots=True)
class JudgeItem:
    """One prompt for a judge: a task in one order, laid out as code A / code B."""

    objective: str
    task_id: str  # the task's uid
    order: str
    instruction: str
    code_a: str
    code_b: str
    criteria: str
    gt: Choice
    protocol: str = DEFAULT_PROTOCOL

    @property
    def key(self) -> tuple[str, str, str]:
        """(objective, task_id, order): unique within a run."""
        return (self.objective, self.task_id, self.order)


def objective_file(objective: str) -> str:
    """The file name holding one objective."""
    return f"{objective}-alignment.jsonl.gz"


def resolve_bench_dir(bench: str | os.PathLike[str] | None, env: dict[str, str] | None = None) -> Path:
    """The benchmark folder from `--bench`, else the WORKBENCH_BENCH environment variable."""
    environ = os.environ if env is None else env
    value = str(bench) if bench else environ.get(BENCH_ENV_VAR, "")
    if not value:
        raise BenchmarkError(
            f"no benchmark folder: pass --bench DIR or set {BENCH_ENV_VAR} to the folder holding "
            f"{objective_file('correctness')} and the other objective files", exit_code=2,
        )
    return Path(value).expanduser()


def parse_objectives(names: Iterable[str] | None) -> tuple[str, ...]:
    """Validate objective names (comma lists allowed); none means all four, in benchmark order."""
    wanted: list[str] = []
    for name in names or ():
        wanted.extend(part.strip() for part in name.split(",") if part.strip())
    if not wanted:
        return OBJECTIVES
    unknown = [name for name in wanted if name not in OBJECTIVES]
    if unknown:
        raise OptionError(f"unknown objective {unknown[0]!r}; choose from {', '.join(OBJECTIVES)}")
    return tuple(name for name in OBJECTIVES if name in wanted)


def load_benchmark(directory: str | os.PathLike[str], objectives: Sequence[str] = OBJECTIVES) -> Benchmark:
    """Read and validate the objective files; the version hashes all four files' contents."""
    folder = Path(directory)
    if not folder.is_dir():
        raise BenchmarkError(f"benchmark folder {folder} does not exist or is not a folder", exit_code=2)
    digest = hashlib.sha256()
    tasks: dict[str, tuple[BenchTask, ...]] = {}
    for objective in OBJECTIVES:
        path = folder / objective_file(objective)
        if not path.is_file():
            if objective in objectives:
                raise BenchmarkError(f"benchmark file {path} is missing")
            continue
        raw = _read_gzip(path)
        digest.update(f"{objective}\n{len(raw)}\n".encode())
        digest.update(raw)
        if objective in objectives:
            tasks[objective] = _parse_tasks(path, objective, raw)
    return Benchmark(directory=str(folder.resolve()), version=f"cpb-{digest.hexdigest()[:16]}", tasks=tasks)


def _read_gzip(path: Path) -> bytes:
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError) as exc:
        raise BenchmarkError(f"benchmark file {path} is not a readable gzip file: {exc}") from None


def _parse_tasks(path: Path, objective: str, raw: bytes) -> tuple[BenchTask, ...]:
    """The tasks of one objective file; BenchmarkError names the file and line of a bad record.

    Refused: a line that is not UTF-8 or JSON, a lone surrogate escape, a task whose two choices
    are the same code, and a task that repeats an earlier one (same task_id, instruction and
    choices in either order). A task_id on several records with different choices is the published
    files' way of giving several pairs per problem: those are kept and numbered.
    """
    tasks: list[BenchTask] = []
    seen: dict[str, int] = {}
    first_line: dict[tuple[str, str, frozenset[str]], int] = {}
    for number, raw_line in enumerate(raw.split(b"\n"), start=1):
        where = f"{path.name} line {number}"
        try:
            line = raw_line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BenchmarkError(f"{where}: not UTF-8 text (byte 0x{raw_line[exc.start]:02x} "
                                 f"at column {exc.start + 1})") from None
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BenchmarkError(f"{where}: bad JSON ({exc.msg} at column {exc.colno})") from None
        surrogate = lone_surrogate(record)
        if surrogate:
            raise BenchmarkError(f"{where}: field {surrogate[0]} holds a lone surrogate escape ({surrogate[1]})")
        task = _task_from_record(record, objective, where)
        if same_code(*task.choices):
            raise BenchmarkError(f"{where}: task {task.task_id}: both choices are the same code")
        identity = (task.task_id, task.instruction, frozenset(task.choices))
        if identity in first_line:
            raise BenchmarkError(f"{where}: task {task.task_id} repeats line {first_line[identity]} "
                                 "(same task_id, instruction and choices)")
        first_line[identity] = number
        # The published files repeat some task ids (several pairs per problem): number the repeats.
        occurrence = seen.get(task.task_id, 0) + 1
        seen[task.task_id] = occurrence
        uid = task.task_id if occurrence == 1 else f"{task.task_id}#{occurrence}"
        tasks.append(replace(task, uid=uid))
    if not tasks:
        raise BenchmarkError(f"benchmark file {path} holds no tasks")
    return tuple(tasks)


def _task_from_record(record: object, objective: str, where: str) -> BenchTask:
    if not isinstance(record, dict):
        raise BenchmarkError(f"{where}: expected a JSON object")
    for key in ("task_id", "instruction", "choices", "gt_choice"):
        if key not in record:
            raise BenchmarkError(f"{where}: missing field {key!r}")
    choices = record["choices"]
    if not isinstance(choices, list) or len(choices) != 2:
        count = len(choices) if isinstance(choices, list) else "no list of"
        raise BenchmarkError(f"{where}: expected 2 choices, found {count}")
    if not all(isinstance(choice, str) for choice in choices):
        raise BenchmarkError(f"{where}: choices must be strings")
    gt_choice = record["gt_choice"]
    if gt_choice not in (0, 1) or isinstance(gt_choice, bool):
        raise BenchmarkError(f"{where}: gt_choice must be 0 or 1, found {gt_choice!r}")
    if not isinstance(record["instruction"], str):
        raise BenchmarkError(f"{where}: instruction must be a string")
    annotations = record.get("annotations") or ()
    return BenchTask(
        objective=objective,
        task_id=str(record["task_id"]),
        instruction=record["instruction"],
        choices=(choices[0], choices[1]),
        gt_choice=int(gt_choice),
        annotations=tuple(str(a) for a in annotations) if isinstance(annotations, list) else (),
    )


def shown_codes(task: BenchTask, *, strip: bool | None = None, protocol: str = DEFAULT_PROTOCOL) -> tuple[str, str]:
    """Both choices as a judge sees them under `protocol` (before layout).

    `strip` None follows the protocol: comments and docstrings go for verifiable objectives only.
    """
    rule = get_protocol(protocol)
    if strip is None:
        strip = rule.strips(task.objective)
    if not strip:
        return task.choices
    return rule.strip_pair(*task.choices)


def judge_items(
    benchmark: Benchmark,
    *,
    objectives: Sequence[str] = OBJECTIVES,
    orders: str = "both",
    limit: int | None = None,
    strip: bool | None = None,
    protocol: str = DEFAULT_PROTOCOL,
) -> list[JudgeItem]:
    """Every (task, order) to judge under `protocol`: both orders by default, or only the given one."""
    if orders not in ("both", "given"):
        raise OptionError(f"orders must be 'both' or 'given', not {orders!r}")
    rule = get_protocol(protocol)
    wanted_orders = ORDERS if orders == "both" else ("given",)
    items: list[JudgeItem] = []
    for objective in objectives:
        for task in benchmark.tasks.get(objective, ())[: limit if limit else None]:
            first, second = shown_codes(task, strip=strip, protocol=protocol)
            for order in wanted_orders:
                swapped = order == "swapped"
                better_first = (task.gt_choice == 0) != swapped
                items.append(
                    JudgeItem(
                        objective=objective,
                        task_id=task.uid,
                        order=order,
                        instruction=task.instruction,
                        code_a=second if swapped else first,
                        code_b=first if swapped else second,
                        criteria=rule.criteria[objective],
                        gt="A" if better_first else "B",
                        protocol=rule.name,
                    )
                )
    return items
