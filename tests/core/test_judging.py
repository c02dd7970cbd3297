from __future__ import annotations

import pytest

from core.errors import OptionError
from core.evaluation.bench import JudgeItem
from core.evaluation.judges import BaselineJudge, pair_rm_decision, parse_decision, parse_judge_spec, redecide

FEEDBACK_CASES = [
    # The template verdict, after feedback that praises both sides.
    ("[CODE_A] handles the empty list but [CODE_B] is simpler to read. However [CODE_B] crashes on []."
     "\n\n[CODE_A] is better than [CODE_B] on the mentioned criteria.", "A"),
    ("**Feedback:** Code A uses a nested loop (O(n^2)); Code B uses a set (O(n)).\n\n"
     "[CODE_B] is better than [CODE_A] on the mentioned criteria.", "B"),
    # Without brackets, markdown bold, other phrasings.
    ("Both snippets are correct, but CODE_B avoids the quadratic scan. CODE_B is better.", "B"),
    ("After reviewing, **Code A** is clearly better because it validates input.", "A"),
    ("The first solution is more efficient since it returns early.", "A"),
    ("Response B is superior: it uses parameterized queries instead of string formatting.", "B"),
    ("Code A is not better than Code B here, as it uses eval().", "B"),
    ("Code B is worse: it passes shell=True with user input.", "A"),
    ("Verdict: B", "B"),
    ("Final answer: **A**", "A"),
    ("I would prefer the second one for its use of hashlib.sha256.", "B"),
    ("B", "B"),
    ("(A)", "A"),
    # Undecidable: ties, neither, both, refusals, echoes, empty.
    ("Neither code is better; both fail on negative numbers.", "?"),
    ("Both codes are equally correct and efficient.", "?"),
    ("It's a tie.", "?"),
    ("I'm sorry, but I can't help with evaluating code that may be used maliciously.", "?"),
    ("I cannot determine which is better without running tests.", "?"),
    ('End with "[CODE_A] is better than [CODE_B] on the mentioned criteria." or '
     '"[CODE_B] is better than [CODE_A] on the mentioned criteria."', "?"),
    ("", "?"),
    ("The code looks fine.", "?"),
    # A later verdict overrides an earlier aside.
    ("At first glance Code A is better, but on closer inspection Code B is better overall.", "B"),
    ("Code A is better in readability. However, neither is correct for n = 0.", "?"),
]


@pytest.mark.parametrize(("text", "expected"), FEEDBACK_CASES)
def test_parse_decision_reads_real_world_feedback(text: str, expected: str) -> None:
    assert parse_decision(text) == expected


def test_judge_specs_parse_and_reject_bad_values() -> None:
    assert parse_judge_spec("pair-rm:/models/x").kind == "pair-rm"
    assert parse_judge_spec("baseline:random:7").argument == "random:7"
    assert parse_judge_spec("openai:gpt-4o").kind == "generative"
    for bad in ("", "baseline:best", "baseline:always-a:3", "pair-rm:"):
        with pytest.raises(OptionError):
            parse_judge_spec(bad)


def _item(code_a: str, code_b: str, order: str = "given", protocol: str = "codefavor") -> JudgeItem:
    return JudgeItem("correctness", "t/1", order, "do it", code_a, code_b, "crit", "A", protocol)


def test_baselines_decide_from_the_codes_alone() -> None:
    items = [_item("x = 1", "x = 12"), _item("yy", "y"), _item("z", "z"), _item("z", "z", protocol="workbench")]
    # Equal lengths: the reference's length baselines pick B; the workbench protocol leaves them undecided.
    assert [o.decision for o in BaselineJudge(parse_judge_spec("baseline:shorter")).decide(items)] == ["A", "B", "B", "?"]
    assert [o.decision for o in BaselineJudge(parse_judge_spec("baseline:longer")).decide(items)] == ["B", "A", "B", "?"]
    random_judge = BaselineJudge(parse_judge_spec("baseline:random:3"))
    first = [o.decision for o in random_judge.decide(items * 5)]
    assert first == [o.decision for o in random_judge.decide(items * 5)]


def test_redecide_uses_stored_raw_outputs() -> None:
    assert redecide("generative", "[CODE_B] is better than [CODE_A] on the mentioned criteria.", "?") == "B"
    assert redecide("pair-rm", '{"A": 1.5, "B": -2.0}', "?") == "A"
    assert pair_rm_decision("garbage") == "?"
    assert redecide("baseline", "always-a", "A") == "A"


class _FlakyBackend:
    model_name = "flaky"

    def __init__(self, fail: bool) -> None:
        self.fail = fail

    async def chat_many(self, requests):  # noqa: ANN001, ANN201
        from core.llm.base import ChatResult

        if self.fail:
            raise ConnectionError("server went away\nsecond line")
        return [ChatResult("", 10, 0, 0.1, finish_reason="error"), ChatResult("Code B is better.", 10, 4, 0.2)][: len(requests)]

    async def aclose(self) -> None:
        pass


def test_generative_judge_counts_backend_errors_as_undecided_and_fails_clearly() -> None:
    from core.errors import LLMError
    from core.evaluation.judges import GenerativeJudge

    judge = GenerativeJudge(parse_judge_spec("openai:flaky"), _FlakyBackend(fail=False))
    assert [o.decision for o in judge.decide([_item("a", "b"), _item("c", "d")])] == ["?", "B"]
    judge.close()
    broken = GenerativeJudge(parse_judge_spec("openai:flaky"), _FlakyBackend(fail=True))
    with pytest.raises(LLMError, match="judge openai:flaky: ConnectionError: server went away"):
        broken.decide([_item("a", "b")])
    broken.close()
