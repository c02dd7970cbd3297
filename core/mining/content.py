"""Files that carry a source extension but are not source code: large-file pointers, generated and minified files.

The rules follow GitHub Linguist's `lib/linguist/generated.rb` (markers near the top of the file,
average line length of minified files, source-map references) and the Git LFS pointer
specification (docs/spec.md: a pointer is under 1024 bytes and starts with its `version` line).
They read only the file's bytes, so a blob's verdict holds under any path.
"""

from __future__ import annotations

import re

LFS_POINTER = "lfs_pointer"
GENERATED = "generated"
MINIFIED = "minified"
NON_SOURCE_REASONS = (LFS_POINTER, GENERATED, MINIFIED)

_LFS_VERSIONS = (b"version https://git-lfs.github.com/spec/", b"version https://hawser.github.com/spec/")
_LFS_MAX_BYTES = 1024
_HEAD_LINES = 10
_HEAD_BYTES = 4096
# A line near the top that says the file is generated: a tool's marker, or a line whose first words
# (after comment leaders) name what generated it; "auto-generated" in passing is not one.
_GENERATED_MARKER = re.compile(
    rb"@generated\b"
    rb"|\bdo not edit\b"
    rb"|\b(?:this|the) (?:file|code|module|source) (?:is|was|has been) (?:auto-?|automatically |machine[- ])?generated\b"
    rb"|^[^\w\n]*(?:code |file )?(?:auto-?|automatically |machine[- ])?generated (?:by|from|with|using)\b",
    re.IGNORECASE | re.MULTILINE,
)
_SOURCE_MAP = re.compile(rb"^(?://|/\*)[#@] source(?:Mapping)?URL=", re.MULTILINE)
MINIFIED_MEAN_LINE_BYTES = 110  # Linguist's threshold for minified JavaScript and CSS
_MINIFIED_MIN_BYTES = 1024  # a short file with one long line is not a minified bundle


def non_source_reason(data: bytes) -> str | None:
    """Why a file's content is not source code worth mining (LFS_POINTER, GENERATED, MINIFIED), or None."""
    if len(data) < _LFS_MAX_BYTES and data.startswith(_LFS_VERSIONS):
        return LFS_POINTER
    head_end = len(data)
    position = 0
    for _ in range(_HEAD_LINES):
        newline = data.find(b"\n", position, _HEAD_BYTES)
        if newline < 0:
            head_end = min(len(data), _HEAD_BYTES)
            break
        position = head_end = newline + 1
    if _GENERATED_MARKER.search(data, 0, head_end):
        return GENERATED
    if _SOURCE_MAP.search(data, max(0, len(data) - 512)):
        return GENERATED
    if len(data) >= _MINIFIED_MIN_BYTES:
        lines = data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
        if (len(data) - lines) / lines > MINIFIED_MEAN_LINE_BYTES:
            return MINIFIED
    return None
