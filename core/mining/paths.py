"""File paths of a git tree as lossless text: git paths are bytes, the store and the front ends hold text.

A path that is valid UTF-8 and does not start with a double quote is kept as it is. Any other path
is written in git's C-quoted style (`git ls-files` with core.quotePath, Documentation/config/core.txt):
in double quotes, with `\\"`, `\\\\`, the C escapes of controls, and `\\xNN` for each byte that is
not part of a UTF-8 character. No verbatim path starts with a quote and the escapes are reversible,
so two different byte paths never share a text (`path_bytes(path_text(raw)) == raw`).
"""

from __future__ import annotations

import re

_C_ESCAPES = {"\a": "\\a", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\v": "\\v", "\f": "\\f", "\r": "\\r",
              '"': '\\"', "\\": "\\\\"}
_UNESCAPES = {value[1]: key for key, value in _C_ESCAPES.items()}
_ESCAPE = re.compile(r'\\(x[0-9a-f]{2}|[abtnvfr"\\])')


def decode_path(raw: bytes) -> str:
    """A git path as a str: UTF-8, with each undecodable byte kept as a lone surrogate (surrogateescape)."""
    return raw.decode("utf-8", "surrogateescape")


def path_text(path: str) -> str:
    """The lossless text of a path given as decoded by `decode_path` (verbatim, or C-quoted; see module)."""
    if path.isascii() and not path.startswith('"'):
        return path
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        pass  # lone surrogates: bytes that were not UTF-8
    else:
        if not path.startswith('"'):
            return path
    quoted = []
    for char in path:
        code = ord(char)
        if char in _C_ESCAPES:
            quoted.append(_C_ESCAPES[char])
        elif 0xDC80 <= code <= 0xDCFF:
            quoted.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            quoted.append(f"\\x{code:02x}")
        else:
            quoted.append(char)
    return '"' + "".join(quoted) + '"'


def path_bytes(text: str) -> bytes:
    """The bytes of the git path whose lossless text is `text` (the inverse of `path_text`)."""
    if not (len(text) >= 2 and text.startswith('"') and text.endswith('"')):
        return text.encode("utf-8")
    out = bytearray()
    body = text[1:-1]
    position = 0
    for match in _ESCAPE.finditer(body):
        out += body[position:match.start()].encode("utf-8")
        escape = match.group(1)
        out += bytes([int(escape[1:], 16)]) if escape.startswith("x") else _UNESCAPES[escape].encode("ascii")
        position = match.end()
    out += body[position:].encode("utf-8")
    return bytes(out)
