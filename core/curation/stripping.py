"""Source-code helpers shared by curation, synthesis and evaluation: the comment strippers.

`strip_comments` removes comment and docstring tokens and nothing else. `regenerate_without_docstrings`
is the CodeFavor reference's rule (amazon-science/llm-code-preference, `codefavor/utility.py`,
`remove_comments`): parse, drop constant-expression statements, print the tree again with astor.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

_DOCSTRING_OWNERS = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
# Python's own line model: `\r\n`, `\r` and `\n` end a line; form feeds and the other characters
# `str.splitlines` breaks on do not.
_PYTHON_NEWLINE = re.compile(r"\r\n|\r|\n")
# What Python's tokenizer skips between tokens on one line.
_PYTHON_BLANK = " \t\x0c\r"
_STATEMENT_SEPARATOR = re.compile(r"[ \t\x0c]*;[ \t\x0c]*")


@dataclass(frozen=True, slots=True)
class _Cut:
    start: int  # absolute character offsets into the code
    end: int
    replacement: str = ""


def _line_starts(code: str, model: re.Pattern[str]) -> list[int]:
    return [0, *(match.end() for match in model.finditer(code))]


def _tokenizer_lines(code: str) -> list[str]:
    # The lines `tokenize` reads through io.StringIO.readline: split after "\n" only.
    return io.StringIO(code).readlines()


def _char_col(line: str, byte_col: int) -> int:
    return len(line.encode("utf-8")[:byte_col].decode("utf-8", errors="ignore"))


def _tokens(code: str) -> Iterator[tokenize.TokenInfo]:
    try:
        yield from tokenize.generate_tokens(io.StringIO(code).readline)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return  # keep what was found before the point where tokenizing broke


def _docstring_cuts(code: str) -> list[_Cut]:
    try:
        tree = parse_quietly(code)
    except (SyntaxError, ValueError, RecursionError):
        return []
    # ast positions count lines in Python's line model and columns in UTF-8 bytes.
    starts = _line_starts(code, _PYTHON_NEWLINE)
    ends = [*starts[1:], len(code)]

    def offset(line: int, byte_col: int) -> int:
        text = code[starts[line - 1] : ends[line - 1]]
        return starts[line - 1] + _char_col(text, byte_col)

    cuts = []
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
            end = offset(first.end_lineno, first.end_col_offset)
            separator = _STATEMENT_SEPARATOR.match(code, end)  # `"""Doc."""; x = 1` keeps `x = 1`
            cuts.append(_Cut(offset(first.lineno, first.col_offset), separator.end() if separator else end,
                             "pass" if needs_pass else ""))
    return cuts


def strip_comments(code: str, *, docstrings: bool = True) -> str:
    """Remove comments (and docstrings) and change nothing else that Python reads.

    Positions come from the tokenizer's and the parser's own line models, so a form feed or another
    character that `str.splitlines` breaks on never moves a cut. Code that does not parse still
    loses the comments the tokenizer finds; lines left holding only what was removed are dropped,
    runs of blank lines outside strings shrink to one, and a body that held only a docstring gets
    `pass`.
    """
    token_starts = _line_starts(code, re.compile("\n"))
    cuts: list[_Cut] = []
    protected: set[int] = set()  # tokenizer lines inside a multi-line string: never touched
    for token in _tokens(code):
        if token.type == tokenize.COMMENT:
            start = token_starts[token.start[0] - 1] + token.start[1]
            cuts.append(_Cut(start, token_starts[token.end[0] - 1] + token.end[1]))
        elif token.type == tokenize.STRING and token.end[0] > token.start[0]:
            protected.update(range(token.start[0] + 1, token.end[0] + 1))
    if docstrings:
        cuts += _docstring_cuts(code)
    if not cuts:
        return code
    return _apply_cuts(code, sorted(cuts, key=lambda cut: (cut.start, -cut.end)), protected)


def _apply_cuts(code: str, cuts: list[_Cut], protected: set[int]) -> str:
    merged: list[_Cut] = []
    for cut in cuts:
        if merged and cut.start < merged[-1].end:
            continue  # a comment inside a removed docstring, already gone
        merged.append(cut)
    out: list[tuple[str, bool]] = []  # (line, whether Python reads it as blank)
    line_start = 0
    first_cut = 0
    for number, line in enumerate(_tokenizer_lines(code), start=1):
        content_end = line_start + len(line.rstrip("\n"))
        newline = line[len(line.rstrip("\n")):]
        while first_cut < len(merged) and merged[first_cut].end <= line_start:
            first_cut += 1
        pieces: list[str] = []
        cursor = line_start
        touched = False
        for cut in merged[first_cut:]:
            if cut.start > content_end or (cut.start == content_end and cut.end == cut.start):
                break
            if cut.end <= line_start:
                continue
            touched = True
            pieces.append(code[cursor : max(cursor, cut.start)])
            if cut.start >= line_start:
                pieces.append(cut.replacement)  # a replacement goes where its cut starts
            cursor = max(cursor, min(cut.end, content_end))
        pieces.append(code[cursor:content_end])
        text = "".join(pieces)
        line_start += len(line)
        if not touched:
            out.append((text + newline, number not in protected and not text.strip(_PYTHON_BLANK)))
        elif text.strip(_PYTHON_BLANK):
            out.append((text.rstrip(" \t") + newline, False))
        # else: the line held only what was removed
    return _join(out, code)


def _join(lines: list[tuple[str, bool]], code: str) -> str:
    kept: list[str] = []
    previous_blank = True  # also drops blank lines at the start
    for line, blank in lines:
        if blank and previous_blank:
            continue
        kept.append(line)
        previous_blank = blank
    result = "".join(kept)
    # Blank lines at the end go too; the code keeps its final newline if it had one.
    trimmed = result.rstrip(_PYTHON_BLANK + "\n")
    if not trimmed:
        return ""
    tail = result[len(trimmed):]
    return trimmed + ("\n" if code.endswith("\n") and "\n" in tail else "")


def regenerate_without_docstrings(code: str) -> str:
    """The CodeFavor reference's comment stripping: parse, drop docstrings, print the tree with astor.

    Every constant-expression statement directly in a module, class or function body goes (not only
    the first), comments vanish with the tree, and the code comes back reformatted by astor.
    Raises SyntaxError (or ValueError, RecursionError) when the code does not parse, so the caller
    can apply the reference's fallback: keep both codes of a task as they are.
    Source: amazon-science/llm-code-preference `codefavor/utility.py` (remove_comments).
    """
    import astor  # deferred: only the codefavor protocol needs it

    tree = parse_quietly(code)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.Module)):
            node.body = [
                statement for statement in node.body
                if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant))
            ]
    return str(astor.to_source(tree))


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
