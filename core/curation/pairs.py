"""Preference pairs as plain data, and reading them from JSONL files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import OptionError

IMPORT_FIELDS = ("instruction", "criteria", "chosen", "rejected")


@dataclass(frozen=True, slots=True)
class NewPair:
    """A pair about to be stored."""

    instruction: str
    criteria: str
    chosen: str
    rejected: str
    feedback: str = ""
    source: str = "import"
    language: str = "python"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """Identity of the pair's content: importing the same pair twice stores it once."""
        digest = hashlib.sha256()
        for part in (self.instruction, self.criteria, self.chosen, self.rejected):
            digest.update(part.encode("utf-8", "surrogatepass"))
            digest.update(b"\x00")
        return digest.hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class PairSummary:
    """A pair as the list shows it: short fields and the headline analysis numbers."""

    id: int
    source: str
    status: str
    instruction: str
    criteria: str
    parses: str
    cc_delta: float | None
    bandit_delta: int | None
    contamination: float | None
    duplicate: bool
    lines: int = 0  # lines of the longer side


@dataclass(frozen=True, slots=True)
class PairDetail:
    """One pair with its texts, lineage and stored analysis (None before analysis)."""

    id: int
    source: str
    status: str
    instruction: str
    criteria: str
    chosen: str
    rejected: str
    feedback: str
    language: str
    commit_id: int | None
    instruction_id: int | None
    conversation_id: int | None
    meta: dict[str, Any]
    analysis: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class ReviewActionInfo:
    """A recorded review action (accept, flip, edit, bulk, rule): what it was and how many pairs it changed."""

    id: int
    action: str
    pair_count: int
    created_at: datetime
    undone: bool


@dataclass(frozen=True, slots=True)
class UndoOutcome:
    """What an undo did: the action's name, the pairs restored, and those left alone because they changed since."""

    action: str
    restored: int
    skipped: int


@dataclass(frozen=True, slots=True)
class PairStats:
    """Counts of pairs by source and status, plus analysis coverage."""

    total: int
    by_source: dict[str, int]
    by_status: dict[str, int]
    analysed: int
    duplicates: int
    contaminated: int


def read_pairs_jsonl(path: Path, *, source: str = "import") -> Iterator[NewPair]:
    """Yield pairs from a JSONL file; raise OptionError naming the line of the first bad record."""
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise OptionError(f"{path}: cannot read ({exc.strerror})") from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise OptionError(f"{path}:{number}: not valid JSON ({exc.msg})") from None
                if not isinstance(record, dict):
                    raise OptionError(f"{path}:{number}: expected a JSON object")
                missing = [key for key in IMPORT_FIELDS if not isinstance(record.get(key), str)]
                if missing:
                    raise OptionError(f"{path}:{number}: missing or non-text field(s): {', '.join(missing)}")
                feedback = record.get("feedback") or ""
                if not isinstance(feedback, str):
                    raise OptionError(f"{path}:{number}: feedback must be text")
                meta = {k: v for k, v in record.items() if k not in (*IMPORT_FIELDS, "feedback", "source")}
                yield NewPair(
                    instruction=record["instruction"], criteria=record["criteria"],
                    chosen=record["chosen"], rejected=record["rejected"], feedback=feedback,
                    source=str(record.get("source") or source), meta=meta,
                )
        except UnicodeDecodeError:
            raise OptionError(f"{path}: not UTF-8 text") from None
