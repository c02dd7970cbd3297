"""Pair filters and curation rules: `field OP value` conditions and YAML rule files."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

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
        raise OptionError(f"unknown filter field {name!r}; known: {', '.join(sorted(FIELDS))}")
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


def load_rules(path: Path) -> list[Rule]:
    """Load a YAML rule file: `rules: [{name, where, action}]`; errors name the file and key."""
    import yaml

    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list) or not data["rules"]:
        raise RecipeError(f"{path}: expected a mapping with a non-empty list under 'rules'")
    rules = []
    for index, entry in enumerate(data["rules"]):
        where = f"{path}: rules[{index}]"
        if not isinstance(entry, dict):
            raise RecipeError(f"{where}: expected a mapping with where and action")
        action = entry.get("action")
        if action not in ACTIONS:
            raise RecipeError(f"{where}.action: expected one of {', '.join(ACTIONS)}, got {action!r}")
        condition_text = entry.get("where")
        if not isinstance(condition_text, (str, list)) or not condition_text:
            raise RecipeError(f"{where}.where: expected a filter string or a list of them")
        try:
            conditions = parse_filter([str(c) for c in condition_text] if isinstance(condition_text, list) else condition_text)
        except OptionError as exc:
            raise RecipeError(f"{where}.where: {exc}") from None
        rules.append(Rule(str(entry.get("name") or f"rule {index + 1}"), conditions, str(action)))
    return rules
