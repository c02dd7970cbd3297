"""Read coding instructions from JSONL or CSV files (Self-OSS-Instruct-style rows and similar)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import DataError, OptionError
from core.jsonl import json_kind, lone_surrogate, open_input, read_jsonl_objects
from core.synthesis.records import InstructionRecord

TEXT_FIELDS = ("instruction", "prompt", "problem", "question", "query", "task")
ID_FIELDS = ("id", "task_id", "seed", "index")
JSON_SUFFIXES = (".jsonl", ".json", ".ndjson")
CSV_SUFFIXES = (".csv", ".tsv")


def read_instructions(path: Path, *, field: str | None = None, language: str = "python") -> list[InstructionRecord]:
    """Read instructions from a .jsonl/.json or .csv file.

    Raises OptionError for a missing file or an unknown file type, and DataError naming
    `file:line` for a row that is not UTF-8 or JSON, holds a lone surrogate escape, has no
    instruction field or an empty instruction, and for a file with no instruction at all.
    """
    suffix = path.suffix.lower()
    if suffix not in JSON_SUFFIXES + CSV_SUFFIXES:
        if not path.exists():
            raise OptionError(f"{path}: no such file")
        raise OptionError(f"{path}: expected a .jsonl, .json or .csv file")
    rows = _csv_rows(path, suffix) if suffix in CSV_SUFFIXES else _json_rows(path)
    records = []
    for line_number, row in rows:
        key = field or next((name for name in TEXT_FIELDS if row.get(name)), None)
        if key is None or key not in row:
            wanted = field or " / ".join(TEXT_FIELDS)
            raise DataError(f"{path}:{line_number}: no {wanted} field (use --field NAME)")
        value = row[key]
        if not isinstance(value, str):
            raise DataError(f"{path}:{line_number}: field {key} must be text, found {json_kind(value)}")
        text = value.strip()
        if not text:
            raise DataError(f"{path}:{line_number}: field {key} is empty")
        external = next((str(row[name]) for name in ID_FIELDS if row.get(name) not in (None, "")), None)
        records.append(InstructionRecord(text=text, language=str(row.get("language") or language),
                                         external_id=external))
    if not records:
        raise DataError(f"{path}: no instructions: the file is empty or holds only blank lines")
    return records


def _decoded(path: Path) -> str:
    with open_input(path) as handle:
        raw = handle.read()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(f"{path}:{line}:{column}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None


def _json_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() == ".json":
        text = _decoded(path)
        if text.lstrip().startswith("["):
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
            for index, row in enumerate(data, start=1):
                if not isinstance(row, dict):
                    raise DataError(f"{path}: item {index}: expected a JSON object, found {json_kind(row)}")
                surrogate = lone_surrogate(row)
                if surrogate:
                    raise DataError(f"{path}: item {index}: field {surrogate[0]} holds a lone surrogate escape "
                                    f"({surrogate[1]}), which is not a character")
                yield index, row
            return
    yield from read_jsonl_objects(path, what="instructions")


def _csv_rows(path: Path, suffix: str) -> list[tuple[int, dict[str, Any]]]:
    dialect = "excel-tab" if suffix == ".tsv" else "excel"
    reader = csv.DictReader(io.StringIO(_decoded(path), newline=""), dialect=dialect)
    rows = []
    try:
        for row in reader:
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: not valid CSV ({exc})") from None
    return rows
