"""Arena reports as rows: the leaderboard across models, a run's breakdown, and md / csv / json text."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from core.errors import OptionError
from core.evaluation.arena_models import ArenaEntry, ArenaJudgementInfo
from core.evaluation.arena_scoring import ArenaScores, GroupScore

EXPORT_FORMATS = ("md", "csv", "json")
LEADERBOARD_COLUMNS = [
    "run", "set", "candidate", "baseline", "judge", "orders", "state", "judgements", "win rate %",
    "ci low %", "ci high %", "win %", "tie %", "loss %", "undecided %", "consistency %",
]
BREAKDOWN_COLUMNS = [
    "run", "candidate", "group", "name", "judgements", "questions", "wins", "ties", "losses", "undecided",
    "win %", "tie %", "loss %", "undecided %", "win rate %",
]
JUDGEMENT_COLUMNS = [
    "run", "question", "category", "language", "order", "candidate_side", "position_verdict", "verdict",
    "latency_s", "prompt_tokens", "completion_tokens", "cached", "raw_output",
]


def percent(value: float | None) -> float | None:
    """A share as a percentage with one decimal, None kept."""
    return None if value is None else round(100 * value, 1)


def leaderboard_rows(entries: Sequence[ArenaEntry]) -> list[dict[str, Any]]:
    """One row per run: win rate with its interval, outcome rates, order consistency."""
    rows = []
    for entry in entries:
        run, scores, overall = entry.run, entry.scores, entry.scores.overall
        rows.append({
            "run": run.id, "set": run.set_name, "candidate": run.candidate, "baseline": run.baseline,
            "judge": run.judge_spec, "orders": run.orders, "state": run.state, "judgements": overall.judgements,
            "win rate %": percent(overall.win_rate), "ci low %": percent(scores.interval[0]),
            "ci high %": percent(scores.interval[1]), "win %": percent(overall.rate(overall.wins)),
            "tie %": percent(overall.rate(overall.ties)), "loss %": percent(overall.rate(overall.losses)),
            "undecided %": percent(overall.rate(overall.undecided)), "consistency %": percent(scores.consistency),
        })
    return rows


def _group_row(run_id: int, candidate: str, group: str, score: GroupScore) -> dict[str, Any]:
    return {
        "run": run_id, "candidate": candidate, "group": group, "name": score.name, "judgements": score.judgements,
        "questions": score.questions, "wins": score.wins, "ties": score.ties, "losses": score.losses,
        "undecided": score.undecided, "win %": percent(score.rate(score.wins)),
        "tie %": percent(score.rate(score.ties)), "loss %": percent(score.rate(score.losses)),
        "undecided %": percent(score.rate(score.undecided)), "win rate %": percent(score.win_rate),
    }


def breakdown_rows(run_id: int, candidate: str, scores: ArenaScores) -> list[dict[str, Any]]:
    """Overall, then one row per category, then one per language."""
    rows = [_group_row(run_id, candidate, "overall", scores.overall)]
    rows += [_group_row(run_id, candidate, "category", s) for s in scores.by_category]
    rows += [_group_row(run_id, candidate, "language", s) for s in scores.by_language]
    return rows


def judgement_rows(judgements: Sequence[ArenaJudgementInfo]) -> list[dict[str, Any]]:
    """One row per stored judgement, raw output included."""
    return [
        {"run": j.run_id, "question": j.external_id, "category": j.category, "language": j.language,
         "order": j.order, "candidate_side": j.candidate_side, "position_verdict": j.position_verdict,
         "verdict": j.verdict, "latency_s": round(j.latency_s, 4), "prompt_tokens": j.prompt_tokens,
         "completion_tokens": j.completion_tokens, "cached": j.cached, "raw_output": j.raw_output}
        for j in judgements
    ]


def _cell(value: object) -> str:
    return "" if value is None else str(value)


def render(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """Rows as a markdown table, CSV or JSON (ASCII-escaped, so no control character survives raw)."""
    if fmt not in EXPORT_FORMATS:
        raise OptionError(f"unknown export format {fmt!r}; choose {', '.join(EXPORT_FORMATS)}")
    if fmt == "json":
        return json.dumps([{c: row.get(c) for c in columns} for row in rows], indent=2, ensure_ascii=True) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue()

    def escape(value: object) -> str:
        return _cell(value).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(escape(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"
