"""YAML configuration files (training recipes, pipelines, curation rules) read into pydantic models.

Every error is one line that names the file, the line and column (1-based) and the key, e.g.
`recipes/train/x.yaml:14:3: hyperparameters.learnig_rate: unknown key; did you mean learning_rate?`.
Numbers in exponent notation without a dot (`5e-6`, `1e5`) are floats, as YAML 1.2 reads them
(PyYAML follows YAML 1.1, which reads them as strings).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import TypeAdapter, ValidationError

from core.errors import OptionError, RecipeError

T = TypeVar("T")
Location = tuple[int, int]  # 1-based line and column
KeyPath = tuple[str | int, ...]


class ConfigLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 floats: `5e-6`, `1E+3` and `.5e1` are numbers."""


ConfigLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class FieldProblem(ValueError):
    """A cross-field check that failed, pointing at the field to change (`field` is relative to the model)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name  # dotted for a nested field: "merge.weights"


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """A parsed YAML file: its data and where each key and value starts."""

    source: str
    data: Any
    values: dict[KeyPath, Location] = field(default_factory=dict)
    keys: dict[KeyPath, Location] = field(default_factory=dict)

    def where(self, path: KeyPath, *, key: bool = False) -> str:
        """`file:line:column` of the value (or the key) at `path`, else of its nearest parent."""
        if not self.values:  # data that did not come from a YAML file: no positions to give
            return self.source
        table = self.keys if key else self.values
        probe = tuple(path)
        while probe:
            if probe in table:
                line, column = table[probe]
                return f"{self.source}:{line}:{column}"
            if probe in self.values:
                line, column = self.values[probe]
                return f"{self.source}:{line}:{column}"
            probe = probe[:-1]
        line, column = self.values.get((), (1, 1))
        return f"{self.source}:{line}:{column}"


def read_yaml(path: str | Path, *, what: str) -> YamlDocument:
    """Read a YAML file with the location of every key and value.

    Raises OptionError when the file does not exist (a usage error) and RecipeError, naming
    `file:line:column`, for text that is not UTF-8 or not YAML and for a key given twice.
    """
    file = Path(path)
    if file.is_dir():
        raise OptionError(f"{file}: is a folder; pass a {what} file (YAML)")
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise OptionError(f"{file}: no such {what} file") from None
    except OSError as exc:
        raise OptionError(f"{file}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RecipeError(f"{file}:{line}:{column}: not UTF-8 text (byte 0x{raw[exc.start]:02x})") from None
    return parse_yaml(text, source=str(file))


def parse_yaml(text: str, *, source: str) -> YamlDocument:
    """Parse YAML text (see `read_yaml`); `source` names it in errors."""
    loader = ConfigLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(part for part in (exc.context, exc.problem) if part) or "malformed"
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
        raise RecipeError(f"{where}: not valid YAML ({_one_line(problem)})") from None
    except yaml.YAMLError as exc:
        raise RecipeError(f"{source}: not valid YAML ({_one_line(str(exc))})") from None
    finally:
        loader.dispose()
    document = YamlDocument(source, data)
    if node is not None:
        _record(node, (), document)
    return document


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _mark(node: yaml.Node) -> Location:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _record(node: yaml.Node, path: KeyPath, document: YamlDocument) -> None:
    document.values[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, Location] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            # Keys a merge (`<<: *anchor`) brought in lie outside this mapping; an own key overrides them.
            own = node.start_mark.index <= key_node.start_mark.index <= node.end_mark.index
            if key in seen and own:
                line, column = _mark(key_node)
                dotted = display_path((*path, key))
                raise RecipeError(f"{document.source}:{line}:{column}: {dotted}: key given twice "
                                  f"(first at line {seen[key][0]})")
            if own:
                seen[key] = _mark(key_node)
            document.keys[path + (key,)] = _mark(key_node)
            _record(value_node, (*path, key), document)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record(item, (*path, index), document)


def display_path(path: Iterable[str | int]) -> str:
    """`datasets[0].weight` for ("datasets", 0, "weight")."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """"did you mean X?" for the closest known name, else the list of known names."""
    names = sorted(set(known))
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]}?"
    return f"known keys: {', '.join(names)}"


