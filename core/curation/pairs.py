"""Preference pairs as plain data, and reading them from JSONL files."""

from __future__ import annotations

import hashlib
import io
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import DataError
from core.jsonl import read_jsonl_objects

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
    commit_id: int | None = None  # lineage: the mined commit record the pair comes from

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


def code_tokens(code: str) -> tuple[str, ...]:
    """The code as a whitespace-free token sequence: Python tokens with indentation kept as
    structure (INDENT/DEDENT), or, for code Python cannot tokenize, its whitespace-separated words.
    Comments count as content."""
    source = code.replace("\r\n", "\n").replace("\r", "\n")
    try:
        tokens = []
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type in (tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER):
                continue
            if token.type in (tokenize.INDENT, tokenize.DEDENT):
                tokens.append(tokenize.tok_name[token.type])
            else:  # a comment token carries the line's trailing spaces
                tokens.append(token.string.rstrip() if token.type == tokenize.COMMENT else token.string)
        return tuple(tokens)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return tuple(source.split())


def same_code(first: str, second: str) -> bool:
    """Whether two codes are the same once whitespace (line ends, indentation width, spacing,
    trailing and blank lines) is normalised."""
    if first == second:
        return True
    if "".join(first.split()) != "".join(second.split()):
        return False  # equal tokens would need equal text once whitespace is gone
    return code_tokens(first) == code_tokens(second)


def pair_problem(chosen: str, rejected: str) -> str | None:
    """Why a chosen/rejected pair cannot be a preference pair (empty side, same code), or None.

    The one check every path that stores pairs applies (import, synthesis, the store itself).
    """
    if not chosen.strip():
        return "the chosen code is empty"
    if not rejected.strip():
        return "the rejected code is empty"
    if same_code(chosen, rejected):
        return "chosen and rejected are the same code (after normalising whitespace)"
    return None


def read_pairs_jsonl(path: Path, *, source: str = "import") -> Iterator[NewPair]:
    """Yield pairs from a JSONL file; raise DataError naming `file:line` of the first bad record.

    A missing file is an OptionError; an empty file, a line that is not UTF-8 or JSON, a lone
    surrogate escape, a missing or non-text field, and a pair whose sides are the same code are
    DataErrors.
    """
    for number, record in read_jsonl_objects(path, what="pairs"):
        missing = [key for key in IMPORT_FIELDS if not isinstance(record.get(key), str)]
        if missing:
            raise DataError(f"{path}:{number}: missing or non-text field(s): {', '.join(missing)}")
        feedback = record.get("feedback") or ""
        if not isinstance(feedback, str):
            raise DataError(f"{path}:{number}: feedback must be text")
        problem = pair_problem(record["chosen"], record["rejected"])
        if problem:
            raise DataError(f"{path}:{number}: {problem}")
        meta = {k: v for k, v in record.items() if k not in (*IMPORT_FIELDS, "feedback", "source")}
        yield NewPair(
            instruction=record["instruction"], criteria=record["criteria"],
            chosen=record["chosen"], rejected=record["rejected"], feedback=feedback,
            source=str(record.get("source") or source), meta=meta,
        )
