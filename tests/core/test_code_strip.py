"""strip_comments keeps what code does and drops comments and docstrings."""

from __future__ import annotations

import ast

from core.curation.stripping import parses, strip_comments


def test_strips_comments_but_not_hashes_in_strings() -> None:
    code = 'def f():\n    """Doc."""\n    return "#not a comment"  # a comment\n'
    assert strip_comments(code) == 'def f():\n    return "#not a comment"\n'


def test_keeps_docstrings_when_asked() -> None:
    code = 'def f():\n    """Doc."""\n    return 1  # c\n'
    assert strip_comments(code, docstrings=False) == 'def f():\n    """Doc."""\n    return 1\n'


def test_docstring_only_body_gets_pass_and_still_parses() -> None:
    stripped = strip_comments('class A:\n    """Only a docstring."""\n')
    assert stripped == "class A:\n    pass\n"
    assert parses(stripped)


def test_meaning_is_kept() -> None:
    code = 'import os  # é\n\n\n# header\nx = f"{1}#{2}"\ny = """\n# inside string\n"""\n'
    stripped = strip_comments(code)
    assert ast.dump(ast.parse(stripped)) == ast.dump(ast.parse(code))
    assert "# inside string" in stripped and "é" not in stripped


def test_code_that_does_not_parse_still_loses_comments() -> None:
    assert strip_comments("def f(:\n  # c\n  pass\n") == "def f(:\n  pass\n"
    assert strip_comments("") == ""


# --- positions from Python's own line model ---------------------------------------------------

import io  # noqa: E402
import tokenize  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# Characters `str.splitlines` breaks on that Python treats as part of a line.
SPLITLINES_ONLY = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]


def test_form_feed_and_other_line_breakers_do_not_move_cuts() -> None:
    code = "import os\n\x0c\ndef base(p):\n    return os.path.basename(p)  # last part\n"
    assert strip_comments(code) == "import os\n\x0c\ndef base(p):\n    return os.path.basename(p)\n"
    for odd in SPLITLINES_ONLY:
        code = f's = "a{odd}b"  # note {odd} here\nt = 1  # two\n'
        assert strip_comments(code) == f's = "a{odd}b"\nt = 1\n', repr(odd)
        docstring = f'def f():\n    """Doc{odd}string."""\n    return 1  # c{odd}\n'
        assert strip_comments(docstring) == "def f():\n    return 1\n", repr(odd)


def test_strings_keep_their_blank_lines_and_trailing_spaces() -> None:
    code = 'x = """a   \n\n\n\nb"""  # c\ny = 2\n'
    assert strip_comments(code) == 'x = """a   \n\n\n\nb"""\ny = 2\n'


def test_docstring_followed_by_a_statement_on_its_line() -> None:
    assert strip_comments('def f():\n    """Doc."""; return 1\n') == "def f():\n    return 1\n"


def _significant_tokens(code: str, drop_strings: frozenset[tuple[int, int]] = frozenset()) -> list[tuple[int, str]]:
    ignored = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
               tokenize.ENDMARKER}
    return [(t.type, t.string) for t in tokenize.generate_tokens(io.StringIO(code).readline)
            if t.type not in ignored and t.start not in drop_strings]


def _docstring_starts(code: str) -> frozenset[tuple[int, int]]:
    tree = ast.parse(code)
    starts = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                line = code.split("\n")[first.lineno - 1]
                starts.add((first.lineno, len(line.encode()[: first.col_offset].decode())))
    return frozenset(starts)


_odd = st.sampled_from(["", " ", "#", "é", "\t", *SPLITLINES_ONLY])
_text = st.lists(_odd | st.sampled_from(["a", "b", "x y"]), max_size=4).map("".join)


@st.composite
def _programs(draw: st.DrawFn) -> str:
    lines: list[str] = []
    if draw(st.booleans()):
        lines.append(f'"""Module {draw(_text)}."""')
    for index in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["assign", "comment", "blank", "def", "string", "formfeed"]))
        note = f"  # {draw(_text)}" if draw(st.booleans()) else ""
        if kind == "assign":
            lines.append(f"v{index} = {draw(_text)!r}{note}")
        elif kind == "comment":
            lines.append(f"# {draw(_text)}")
        elif kind == "blank":
            lines.append(draw(st.sampled_from(["", "   ", "\x0c"])))
        elif kind == "formfeed":
            lines.append(f"\x0cw{index} = {index}{note}")
        elif kind == "string":
            lines.append(f'm{index} = """{draw(_text)}\n\n  {draw(_text)}   \n"""{note}')
        else:
            doc = f'    """Doc {draw(_text)}."""\n' if draw(st.booleans()) else ""
            lines.append(f"def f{index}(a):{note}\n{doc}    # {draw(_text)}\n    return a{note}")
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + draw(st.sampled_from([newline, ""]))


@settings(max_examples=300, deadline=None)
@given(_programs())
def test_stripping_changes_nothing_but_comments_and_docstrings(code: str) -> None:
    stripped = strip_comments(code)
    assert _significant_tokens(stripped) == _significant_tokens(code, _docstring_starts(code))
    assert "#" not in "".join(t.string for t in tokenize.generate_tokens(io.StringIO(stripped).readline)
                              if t.type == tokenize.COMMENT)
    assert parses(stripped)
    assert strip_comments(code, docstrings=False).count('"""Doc') == code.count('"""Doc')
