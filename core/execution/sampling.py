"""Sampling solutions from a policy model, as a synthesis method the synthesis driver runs.

One work item is one sample slot (a problem and a sample index); its single turn asks the policy
model for a solution with the run's temperature and top-p and a seed of its own (the run's seed
plus the index), so the N samples of a problem have N response-cache keys and a resumed run
replays each from the cache instead of paying for it again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from core.execution.problems import Problem
from core.execution.solutions import solve_messages
from core.llm.base import SamplingParams
from core.synthesis.steps import Answered, Exchange, Step, Turn

METHOD = "codeopt-sample"
PROMPT_VERSION = "codeopt-solve-v1"
POLICY_ROLE = "policy"


@dataclass(frozen=True, slots=True)
class SampleSubject:
    """One sample slot: the stored solution row, its problem, and the sample's index."""

    solution_id: int
    problem: Problem
    sample_index: int


class SolutionSampler:
    """Asks the policy for one solution per slot; the answer is kept as it came back."""

    name = METHOD
    prompt_version = PROMPT_VERSION

    def __init__(self, params: SamplingParams) -> None:
        self.params = params

    def next_step(self, subject: Any, exchanges: tuple[Exchange, ...]) -> Step:
        """The one turn of a slot, then its answer."""
        assert isinstance(subject, SampleSubject)
        if not exchanges:
            seed = (self.params.seed or 0) + subject.sample_index
            return Turn("solve", POLICY_ROLE, solve_messages(subject.problem), replace(self.params, seed=seed))
        last = exchanges[-1]
        return Answered(last.answer, last.finish_reason)
