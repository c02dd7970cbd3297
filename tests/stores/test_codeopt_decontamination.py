"""Pairs made from HumanEval or MBPP problems overlap CodePrefBench's correctness tasks: decontamination
flags them through their problem, even when their codes resemble no benchmark code."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from core.curation.decontamination import load_benchmark_texts, problem_text
from core.execution.pairs import PairOptions
from core.execution.problems import Problem, load_humaneval, mbpp_problem
from core.execution.solutions import instruction
from stores.curation.pairs import get_pair
from tests.codeopt_fixtures import demo_problem, seed_solutions
from tests.fixtures import stored_pairs
from workbench.jobs.codeopt import build_pairs
from workbench.jobs.curate import DecontaminationSummary, analyse_store, decontaminate_store

BENCH = Path(os.environ.get("WORKBENCH_BENCH") or Path(__file__).resolve().parents[2] / ".." / "shared" / "codeprefbench")
# Codes no benchmark task holds: only the problem can tell these pairs apart from clean ones.
PASSING = ("def solve(*args):\n    return 'zebra-%d' % len(args)\n", "def solve(*args):\n    return 'yak-%d' % len(args)\n")
FAILING = "def solve(*args):\n    raise NotImplementedError('quokka')\n"


def _pairs_for(engine: Engine, problem: Problem) -> list[int]:
    seed_solutions(engine, problem, [(PASSING[0], "passed", 0.001), (PASSING[1], "passed", 0.001),
                                     (FAILING, "failed", None)])
    before = {p.id for p in stored_pairs(engine)}
    assert build_pairs(engine, PairOptions(objectives=("correctness",))).added == 2
    return sorted({p.id for p in stored_pairs(engine)} - before)


@pytest.mark.skipif(not BENCH.is_dir(), reason="CodePrefBench is not on this machine")
def test_humaneval_and_mbpp_pairs_are_flagged_and_others_are_not(engine: Engine) -> None:
    humaneval = load_humaneval()
    # The same HumanEval problem under another task id, re-indented: the same problem all the same.
    renamed = dataclasses.replace(humaneval[1], task_id="Imported/7", prompt=humaneval[1].prompt.replace("    ", "\t"))
    mbpp = mbpp_problem({"task_id": 6, "text": "Write a python function to check whether the two numbers differ at one "
                         "bit position only or not.", "code": "def differ_At_One_Bit_Pos(a,b):\n    return bin(a^b).count('1')==1",
                         "test_list": ["assert differ_At_One_Bit_Pos(13,9) == True"]}, "mbpp.jsonl:1")
    flagged = [*_pairs_for(engine, humaneval[0]), *_pairs_for(engine, renamed), *_pairs_for(engine, mbpp)]
    clean = _pairs_for(engine, demo_problem(3))
    list(analyse_store(engine, workers=1))
    codes, instructions = load_benchmark_texts(BENCH)
    events = list(decontaminate_store(engine, codes, threshold=80, workers=1, sample=10, instructions=instructions))
    summary = events[-1]
    assert isinstance(summary, DecontaminationSummary)
    assert summary.contaminated_instructions == len(flagged)
    assert summary.flagged == len(flagged) and summary.contaminated_pairs == len(flagged)
    for pair_id in flagged:
        pair = get_pair(engine, pair_id)
        assert pair.status == "flagged" and pair.analysis is not None
        assert pair.analysis["contamination"] >= 80 and pair.analysis["contamination_chosen"] is None
        assert pair.analysis["contamination_task"].split("#")[0] in (
            "HumanEval/0", "HumanEval/1", "Mbpp/6")
    for pair_id in clean:
        pair = get_pair(engine, pair_id)
        assert pair.status == "pending" and pair.analysis is not None and pair.analysis["contamination"] is None


def test_problem_text_is_the_code_block_else_the_text() -> None:
    problem = load_humaneval()[0]
    assert problem_text(instruction(problem)) == " ".join(problem.prompt.split())
    assert problem_text("Sort  a list\nof numbers.") == "Sort a list of numbers."
