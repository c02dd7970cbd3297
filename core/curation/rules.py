"""Pair filters and curation rules: `field OP value` conditions and YAML rule files."""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, TypeAdapter, field_validator

from core.errors import OptionError, RecipeError

FieldKind = Literal["text", "number", "bool"]
Action = Literal["accept", "reject", "flag", "pending"]
ACTIONS: tuple[str, ...] = ("accept", "reject", "flag", "pending")
ACTION_STATUS = {"accept": "accepted", "reject": "rejected", "flag": "flagged", "pending": "pending"}

PAIR_FIELDS: dict[str, FieldKind] = {
    "id": "number", "source": "text", "status": "text", "instruction": "text", "criteria": "text",
    "feedback": "text", "language": "text", "chosen": "text", "rejected": "text", "commit_id": "number",
    # Any of instruction, criteria, chosen, rejected and feedback: `text~sum(` searches them all.
    "text": "text",
}
ANALYSIS_FIELDS: dict[str, FieldKind] = {
    "chosen_parses": "bool", "rejected_parses": "bool",
    "chosen_cc": "number", "rejected_cc": "number", "cc_delta": "number",
    "chosen_mi": "number", "rejected_mi": "number", "mi_delta": "number",
    "chosen_loc": "number", "rejected_loc": "number", "loc_delta": "number",
    "chosen_volume": "number", "rejected_volume": "number", "volume_delta": "number",
    "chosen_bandit": "number", "rejected_bandit": "number", "bandit_delta": "number",
    "diff_size": "number", "length_ratio": "number", "identical": "bool",
    "dup_cluster": "number", "duplicate": "bool",
    "contamination": "number", "contamination_chosen": "number", "contamination_rejected": "number",
}
FIELDS: dict[str, FieldKind] = {**PAIR_FIELDS, **ANALYSIS_FIELDS}
OPERATORS = ("<=", ">=", "!=", "=", "<", ">", "~")
_CONDITION = re.compile(r"^\s*([a-z_]+)\s*(<=|>=|!=|==|=|<|>|~)\s*(.*)$", re.DOTALL)
_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


@dataclass(frozen=True, slots=True)
class Condition:
    """One test on a pair field: `value` is None for `= null` / `!= null`."""

    field: str
    op: str
    value: str | float | bool | None

    def __str__(self) -> str:
        value = self.value
        if value is None:
            shown = "null"
        elif isinstance(value, bool):
            shown = str(value).lower()
        elif isinstance(value, float) and value.is_integer():
            shown = str(int(value))
        else:
            shown = str(value)
        return f"{self.field}{self.op}{shown}"


@dataclass(frozen=True, slots=True)
class Rule:
    """A named filter and the action to take on the pairs it matches."""

    name: str
    conditions: tuple[Condition, ...]
    action: str


def parse_condition(text: str) -> Condition:
    """Parse `field OP value` (ops: = != < <= > >= and ~ for contains); raise OptionError if bad."""
    match = _CONDITION.match(text)
    if not match:
        raise OptionError(f"cannot read filter {text!r}: expected FIELD OP VALUE, e.g. cc_delta<0")
    name, op, raw = match.group(1), match.group(2), match.group(3).strip()
    op = "=" if op == "==" else op
    kind = FIELDS.get(name)
    if kind is None:
        close = difflib.get_close_matches(name, FIELDS, n=1, cutoff=0.6)
        known = f"did you mean {close[0]}?" if close else f"known: {', '.join(sorted(FIELDS))}"
        raise OptionError(f"unknown filter field {name!r}; {known}")
    if raw.lower() in ("null", "none"):
        if op not in ("=", "!="):
            raise OptionError(f"filter {text!r}: null only works with = or !=")
        return Condition(name, op, None)
    if op == "~":
        if kind != "text":
            raise OptionError(f"filter {text!r}: ~ (contains) only works on text fields")
        return Condition(name, op, raw)
    if kind == "number":
        try:
            return Condition(name, op, float(raw))
        except ValueError:
            raise OptionError(f"filter {text!r}: {name} needs a number, not {raw!r}") from None
    if kind == "bool":
        if raw.lower() in _TRUE:
            return Condition(name, op, True)
        if raw.lower() in _FALSE:
            return Condition(name, op, False)
        raise OptionError(f"filter {text!r}: {name} needs true or false, not {raw!r}")
    if op in ("<", "<=", ">", ">="):
        raise OptionError(f"filter {text!r}: {op} does not work on text fields")
    return Condition(name, op, raw)


def parse_filter(text: str | list[str] | None) -> tuple[Condition, ...]:
    """Parse space-separated conditions (quote values with spaces), or a list of one each."""
    if not text:
        return ()
    if not isinstance(text, str):
        return tuple(parse_condition(part) for part in text)
    try:
        parts = shlex.split(text)
    except ValueError as exc:
        raise OptionError(f"cannot read filter {text!r}: {exc}") from None
    return tuple(parse_condition(part) for part in parts)


def filter_spec(conditions: tuple[Condition, ...]) -> list[str]:
    """The conditions as strings, the form stored in manifests and shown to users."""
    return [str(condition) for condition in conditions]


class _RuleEntry(BaseModel):
    """One entry of a rule file as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Strict()] | None = None
    # One string of space-separated conditions, or a list of single conditions.
    where: Annotated[list[Annotated[str, Strict(), Field(min_length=1)]], Field(min_length=1)]
    action: Literal["accept", "reject", "flag", "pending"]

    @field_validator("where", mode="before")
    @classmethod
    def _one_string_is_a_filter(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return list(shlex.split(value))
            except ValueError as exc:
                raise ValueError(f"cannot read filter {value!r}: {exc}") from None
        return value

    @field_validator("where")
    @classmethod
    def _conditions_parse(cls, value: list[str]) -> list[str]:
        try:
            parse_filter(value)
        except OptionError as exc:
            raise ValueError(str(exc)) from None
        return value


class _RuleFile(BaseModel):
    """A rule file as written: `rules:` and a non-empty list of entries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: Annotated[list[_RuleEntry], Field(min_length=1)]


_RULE_HINTS = {
    "rules": "a non-empty list of rules, each with where and action",
    "rules[].where": "filter conditions such as 'cc_delta<0 criteria~secur', or a list of them",
    "rules[].action": "one of accept, reject, flag, pending",
}


def _rule_keys(path: tuple[str | int, ...]) -> tuple[str, ...]:
    return tuple(_RuleEntry.model_fields) if path else tuple(_RuleFile.model_fields)


def load_rules(path: Path) -> list[Rule]:
    """Load a YAML rule file: `rules: [{name, where, action}]`.

    Raises OptionError for a missing file and RecipeError naming file:line:column and the key for
    anything else: bad YAML, an unknown key (with the nearest known one), a bad action or filter.
    """
    from core.config import read_yaml, validate_document

    document = read_yaml(path, what="rule")
    if not isinstance(document.data, dict):
        raise RecipeError(f"{document.where(())}: expected a mapping with a non-empty list under 'rules'")
    parsed = validate_document(TypeAdapter(_RuleFile), document, known_keys=_rule_keys, hints=_RULE_HINTS)
    return [Rule(entry.name or f"rule {index + 1}", parse_filter(entry.where), entry.action)
            for index, entry in enumerate(parsed.rules)]
