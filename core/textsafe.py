"""The one sanitizer for untrusted text (code, commit messages, authors, paths, LLM output,
benchmark text) before any terminal sees it, in the TUI or on stdout.

Escape sequences (CSI colours and screen clears, OSC links and clipboard writes), the other C0 and
C1 controls, NUL, DEL, bidirectional overrides and invisible format characters are replaced by
visible stand-ins (`\\x1b[2J` becomes `␛[2J`, U+202E becomes `⟨U+202E⟩`), so no byte of the text
can drive the terminal and nothing is hidden from the reader. Lone surrogates (bytes of a file name
that is not UTF-8, kept by `surrogateescape`) are shown as `\\xe9`. The result is still plain text:
callers never parse it as markup. JSON output escapes by JSON's own rules instead.
"""

from __future__ import annotations

import re

# Control pictures (U+2400 block) for C0, as terminals' own "show controls" modes print them.
_C0 = {code: chr(0x2400 + code) for code in range(0x20)}
_DEL = {0x7F: "\u2421"}
_C1 = {code: f"\\x{code:02x}" for code in range(0x80, 0xA0)}
# Every invisible format character (Unicode category Cf, as of Unicode 15: bidirectional controls
# as in Trojan Source, CVE-2021-42574, zero-width spaces, tag characters that smuggle hidden text),
# line and paragraph separators, and fillers that render as nothing. The two joiners (U+200C, U+200D)
# stay: emoji and several scripts need them.
_INVISIBLE_RANGES = (
    (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),
    (0x0890, 0x0891), (0x08E2, 0x08E2), (0x115F, 0x1160), (0x180E, 0x180E), (0x200B, 0x200B),
    (0x200E, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0x3164, 0x3164),
    (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD),
    (0x13430, 0x1343F), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)
_INVISIBLE = [code for first, last in _INVISIBLE_RANGES for code in range(first, last + 1)]
_FORMAT = {code: f"\u27e8U+{code:04X}\u27e9" for code in _INVISIBLE}

_MULTILINE = str.maketrans({**_C0, **_DEL, **_C1, **_FORMAT, 0x0A: "\n", 0x09: "\t"})
_ONE_LINE = str.maketrans({**_C0, **_DEL, **_C1, **_FORMAT, 0x0A: "\u240a", 0x09: " "})
_SURROGATE = re.compile("[\ud800-\udfff]")


def _show_surrogate(match: re.Match[str]) -> str:
    code = ord(match.group())
    # surrogateescape maps an undecodable byte b to U+DC00 + b; show that byte.
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def visible(text: str, *, multiline: bool = True) -> str:
    """Return `text` with every terminal-affecting or invisible character shown as a visible stand-in.

    Args:
        text: untrusted text.
        multiline: keep line feeds and tabs (code panes, `show` output); with False, a line feed
            becomes `␊` and a tab a space, for one-line places (table cells, titles, notifications).

    Returns:
        Text that holds no C0/C1 control other than (when multiline) LF and TAB, no DEL, no
        bidirectional or invisible format character and no lone surrogate; printable characters
        are unchanged.
    """
    if text.isascii() and text.isprintable():
        return text  # nothing to replace (the common case, checked in C): skips a table lookup per character
    shown = text.translate(_MULTILINE if multiline else _ONE_LINE)
    if _SURROGATE.search(shown):
        shown = _SURROGATE.sub(_show_surrogate, shown)
    return shown


def one_line(text: str, limit: int | None = None) -> str:
    """`visible(text, multiline=False)`, cut to `limit` characters with an ellipsis when longer."""
    shown = visible(text, multiline=False)
    if limit is not None and len(shown) > limit:
        return shown[: max(limit - 1, 0)] + "\u2026"
    return shown
