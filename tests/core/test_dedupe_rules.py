"""Dedupe clusters and the filter/rule language."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.curation.dedupe import DedupeItem, find_clusters
from core.curation.rules import Condition, load_rules, parse_condition, parse_filter
from core.errors import OptionError, RecipeError

BASE = "def total(values):\n    result = 0\n    for value in values:\n        result += value\n    return result\n"


def test_exact_and_near_clusters() -> None:
    items = [
        DedupeItem(1, "k1", BASE),
        DedupeItem(2, "k1", BASE + "# differs only in comments"),
        DedupeItem(3, "k3", BASE.replace("result", "res")),
        DedupeItem(4, "k4", BASE.replace("values", "items").replace("result", "acc") + "\n\n\nprint(1)"),
        DedupeItem(5, "k5", "class Unrelated:\n    pass\n" * 3),
        DedupeItem(6, "k6", BASE + "  "),
    ]
    clusters = find_clusters(items, near_threshold=90)
    by_rep = {c.representative: c for c in clusters}
    assert by_rep[1].members[:2] == (1, 2) and 6 in by_rep[1].members and by_rep[1].kind == "near"
    assert all(5 not in c.members for c in clusters)
    exact_only = find_clusters(items, near_threshold=None)
    assert [(c.members, c.kind) for c in exact_only] == [((1, 2), "exact")]


def test_parse_conditions() -> None:
    assert parse_condition("cc_delta<=-1") == Condition("cc_delta", "<=", -1.0)
    assert parse_condition("chosen_parses = false") == Condition("chosen_parses", "=", False)
    assert parse_condition("contamination!=null") == Condition("contamination", "!=", None)
    assert parse_filter('criteria~"more secure" status=pending') == (
        Condition("criteria", "~", "more secure"), Condition("status", "=", "pending"))
    for bad, message in [("nope=1", "unknown filter field"), ("cc_delta<abc", "needs a number"),
                         ("source<x", "does not work on text"), ("cc_delta", "expected FIELD OP VALUE"),
                         ("identical=maybe", "true or false"), ("cc_delta~1", "only works on text")]:
        with pytest.raises(OptionError, match=message):
            parse_condition(bad)


def test_load_rules_names_file_and_key(tmp_path: Path) -> None:
    good = tmp_path / "rules.yaml"
    good.write_text("rules:\n  - name: drop broken\n    where: chosen_parses=false\n    action: reject\n"
                    "  - where: [contamination>=80, 'criteria~a b']\n    action: flag\n", encoding="utf-8")
    rules = load_rules(good)
    assert [r.action for r in rules] == ["reject", "flag"] and rules[1].name == "rule 2"
    assert rules[1].conditions[1] == Condition("criteria", "~", "a b")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - where: cc_delta<0\n    action: delete\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"bad.yaml:3:13: rules\[0\].action: "):
        load_rules(bad)
    bad.write_text("rules:\n  - where: zz<0\n    action: flag\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"bad.yaml:2:12: rules\[0\].where: unknown filter field"):
        load_rules(bad)
    bad.write_text("rules:\n  - where: cc_delt<0\n    action: flag\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"did you mean cc_delta\?"):
        load_rules(bad)
    bad.write_text("rules: [", encoding="utf-8")
    with pytest.raises(RecipeError, match="bad.yaml:1:9: not valid YAML"):
        load_rules(bad)


def test_unknown_rule_key_beside_valid_ones_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - name: x\n    where: cc_delta<0\n    action: flag\n    actoin: reject\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"rules.yaml:5:5: rules\[0\].actoin: unknown key; did you mean action\?"):
        load_rules(bad)
    bad.write_text("rules:\n  - where: cc_delta<0\n    action: flag\nrule_set: 2\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"rules.yaml:4:1: rule_set: unknown key"):
        load_rules(bad)
