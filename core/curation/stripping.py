"""Source-code helpers shared by curation, synthesis and evaluation: one comment stripper."""

from __future__ import annotations

import ast
import io
import tokenize
import warnings

_REMOVED = "\x00"
_DOCSTRING_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def _line_offsets(code: str) -> list[int]:
    offsets = [0]
    for line in code.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def _char_col(line: str, byte_col: int) -> int:
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _docstring_spans(tree: ast.AST, lines: list[str]) -> list[tuple[int, int, int, int, bool]]:
    spans = []
    for node in ast.walk(tree):
        if not isinstance(node, _DOCSTRING_OWNERS) or not node.body:
            continue
        first = node.body[0]
        if (
            isinstance(first, ast.Expr)
            and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str)
            and first.end_lineno is not None
            and first.end_col_offset is not None
        ):
            needs_pass = len(node.body) == 1 and not isinstance(node, ast.Module)
            start_col = _char_col(lines[first.lineno - 1], first.col_offset)
            end_col = _char_col(lines[first.end_lineno - 1], first.end_col_offset)
            spans.append((first.lineno, start_col, first.end_lineno, end_col, needs_pass))
    return spans


def _comment_spans(code: str) -> list[tuple[int, int, int, int, bool]]:
    spans = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(code).readline):
            if token.type == tokenize.COMMENT:
                spans.append((*token.start, *token.end, False))
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # keep the comments found before the point where tokenizing broke
    return spans


def strip_comments(code: str, *, docstrings: bool = True) -> str:
    """Remove comments (and docstrings) without changing what the code does.

    Code that does not parse still loses the comments the tokenizer can find; blank lines
    left behind are dropped, and a body that held only a docstring gets `pass`.
    """
    lines = code.splitlines(keepends=True)
    spans = _comment_spans(code)
    if docstrings:
        try:
            spans += _docstring_spans(parse_quietly(code), lines)
        except (SyntaxError, ValueError, RecursionError):
            pass
    if not spans:
        return code
    offsets = _line_offsets(code)
    pieces: list[str] = []
    cursor = 0
    for start_line, start_col, end_line, end_col, needs_pass in sorted(spans):
        start = offsets[start_line - 1] + start_col
        end = offsets[end_line - 1] + end_col
        if start < cursor:
            continue
        pieces.append(code[cursor:start])
        pieces.append("pass" if needs_pass else _REMOVED)
        cursor = end
    pieces.append(code[cursor:])
    kept = []
    for line in "".join(pieces).splitlines():
        if _REMOVED in line:
            line = line.replace(_REMOVED, "")
            if not line.strip():
                continue  # the line held only what was removed
        kept.append(line.rstrip())
    result = "\n".join(_collapse_blank_runs(kept)).strip("\n")
    return result + "\n" if result and code.endswith("\n") else result


def _collapse_blank_runs(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        if not line and out and not out[-1]:
            continue
        out.append(line)
    return out


def parses(code: str) -> bool:
    """True when the code is syntactically valid Python."""
    try:
        parse_quietly(code)
    except (SyntaxError, ValueError, RecursionError):
        return False
    return True


def parse_quietly(code: str) -> ast.Module:
    """ast.parse without the SyntaxWarnings that untrusted code (invalid escapes, `is` on literals) emits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(code)