def validate_document(
    adapter: TypeAdapter[T],
    document: YamlDocument,
    data: Any = None,
    *,
    known_keys: Callable[[KeyPath], Iterable[str]] = lambda _path: (),
    hints: Mapping[str, str] | None = None,
) -> T:
    """Validate `data` (default: the document's data) with `adapter`; raise RecipeError for the first problem.

    `known_keys(path)` names the keys allowed in the mapping at `path` (for "did you mean");
    `hints` maps a dotted key (list indices written `[]`) to what to write there.
    """
    try:
        return adapter.validate_python(document.data if data is None else data)
    except ValidationError as exc:
        raise RecipeError(describe_error(exc, document, known_keys=known_keys, hints=hints or {})) from None


def describe_error(
    exc: ValidationError,
    document: YamlDocument,
    *,
    known_keys: Callable[[KeyPath], Iterable[str]],
    hints: Mapping[str, str],
) -> str:
    """One line for the first error of a validation: `file:line:column: key: what is wrong; the fix`."""
    errors = exc.errors(include_url=False)
    locations = [tuple(e["loc"]) for e in errors]
    # A list whose items failed is also "too short" afterwards: only the items' own errors count.
    errors = [e for e, loc in zip(errors, locations)
              if not (e["type"] == "too_short"
                      and any(other[: len(loc)] == loc and other != loc for other in locations))]
    # An unknown key first: it is often the typo behind a "missing" one.
    errors.sort(key=lambda e: e["type"] not in ("extra_forbidden", "unexpected_keyword_argument"))
    error = errors[0]
    path: KeyPath = tuple(part for part in error["loc"] if isinstance(part, (str, int)))
    kind = error["type"]
    context_error = (error.get("ctx") or {}).get("error")
    if isinstance(context_error, FieldProblem):
        path = (*path, *context_error.field.split("."))
    shown = display_path(path) or "(top level)"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        where = document.where(path, key=True)
        return f"{where}: {shown}: unknown key; {did_you_mean(str(path[-1]), known_keys(path[:-1]))}{more}"
    where = document.where(path)
    hint = hints.get(re.sub(r"\[\d+\]", "[]", shown), "")
    if kind in ("missing", "missing_argument"):
        return f"{where}: {shown}: missing{'; ' + hint if hint else ''}{more}"
    if kind == "too_short" and hint:
        return f"{where}: {shown}: {hint}{more}"
    if isinstance(context_error, ValueError):  # our own check's message already says what to write
        return f"{where}: {shown}: {context_error}{more}"
    message = _pydantic_message(error)
    if kind not in ("string_too_short", "too_short") and not isinstance(error.get("input"), (dict, list, type(None))):
        message += f", not {error['input']!r}"
    return f"{where}: {shown}: {message}{' (' + hint + ')' if hint else ''}{more}"


# Pydantic's wording for Python types, in the words of a YAML file.
_WORDING = (
    (re.compile(r"^(Value error|Assertion failed), "), ""),
    (re.compile(r"^Tuple should have at least (\d+) items? after validation, not \d+$"), r"list at least \1"),
    (re.compile(r"^Input should be a dictionary or an instance of \w+$"), "expected a mapping of keys"),
    (re.compile(r"^Input should be a valid (tuple|list)$"), "expected a list"),
    (re.compile(r"^Input should be a valid dictionary$"), "expected a mapping of keys"),
    (re.compile(r"^String should have at least 1 character$"), "must not be empty"),
)


def _pydantic_message(error: Mapping[str, Any]) -> str:
    message = str(error["msg"])
    for pattern, replacement in _WORDING:
        message = pattern.sub(replacement, message)
    return message[:1].lower() + message[1:]
