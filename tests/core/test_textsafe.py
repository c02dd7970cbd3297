"""The sanitizer leaves no byte that can drive a terminal and changes nothing printable."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from core.textsafe import one_line, visible
from tests.fixtures import HOSTILE_ALL

_UNSAFE = {chr(c) for c in range(0x20) if c not in (0x09, 0x0A)} | {chr(0x7F)} | {chr(c) for c in range(0x80, 0xA0)}
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


def test_escape_sequences_become_visible() -> None:
    assert visible("\x1b[2J\x1b[H") == "␛[2J␛[H"
    assert visible("\x1b]52;c;aGk=\x07") == "␛]52;c;aGk=␇"
    assert visible("a\x00b") == "a␀b"
    assert visible("\x9b31m") == "\\x9b31m"
    assert visible("abc\u202edef") == "abc⟨U+202E⟩def"


def test_code_keeps_its_lines_and_tabs_but_one_line_places_do_not() -> None:
    code = "def f():\n\treturn 1\r\n"
    assert visible(code) == "def f():\n\treturn 1␍\n"
    assert one_line(code) == "def f():␊ return 1␍␊"
    assert one_line("x" * 10, limit=5) == "xxxx…"


def test_non_utf8_file_name_bytes_are_shown_not_lost() -> None:
    name = b"caf\xe9.py".decode("utf-8", "surrogateescape")
    assert visible(name) == "caf\\xe9.py"
    visible(name).encode("utf-8")  # printable: no lone surrogate left


def test_hostile_fixture_is_neutralised() -> None:
    shown = visible(HOSTILE_ALL)
    assert not set(shown) & (_UNSAFE | _BIDI)


@given(st.text())
def test_no_unsafe_character_survives_and_printable_text_is_unchanged(text: str) -> None:
    shown = visible(text)
    assert not set(shown) & (_UNSAFE | _BIDI)
    shown.encode("utf-8")
    single = one_line(text)
    assert "\n" not in single and "\t" not in single


@given(st.text(alphabet=string.printable.replace("\r", "").replace("\x0b", "").replace("\x0c", "")))
def test_plain_printable_text_passes_through(text: str) -> None:
    assert visible(text) == text


def test_every_invisible_format_character_is_shown() -> None:
    import unicodedata

    hidden = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf" and c not in (0x200C, 0x200D)]
    shown = visible("".join(hidden))
    assert not set(shown) & set(hidden)
    # Tag characters spell hidden ASCII ("ASCII smuggling"); each becomes a visible code point.
    assert visible("ok\U000e0041\U000e0042") == "ok⟨U+E0041⟩⟨U+E0042⟩"
    assert visible("a\u2028b\u3164c") == "a⟨U+2028⟩b⟨U+3164⟩c"


def test_emoji_joiners_are_kept() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert visible(family) == family
