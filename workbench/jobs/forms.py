"""The TUI's form fields read with the CLI's rules: the same checks, the same one-line messages."""

from __future__ import annotations

from core.errors import OptionError
from core.evaluation.judges import JudgeSpec, check_judge_spec


def whole_number(text: str, name: str, *, minimum: int = 1) -> int | None:
    """A form field as a whole number of at least `minimum`; None when empty; OptionError otherwise."""
    value = text.strip()
    if not value:
        return None
    try:
        number = int(value)
    except ValueError:
        raise OptionError(f"{name} must be a whole number, not {value!r}") from None
    if number < minimum:
        raise OptionError(f"{name} must be a whole number of {minimum} or more, not {number}")
    return number


def eval_form(judge: str, limit: str) -> tuple[JudgeSpec, int | None]:
    """The Evaluation screen's judge and limit, checked as `workbench eval run` checks them."""
    if not judge.strip():
        raise OptionError("enter a judge spec: pair-rm:PATH, baseline:NAME or a model spec")
    return check_judge_spec(judge), whole_number(limit, "limit")
