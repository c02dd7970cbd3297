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
