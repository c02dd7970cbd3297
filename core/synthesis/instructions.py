"""Read coding instructions from JSONL or CSV files (Self-OSS-Instruct-style rows and similar)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from core.errors import OptionError
from core.synthesis.records import InstructionRecord

TEXT_FIELDS = ("instruction", "prompt", "problem", "question", "query", "task")
ID_FIELDS = ("id", "task_id", "seed", "index")


def read_instructions(path: Path, *, field: str | None = None, language: str = "python") -> list[InstructionRecord]:
    """Read instructions from a .jsonl/.json or .csv file; raise OptionError naming the file and line."""
    if not path.is_file():
        raise OptionError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".json", ".ndjson"):
            rows = list(_jsonl_rows(path))
        elif suffix in (".csv", ".tsv"):
            with path.open(newline="", encoding="utf-8") as handle:
                dialect = "excel-tab" if suffix == ".tsv" else "excel"
                rows = [(index + 2, row) for index, row in enumerate(csv.DictReader(handle, dialect=dialect))]
        else:
            raise OptionError(f"{path}: expected a .jsonl or .csv file")
    except UnicodeDecodeError:
        raise OptionError(f"{path}: not UTF-8 text") from None
    records = []
    for line_number, row in rows:
        key = field or next((name for name in TEXT_FIELDS if row.get(name)), None)
        if key is None or key not in row:
            wanted = field or " / ".join(TEXT_FIELDS)
            raise OptionError(f"{path}:{line_number}: no {wanted} field (use --field NAME)")
        text = str(row[key] or "").strip()
        if not text:
            continue
        external = next((str(row[name]) for name in ID_FIELDS if row.get(name) not in (None, "")), None)
        records.append(InstructionRecord(text=text, language=str(row.get("language") or language),
                                         external_id=external))
    return records


def _jsonl_rows(path: Path) -> list[tuple[int, dict[str, object]]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json" and text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OptionError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return [(index + 1, row) for index, row in enumerate(data) if isinstance(row, dict)]
    rows = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise OptionError(f"{path}:{line_number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise OptionError(f"{path}:{line_number}: expected a JSON object")
        rows.append((line_number, row))
    return rows
