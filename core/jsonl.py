"""Reading JSON Lines input files: every error names the file and line, and an empty file is an error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.errors import DataError, OptionError


def open_input(path: Path) -> Any:
    """Open an input file for binary reading; raise OptionError (a usage error) when it cannot be."""
    if path.is_dir():
        raise OptionError(f"{path}: is a folder; pass a file")
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise OptionError(f"{path}: no such file") from None
    except OSError as exc:
        raise OptionError(f"{path}: cannot read ({exc.strerror or exc})") from None


def decode_line(raw: bytes, path: Path, number: int) -> str:
    """A line of bytes as UTF-8 text (a byte-order mark on line 1 is dropped); DataError names file:line:column."""
    try:
        return raw.decode("utf-8-sig" if number == 1 else "utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}:{number}:{exc.start + 1}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None


def lone_surrogate(value: Any, key: str = "") -> tuple[str, str] | None:
    """The first string in a JSON value that holds a lone surrogate: (where, the surrogate escape), or None.

    JSON's `\\ud83d` escapes decode to lone surrogates that are not characters: they cannot be
    stored as UTF-8 text or shown, so input holding one is refused with its place.
    """
    if isinstance(value, str):
        for char in value:
            if "\ud800" <= char <= "\udfff":
                return key or "value", f"\\u{ord(char):04x}"
        return None
    if isinstance(value, dict):
        for name, item in value.items():
            found = lone_surrogate(name, key or "key") or lone_surrogate(item, f"{key}.{name}" if key else str(name))
            if found:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = lone_surrogate(item, f"{key}[{index}]")
            if found:
                return found
    return None


def json_kind(value: Any) -> str:
    """JSON's name for the type of a decoded value."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else "null"


def read_jsonl_objects(path: Path, *, what: str = "records") -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, object) for each non-blank line of a JSON Lines file.

    Raises OptionError when the file cannot be opened, and DataError naming `file:line` for a line
    that is not UTF-8 (with its column), not JSON, not an object, or holds a lone surrogate
    escape; a file with no record at all (0 bytes or only blank lines) is a DataError too.
    Lines are split on b"\\n" only, so a U+2028 inside a JSON string does not end a record.
    """
    count = 0
    with open_input(path) as handle:
        for number, raw in enumerate(handle, start=1):
            line = decode_line(raw, path, number)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}:{exc.colno}: not valid JSON ({exc.msg})") from None
            except RecursionError:
                raise DataError(f"{path}:{number}: JSON nested too deeply") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, found {json_kind(record)}")
            surrogate = lone_surrogate(record)
            if surrogate:
                raise DataError(f"{path}:{number}: field {surrogate[0]} holds a lone surrogate escape "
                                f"({surrogate[1]}), which is not a character")
            count += 1
            yield number, record
    if count == 0:
        raise DataError(f"{path}: no {what}: the file is empty or holds only blank lines")
