"""Rule-based mutations of a Python function that make it worse on one objective (issue #18, point 1).

Each kind finds the places in a function where it applies ("sites", in `ast.walk` order) and rewrites
one of them, chosen by the caller's seeded generator, in a deep copy of the function. A kind returns
None when it does not apply. Correctness kinds change what the function returns, security kinds
add a weakness bandit reports, efficiency kinds keep the result but cost more time.
"""

from __future__ import annotations

import ast
import copy
import random
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True, slots=True)
class Variant:
    """A rewritten function and the modules its code now needs imported."""

    function: FunctionNode
    imports: tuple[str, ...] = ()
    site: str = ""  # what was rewritten, for the pair's metadata


class FunctionSource:
    """A function's source text: `node` is its tree for finding sites (never changed), `copy()` a fresh
    tree to rewrite. Parsing the text again is many times faster than `copy.deepcopy` of a tree, and
    gives the same nodes in the same order, so a site found in `node` is found at the same index."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.node = self.copy()
        _FROZEN_WALKS[self.node] = _walk(self.node)

    def copy(self) -> FunctionNode:
        """A fresh tree of the function."""
        node = ast.parse(self.text).body[0]
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            raise TypeError("the source does not start with a function definition")
        return node


@dataclass(frozen=True, slots=True)
class MutationKind:
    """One way of making a function worse on one objective."""

    name: str
    objective: str
    apply: Callable[[FunctionSource, random.Random], Variant | None] = field(repr=False)
    weakness: str = ""  # what the worse code does, completing "The rejected code ..."


# ---- helpers ---------------------------------------------------------------------------------------

# Walks of the trees `FunctionSource` keeps unchanged, computed once: every kind scans them again.
_FROZEN_WALKS: weakref.WeakKeyDictionary[ast.AST, list[ast.AST]] = weakref.WeakKeyDictionary()


def _walk(node: ast.AST) -> list[ast.AST]:
    """`ast.walk` order, without entering nested functions or classes (they are mutated on their own)."""
    frozen = _FROZEN_WALKS.get(node)
    if frozen is not None:
        return frozen
    found: list[ast.AST] = []
    todo = deque(ast.iter_child_nodes(node))
    while todo:
        child = todo.popleft()
        found.append(child)
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            todo.extend(ast.iter_child_nodes(child))
    return found


def _sites(function: FunctionNode, test: Callable[[ast.AST], bool]) -> list[int]:
    """Indexes (in `_walk` order) of the nodes that pass `test`."""
    return [index for index, node in enumerate(_walk(function)) if test(node)]


def _pick(subject: FunctionSource, rng: random.Random,
          test: Callable[[ast.AST], bool]) -> tuple[FunctionNode, ast.AST] | None:
    """A fresh copy of the function and, in it, one site chosen at random; None when there is none."""
    sites = _sites(subject.node, test)
    if not sites:
        return None
    index = rng.choice(sites)
    clone = subject.copy()
    return clone, _walk(clone)[index]


def _dotted(node: ast.AST) -> str:
    """`a.b.c` for a name or attribute chain, else ""."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _call_to(node: ast.AST, *names: str) -> bool:
    return isinstance(node, ast.Call) and _dotted(node.func) in names


def _parameters(function: FunctionNode) -> set[str]:
    arguments = function.args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    every += [a for a in (arguments.vararg, arguments.kwarg) if a is not None]
    return {a.arg for a in every} - {"self", "cls"}


def _stored_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def _loaded(node: ast.AST, name: str) -> list[ast.Name]:
    return [n for n in ast.walk(node) if isinstance(n, ast.Name) and n.id == name and isinstance(n.ctx, ast.Load)]


def _bodies(node: ast.AST) -> Iterator[list[ast.stmt]]:
    """Every statement list in a function (bodies, else branches, handlers), nested functions aside."""
    for child in [node, *_walk(node)]:
        if child is not node and isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for name in ("body", "orelse", "finalbody"):
            value = getattr(child, name, None)
            if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                yield value
        for handler in getattr(child, "handlers", []) or []:
            yield handler.body


def _loops(node: ast.AST) -> list[ast.AST]:
    return [n for n in _walk(node) if isinstance(n, (ast.For, ast.AsyncFor, ast.While))]


def _in_loop_nodes(function: FunctionNode) -> set[int]:
    """ids of every node inside a loop's body or test, or inside a comprehension."""
    inside: set[int] = set()
    for node in _walk(function):
        if isinstance(node, (ast.For, ast.AsyncFor)):
            parts: list[ast.AST] = [*node.body, *node.orelse]
        elif isinstance(node, ast.While):
            parts = [node.test, *node.body]
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
            parts = [node]
        else:
            continue
        for part in parts:
            inside.update(id(n) for n in ast.walk(part))
    return inside


def _fresh_name(function: FunctionNode, preferred: str) -> str:
    used = {n.id for n in ast.walk(function) if isinstance(n, ast.Name)} | _parameters(function)
    name, number = preferred, 1
    while name in used:
        number += 1
        name = f"{preferred}{number}"
    return name


# ---- correctness -----------------------------------------------------------------------------------

def _minus_one(expression: ast.expr) -> ast.expr:
    """`e - 1`, or `x` when `e` is `x + 1` (the off-by-one a maintainer could write)."""
    if isinstance(expression, ast.BinOp) and isinstance(expression.op, ast.Add) and \
            isinstance(expression.right, ast.Constant) and expression.right.value == 1:
        return expression.left
    return ast.BinOp(left=expression, op=ast.Sub(), right=ast.Constant(1))


def off_by_one(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """`range(..., stop)` stops one early, or a slice `[:stop]` keeps one item less."""
    def site(node: ast.AST) -> bool:
        if _call_to(node, "range"):
            assert isinstance(node, ast.Call)
            return 1 <= len(node.args) <= 3 and not node.keywords
        return isinstance(node, ast.Slice) and node.upper is not None
    picked = _pick(subject, rng, site)
    if picked is None:
        return None
    clone, node = picked
    if isinstance(node, ast.Call):
        stop = 0 if len(node.args) == 1 else 1
        node.args[stop] = _minus_one(node.args[stop])
        return Variant(clone, site="range stop")
    assert isinstance(node, ast.Slice) and node.upper is not None
    node.upper = _minus_one(node.upper)
    return Variant(clone, site="slice end")


_FLIPPED: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE, ast.Eq: ast.NotEq, ast.NotEq: ast.Eq,
    ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}


def flipped_comparison(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """One comparison turned around: `<` becomes `>`, `<=` `>=`, `==` `!=`, `in` `not in`, `is` `is not`."""
    picked = _pick(subject, rng, lambda n: isinstance(n, ast.Compare) and len(n.ops) == 1)
    if picked is None:
        return None
    clone, node = picked
    assert isinstance(node, ast.Compare)
    before = type(node.ops[0])
    node.ops = [_FLIPPED[before]()]
    return Variant(clone, site=f"{before.__name__} -> {_FLIPPED[before].__name__}")


def _guard_sites(function: FunctionNode) -> list[tuple[list[ast.stmt], int]]:
    sites = []
    for body in _bodies(function):
        for index, statement in enumerate(body[:-1]):
            if isinstance(statement, ast.If) and not statement.orelse and \
                    isinstance(statement.body[-1], (ast.Return, ast.Raise, ast.Continue, ast.Break)):
                sites.append((body, index))
    return sites


def dropped_edge_case(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """A guard clause (`if ...: return/raise/continue/break` followed by more code) removed."""
    function = subject.node
    count = len(_guard_sites(function))
    if not count:
        return None
    chosen = rng.randrange(count)
    clone = subject.copy()
    body, index = _guard_sites(clone)[chosen]
    removed = body.pop(index)
    assert isinstance(removed, ast.If)
    return Variant(clone, site=f"if {ast.unparse(removed.test)}")


def _wrong_value(value: ast.expr, names: list[str], rng: random.Random) -> ast.expr | None:
    """A plausible wrong value in place of `value`, or None when there is none."""
    if isinstance(value, ast.Name):
        others = [name for name in names if name != value.id]
        return ast.Name(rng.choice(others), ast.Load()) if others else None
    if isinstance(value, ast.Constant) and isinstance(value.value, bool):
        return ast.Constant(not value.value)
    if isinstance(value, ast.Constant) and isinstance(value.value, (int, float)):
        return ast.Constant(value.value + 1)
    if isinstance(value, ast.BinOp):  # `a + b` -> `a`: a term left out
        return value.left
    if isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.Not):
        return value.operand
    return None


def wrong_return(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """A returned value replaced: another local name, the negated boolean, the number plus one, a term
    left out of an arithmetic result, or a `not` dropped."""
    function = subject.node
    names = sorted(_parameters(function) | _stored_names(function))

    def site(node: ast.AST) -> bool:
        return isinstance(node, ast.Return) and node.value is not None and \
            _wrong_value(node.value, names, random.Random(0)) is not None

    picked = _pick(subject, rng, site)
    if picked is None:
        return None
    clone, node = picked
    assert isinstance(node, ast.Return) and node.value is not None
    before = node.value
    replacement = _wrong_value(before, names, rng)
    assert replacement is not None
    node.value = replacement
    return Variant(clone, site=f"return {ast.unparse(before)} -> {ast.unparse(replacement)}")


# ---- security --------------------------------------------------------------------------------------

_PARSERS = ("int", "float", "json.loads", "ast.literal_eval", "literal_eval")


def eval_of_input(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """A parameter parsed with int/float/json.loads/literal_eval is evaluated with `eval` instead."""
    function = subject.node
    inputs = _parameters(function)
    picked = _pick(subject, rng, lambda n: _call_to(n, *_PARSERS) and len(n.args) == 1  # type: ignore[attr-defined]
                   and isinstance(n.args[0], ast.Name) and n.args[0].id in inputs)  # type: ignore[attr-defined]
    if picked is None:
        return None
    clone, node = picked
    assert isinstance(node, ast.Call)
    before = _dotted(node.func)
    node.func, node.keywords = ast.Name("eval", ast.Load()), []
    return Variant(clone, site=f"{before} -> eval")


def yaml_load(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """`yaml.safe_load(x)` (or `yaml.load(x, Loader=yaml.SafeLoader)`) loads with the full `yaml.Loader`."""
    def site(node: ast.AST) -> bool:
        if _call_to(node, "yaml.safe_load", "yaml.safe_load_all"):
            return True
        return _call_to(node, "yaml.load") and any(  # type: ignore[attr-defined]
            k.arg == "Loader" and "Safe" in _dotted(k.value) for k in node.keywords)  # type: ignore[attr-defined]
    picked = _pick(subject, rng, site)
    if picked is None:
        return None
    clone, node = picked
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    node.func.attr = "load_all" if node.func.attr.endswith("_all") else "load"
    loader = ast.Attribute(ast.Name("yaml", ast.Load()), "Loader", ast.Load())
    node.keywords = [k for k in node.keywords if k.arg != "Loader"] + [ast.keyword("Loader", loader)]
    return Variant(clone, site="yaml.Loader")


def pickle_of_input(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """`json.loads(x)` / `json.load(f)` of data from outside becomes `pickle.loads(x)` / `pickle.load(f)`."""
    picked = _pick(subject, rng, lambda n: _call_to(n, "json.loads", "json.load"))
    if picked is None:
        return None
    clone, node = picked
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    node.func.value = ast.Name("pickle", ast.Load())
    node.keywords = []
    return Variant(clone, imports=("pickle",), site=f"json.{node.func.attr} -> pickle.{node.func.attr}")


_SUBPROCESS = ("subprocess.run", "subprocess.call", "subprocess.check_call", "subprocess.check_output",
               "subprocess.Popen")


def shell_true(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """A subprocess call runs through the shell: the argument list joined into one command, `shell=True`."""
    picked = _pick(subject, rng, lambda n: _call_to(n, *_SUBPROCESS) and not any(  # type: ignore[attr-defined]
        k.arg == "shell" and isinstance(k.value, ast.Constant) and k.value.value is True
        for k in n.keywords))  # type: ignore[attr-defined]
    if picked is None:
        return None
    clone, node = picked
    assert isinstance(node, ast.Call)
    if node.args and isinstance(node.args[0], (ast.List, ast.Tuple)):
        node.args[0] = ast.Call(ast.Attribute(ast.Constant(" "), "join", ast.Load()), [node.args[0]], [])
    node.keywords = [k for k in node.keywords if k.arg != "shell"] + [ast.keyword("shell", ast.Constant(True))]
    return Variant(clone, site=f"{_dotted(node.func)}(shell=True)")


_STRONG_HASHES = ("sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384", "sha3_512",
                  "blake2b", "blake2s")


def weak_hash(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """A strong hash (SHA-2, SHA-3, BLAKE2, PBKDF2) replaced by MD5 or SHA-1."""
    def site(node: ast.AST) -> bool:
        if _call_to(node, *(f"hashlib.{name}" for name in _STRONG_HASHES), "hashlib.pbkdf2_hmac"):
            return True
        return _call_to(node, "hashlib.new") and bool(node.args) and isinstance(  # type: ignore[attr-defined]
            node.args[0], ast.Constant) and str(node.args[0].value).lower().replace("-", "_") in _STRONG_HASHES  # type: ignore[attr-defined]
    picked = _pick(subject, rng, site)
    if picked is None:
        return None
    clone, node = picked
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    weak = rng.choice(("md5", "sha1"))
    before = _dotted(node.func)
    if node.func.attr == "new":
        node.args[0] = ast.Constant(weak)
    elif node.func.attr == "pbkdf2_hmac" and len(node.args) >= 3:
        # pbkdf2_hmac(name, password, salt, rounds) -> md5(salt + password).digest(): one fast round.
        digest = ast.Call(ast.Attribute(ast.Name("hashlib", ast.Load()), weak, ast.Load()),
                          [ast.BinOp(node.args[2], ast.Add(), node.args[1])], [])
        node.func, node.args, node.keywords = ast.Attribute(digest, "digest", ast.Load()), [], []
    elif node.func.attr == "pbkdf2_hmac":
        return None
    else:
        node.func.attr = weak
        node.keywords = [k for k in node.keywords if k.arg not in ("usedforsecurity", "digest_size")]
    return Variant(clone, site=f"{before} -> hashlib.{weak}")


def _placeholders(sql: str) -> tuple[str, int]:
    marker = "?" if "?" in sql and "%s" not in sql else "%s"
    return marker, sql.count(marker)


def sql_by_formatting(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """A parameterised query (`execute(sql, params)`) built by string formatting instead."""
    def site(node: ast.AST) -> bool:
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "executemany") and len(node.args) == 2):
            return False
        sql, params = node.args
        if not (isinstance(sql, ast.Constant) and isinstance(sql.value, str)):
            return False
        _marker, count = _placeholders(sql.value)
        return count >= 1 and isinstance(params, (ast.Tuple, ast.List)) and len(params.elts) == count \
            and "%" not in sql.value.replace("%s", "")
    picked = _pick(subject, rng, site)
    if picked is None:
        return None
    clone, node = picked
    assert isinstance(node, ast.Call)
    sql, params = node.args
    assert isinstance(sql, ast.Constant) and isinstance(sql.value, str) and isinstance(params, (ast.Tuple, ast.List))
    marker, _count = _placeholders(sql.value)
    text = sql.value.replace(marker, "'%s'")
    node.args = [ast.BinOp(ast.Constant(text), ast.Mod(), ast.Tuple(list(params.elts), ast.Load()))]
    return Variant(clone, site="sql % params")


_HTTP = tuple(f"{module}.{verb}" for module in ("requests", "httpx")
              for verb in ("get", "post", "put", "patch", "delete", "head", "options", "request"))


def verify_false(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """An HTTPS request made with certificate checks off (`verify=False`)."""
    picked = _pick(subject, rng, lambda n: _call_to(n, *_HTTP) and not any(  # type: ignore[attr-defined]
        k.arg == "verify" and isinstance(k.value, ast.Constant) and k.value.value is False
        for k in n.keywords))  # type: ignore[attr-defined]
    if picked is None:
        return None
    clone, node = picked
    assert isinstance(node, ast.Call)
    node.keywords = [k for k in node.keywords if k.arg != "verify"] + [ast.keyword("verify", ast.Constant(False))]
    return Variant(clone, site=f"{_dotted(node.func)}(verify=False)")


def _mktemp_call(keywords: list[ast.keyword]) -> ast.Call:
    kept = [k for k in keywords if k.arg in ("suffix", "prefix", "dir")]
    return ast.Call(ast.Attribute(ast.Name("tempfile", ast.Load()), "mktemp", ast.Load()), [], kept)


def temp_mktemp(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """A safely created temporary file (`mkstemp`, `NamedTemporaryFile`) named by `tempfile.mktemp` instead."""
    function = subject.node
    def site(node: ast.AST) -> bool:
        if _call_to(node, "tempfile.NamedTemporaryFile", "tempfile.TemporaryFile"):
            return not node.args  # type: ignore[attr-defined]
        return isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Tuple) \
            and len(node.targets[0].elts) == 2 and all(isinstance(e, ast.Name) for e in node.targets[0].elts) \
            and _call_to(node.value, "tempfile.mkstemp") and not node.value.args  # type: ignore[attr-defined]
    sites = _sites(function, site)
    if not sites:
        return None
    index = rng.choice(sites)
    clone = subject.copy()
    node = _walk(clone)[index]
    if isinstance(node, ast.Call):
        mode = next((k.value for k in node.keywords if k.arg == "mode"), ast.Constant("w+b"))
        node.func, node.args = ast.Name("open", ast.Load()), [_mktemp_call(node.keywords), mode]
        node.keywords = []
        return Variant(clone, site="NamedTemporaryFile -> open(mktemp())")
    assert isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Tuple)
    handle, name = (e.id for e in node.targets[0].elts if isinstance(e, ast.Name))
    assert isinstance(node.value, ast.Call)
    mktemp = ast.Assign([ast.Name(name, ast.Store())], _mktemp_call(node.value.keywords))
    flags = ast.BinOp(ast.Attribute(ast.Name("os", ast.Load()), "O_RDWR", ast.Load()), ast.BitOr(),
                      ast.Attribute(ast.Name("os", ast.Load()), "O_CREAT", ast.Load()))
    opened = ast.Assign([ast.Name(handle, ast.Store())],
                        ast.Call(ast.Attribute(ast.Name("os", ast.Load()), "open", ast.Load()),
                                 [ast.Name(name, ast.Load()), flags], []))
    for body in _bodies(clone):
        if node in body:
            at = body.index(node)
            body[at : at + 1] = [mktemp, opened]
            break
    return Variant(clone, imports=("os",), site="mkstemp -> mktemp + os.open")


# ---- efficiency ------------------------------------------------------------------------------------

def _set_to_list(value: ast.expr) -> ast.expr | None:
    if _call_to(value, "set", "frozenset"):
        assert isinstance(value, ast.Call)
        return ast.Call(ast.Name("list", ast.Load()), value.args, value.keywords) if value.args else None
    if isinstance(value, ast.Set):
        return ast.List(value.elts, ast.Load())
    if isinstance(value, ast.SetComp):
        return ast.ListComp(value.elt, value.generators)
    return None


def _membership_sites(function: FunctionNode) -> list[tuple[ast.Assign | None, ast.AST]]:
    """(the assignment of a set, or None for a literal) used as the right side of `in` inside a loop."""
    inside = _in_loop_nodes(function)
    assigned: dict[str, list[ast.Assign]] = {}
    for node in _walk(function):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            assigned.setdefault(node.targets[0].id, []).append(node)
    sites: list[tuple[ast.Assign | None, ast.AST]] = []
    for node in _walk(function):
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn))
                and id(node) in inside):
            continue
        right = node.comparators[0]
        if isinstance(right, (ast.Set, ast.SetComp)) and _set_to_list(right) is not None:
            sites.append((None, right))
        elif isinstance(right, ast.Name) and len(assigned.get(right.id, [])) == 1:
            assignment = assigned[right.id][0]
            used_as_set = any(isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == right.id
                              for n in _walk(function))
            if not used_as_set and _set_to_list(assignment.value) is not None and \
                    all(site[0] is not assignment for site in sites):
                sites.append((assignment, assignment.value))
    return sites


def list_membership(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """A set used for `in` tests inside a loop built as a list instead (a linear scan per test)."""
    function = subject.node
    count = len(_membership_sites(function))
    if not count:
        return None
    chosen = rng.randrange(count)
    clone = subject.copy()
    assignment, value = _membership_sites(clone)[chosen]
    replacement = _set_to_list(value)  # type: ignore[arg-type]
    assert replacement is not None
    if assignment is not None:
        assignment.value = replacement
        return Variant(clone, site=f"{ast.unparse(assignment.targets[0])} as a list")
    for node in _walk(clone):
        if isinstance(node, ast.Compare) and node.comparators[0] is value:
            node.comparators = [replacement]
    return Variant(clone, site="set literal as a list")


def _join_of(node: ast.AST) -> ast.expr | None:
    """The argument of `''.join(arg)`, else None."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join" and \
            isinstance(node.func.value, ast.Constant) and node.func.value.value == "" and len(node.args) == 1 \
            and not node.keywords:
        return node.args[0]
    return None


def _appended_list_sites(function: FunctionNode) -> list[str]:
    """Names of lists built by `.append` in a loop and only ever joined with `''`."""
    names = []
    inside = _in_loop_nodes(function)
    for node in _walk(function):
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and isinstance(node.value, ast.List) and not node.value.elts):
            continue
        name = node.targets[0].id
        uses = _loaded(function, name)
        appends = [n for n in _walk(function) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                   and isinstance(n.value.func, ast.Attribute) and n.value.func.attr == "append"
                   and isinstance(n.value.func.value, ast.Name) and n.value.func.value.id == name
                   and len(n.value.args) == 1 and id(n) in inside]
        joins = [n for n in _walk(function) if isinstance(_join_of(n), ast.Name) and _join_of(n).id == name]  # type: ignore[union-attr]
        assignments = [n for n in _walk(function) if isinstance(n, ast.Name) and n.id == name
                       and isinstance(n.ctx, ast.Store)]
        if appends and joins and len(uses) == len(appends) + len(joins) and len(assignments) == 1 \
                and name not in names:
            names.append(name)
    return names


def _join_statement_sites(function: FunctionNode) -> list[ast.stmt]:
    """`return ''.join(gen)` or `x = ''.join(gen)` with a comprehension that has no async or walrus."""
    sites = []
    for body in _bodies(function):
        for statement in body:
            value = statement.value if isinstance(statement, (ast.Return, ast.Assign)) else None
            if isinstance(statement, ast.Assign) and not (len(statement.targets) == 1
                                                           and isinstance(statement.targets[0], ast.Name)):
                continue
            argument = _join_of(value) if value is not None else None
            if isinstance(argument, (ast.GeneratorExp, ast.ListComp)) and \
                    not any(g.is_async for g in argument.generators) and \
                    not any(isinstance(n, ast.NamedExpr) for n in ast.walk(argument)) and \
                    not _targets_used_elsewhere(function, argument):
                sites.append(statement)
    return sites


def _targets_used_elsewhere(function: FunctionNode, comprehension: ast.GeneratorExp | ast.ListComp) -> bool:
    """True when a loop variable of the comprehension is also a name outside it (a loop would clobber it)."""
    targets = {name for g in comprehension.generators for name in _stored_names(g.target)}
    inside = {id(n) for n in ast.walk(comprehension)}
    return any(isinstance(n, ast.Name) and n.id in targets and id(n) not in inside for n in ast.walk(function)) \
        or bool(targets & _parameters(function))


def string_concat(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """Text built with `+=` on a string in a loop instead of collected and joined once."""
    function = subject.node
    lists = _appended_list_sites(function)
    statements = _join_statement_sites(function)
    count = len(lists) + len(statements)
    if not count:
        return None
    chosen = rng.randrange(count)
    clone = subject.copy()
    if chosen < len(lists):
        name = lists[chosen]
        for node in _walk(clone):
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) and node.targets[0].id == name:
                node.value = ast.Constant("")
        for body in _bodies(clone):
            for index, statement in enumerate(body):
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call) and \
                        isinstance(statement.value.func, ast.Attribute) and statement.value.func.attr == "append" \
                        and isinstance(statement.value.func.value, ast.Name) and statement.value.func.value.id == name:
                    body[index] = ast.AugAssign(ast.Name(name, ast.Store()), ast.Add(), statement.value.args[0])
        _replace_joins(clone, name)
        return Variant(clone, site=f"{name} += ... in a loop")
    target = _join_statement_sites(clone)[chosen - len(lists)]
    assert isinstance(target, (ast.Return, ast.Assign)) and target.value is not None
    generator = _join_of(target.value)
    assert isinstance(generator, (ast.GeneratorExp, ast.ListComp))
    text = _fresh_name(clone, "text")
    inner: ast.stmt = ast.AugAssign(ast.Name(text, ast.Store()), ast.Add(), generator.elt)
    for comprehension in reversed(generator.generators):
        for condition in reversed(comprehension.ifs):
            inner = ast.If(condition, [inner], [])
        inner = ast.For(comprehension.target, comprehension.iter, [inner], [])
    target.value = ast.Name(text, ast.Load())
    for body in _bodies(clone):
        if target in body:
            at = body.index(target)
            body[at:at] = [ast.Assign([ast.Name(text, ast.Store())], ast.Constant("")), inner]
            break
    return Variant(clone, site=f"{text} += ... in a loop")


def _replace_joins(function: FunctionNode, name: str) -> None:
    class Joins(ast.NodeTransformer):
        def visit_Call(self, node: ast.Call) -> ast.AST:
            argument = _join_of(node)
            if isinstance(argument, ast.Name) and argument.id == name:
                return ast.Name(name, ast.Load())
            return self.generic_visit(node)

    Joins().visit(function)


_HOISTABLE = ("sorted", "len")


def _hoisted_sites(function: FunctionNode) -> list[tuple[list[ast.stmt], int, list[ast.AST]]]:
    """(body, index of `n = sorted(...)` / `n = len(...)`, the loops after it that read `n`)."""
    stored_everywhere = [n.id for n in ast.walk(function) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)]
    sites: list[tuple[list[ast.stmt], int, list[ast.AST]]] = []
    for body in _bodies(function):
        for index, statement in enumerate(body):
            if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1
                    and isinstance(statement.targets[0], ast.Name) and _call_to(statement.value, *_HOISTABLE)):
                continue
            name = statement.targets[0].id
            if stored_everywhere.count(name) != 1:
                continue
            argument_names = {n.id for n in ast.walk(statement.value) if isinstance(n, ast.Name)} - set(_HOISTABLE)
            loops: list[ast.AST] = [loop for later in body[index + 1 :] for loop in [later, *_walk(later)]
                                    if isinstance(loop, _LOOPS) and _reads_each_time(loop, name)]
            if loops and all(not _changes(loop, argument_names) for loop in loops):
                sites.append((body, index, loops))
    return sites


_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)
_LOOPS = (ast.For, ast.AsyncFor, ast.While, *_COMPREHENSIONS)


def _each_time(loop: ast.AST) -> list[ast.AST]:
    """The parts of a loop evaluated on every pass: the body (a while loop's test too), or a
    comprehension's element, conditions and inner iterables (its first iterable is evaluated once)."""
    if isinstance(loop, (ast.For, ast.AsyncFor)):
        return list(loop.body)
    if isinstance(loop, ast.While):
        return [loop.test, *loop.body]
    if isinstance(loop, _COMPREHENSIONS):
        parts: list[ast.AST] = [loop.key, loop.value] if isinstance(loop, ast.DictComp) else [loop.elt]
        for index, generator in enumerate(loop.generators):
            parts += generator.ifs + ([generator.iter] if index else [])
        return parts
    return []


def _reads_each_time(loop: ast.AST, name: str) -> bool:
    """True when the loop reads `name` on every pass."""
    return any(_loaded(part, name) for part in _each_time(loop))


def _changes(loop: ast.AST, names: set[str]) -> bool:
    """True when the loop may change one of `names` (assigns it, calls its methods, stores into it)."""
    if _stored_names(loop) & names:
        return True
    for node in ast.walk(loop):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in names:
            return True
        if isinstance(node, (ast.Subscript, ast.Starred)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            return True
    return False


def repeated_in_loop(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """A `sorted(...)` or `len(...)` computed once before a loop (or comprehension) is recomputed on
    every pass that reads it."""
    function = subject.node
    count = len(_hoisted_sites(function))
    if not count:
        return None
    chosen = rng.randrange(count)
    clone = subject.copy()
    body, index, loops = _hoisted_sites(clone)[chosen]
    statement = body[index]
    assert isinstance(statement, ast.Assign) and isinstance(statement.targets[0], ast.Name)
    name, call = statement.targets[0].id, statement.value

    class Inline(ast.NodeTransformer):
        def visit_Name(self, node: ast.Name) -> ast.AST:
            return copy.deepcopy(call) if node.id == name and isinstance(node.ctx, ast.Load) else node

    for loop in loops:
        _inline_each_time(loop, Inline())
    if not _loaded(clone, name):
        body.pop(index)
    return Variant(clone, site=f"{_dotted(call.func)}(...) in the loop")  # type: ignore[attr-defined]


def _inline_each_time(loop: ast.AST, inline: ast.NodeTransformer) -> None:
    """Apply `inline` to the parts of `loop` evaluated on every pass (see `_each_time`)."""
    if isinstance(loop, (ast.For, ast.AsyncFor)):
        loop.body = [inline.visit(s) for s in loop.body]
    elif isinstance(loop, ast.While):
        loop.test = inline.visit(loop.test)
        loop.body = [inline.visit(s) for s in loop.body]
    elif isinstance(loop, _COMPREHENSIONS):
        if isinstance(loop, ast.DictComp):
            loop.key, loop.value = inline.visit(loop.key), inline.visit(loop.value)
        else:
            loop.elt = inline.visit(loop.elt)
        for index, generator in enumerate(loop.generators):
            generator.ifs = [inline.visit(c) for c in generator.ifs]
            if index:
                generator.iter = inline.visit(generator.iter)


def _dedupe_sites(function: FunctionNode) -> list[ast.AST]:
    """`if x not in seen: seen.add(x); out.append(x)` tests, and `list(dict.fromkeys(name))` calls."""
    sites: list[ast.AST] = []
    for node in _walk(function):
        if isinstance(node, ast.Call) and _call_to(node, "list") and len(node.args) == 1:
            inner = node.args[0]
            if isinstance(inner, ast.Call) and _call_to(inner, "dict.fromkeys") and len(inner.args) == 1 \
                    and isinstance(inner.args[0], ast.Name):
                sites.append(node)
        elif isinstance(node, ast.If) and _seen_set_test(node, function) is not None:
            sites.append(node)
    return sites


def _seen_set_test(node: ast.If, function: FunctionNode) -> tuple[str, str] | None:
    """(seen, out) when `node` is `if x not in seen:` whose body adds x to the set and appends it to a list."""
    test = node.test
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.NotIn)
            and isinstance(test.comparators[0], ast.Name)):
        return None
    seen, item = test.comparators[0].id, ast.dump(test.left)
    adds = outs = None
    for statement in node.body:
        call = statement.value if isinstance(statement, ast.Expr) else None
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and \
                isinstance(call.func.value, ast.Name) and len(call.args) == 1 and ast.dump(call.args[0]) == item:
            if call.func.attr == "add" and call.func.value.id == seen:
                adds = seen
            elif call.func.attr == "append":
                outs = call.func.value.id
    if adds is None or outs is None:
        return None
    set_assignments = [n for n in _walk(function) if isinstance(n, ast.Assign) and len(n.targets) == 1
                       and isinstance(n.targets[0], ast.Name) and n.targets[0].id == seen
                       and _call_to(n.value, "set") and not n.value.args]  # type: ignore[attr-defined]
    other_uses = len(_loaded(function, seen)) - 2  # the test and the add
    return (seen, outs) if len(set_assignments) == 1 and other_uses == 0 else None


def quadratic_dedupe(subject: FunctionSource, rng: random.Random) -> Variant | None:
    """De-duplication by a set (or `dict.fromkeys`) done by scanning the output list instead."""
    function = subject.node
    count = len(_dedupe_sites(function))
    if not count:
        return None
    chosen = rng.randrange(count)
    clone = subject.copy()
    node = _dedupe_sites(clone)[chosen]
    if isinstance(node, ast.Call):
        source = node.args[0].args[0]  # type: ignore[attr-defined]
        item, position = _fresh_name(clone, "item"), _fresh_name(clone, "index")
        earlier = ast.Subscript(copy.deepcopy(source), ast.Slice(None, ast.Name(position, ast.Load())), ast.Load())
        comprehension = ast.ListComp(
            ast.Name(item, ast.Load()),
            [ast.comprehension(ast.Tuple([ast.Name(position, ast.Store()), ast.Name(item, ast.Store())], ast.Store()),
                               ast.Call(ast.Name("enumerate", ast.Load()), [source], []),
                               [ast.Compare(ast.Name(item, ast.Load()), [ast.NotIn()], [earlier])], 0)],
        )
        _swap(clone, node, comprehension)
        return Variant(clone, site="dict.fromkeys -> scan of earlier items")
    assert isinstance(node, ast.If)
    names = _seen_set_test(node, clone)
    assert names is not None
    seen, out = names
    assert isinstance(node.test, ast.Compare)
    node.test.comparators = [ast.Name(out, ast.Load())]
    node.body = [s for s in node.body if not (
        isinstance(s, ast.Expr) and isinstance(s.value, ast.Call) and isinstance(s.value.func, ast.Attribute)
        and s.value.func.attr == "add" and isinstance(s.value.func.value, ast.Name) and s.value.func.value.id == seen)]
    for body in _bodies(clone):
        body[:] = [s for s in body if not (isinstance(s, ast.Assign) and isinstance(s.targets[0], ast.Name)
                                           and s.targets[0].id == seen)]
    return Variant(clone, site=f"not in {out} instead of a set")


def _swap(function: FunctionNode, old: ast.AST, new: ast.AST) -> None:
    class Swap(ast.NodeTransformer):
        def generic_visit(self, node: ast.AST) -> ast.AST:
            return new if node is old else super().generic_visit(node)

    Swap().visit(function)


KINDS: tuple[MutationKind, ...] = (
    MutationKind("off-by-one", "correctness", off_by_one, "stops one item early (an off-by-one error)"),
    MutationKind("flipped-comparison", "correctness", flipped_comparison,
                 "turns a comparison around, so it takes the wrong branch"),
    MutationKind("dropped-edge-case", "correctness", dropped_edge_case,
                 "drops a guard for an edge case that the chosen code handles"),
    MutationKind("wrong-return", "correctness", wrong_return, "returns the wrong value"),
    MutationKind("eval-of-input", "security", eval_of_input, "evaluates its input with eval"),
    MutationKind("yaml-load", "security", yaml_load, "loads YAML with the unsafe full loader"),
    MutationKind("pickle-of-input", "security", pickle_of_input, "unpickles data it does not trust"),
    MutationKind("shell-true", "security", shell_true, "runs its command through the shell (shell=True)"),
    MutationKind("weak-hash", "security", weak_hash, "hashes with MD5 or SHA-1, which are broken"),
    MutationKind("sql-by-formatting", "security", sql_by_formatting,
                 "builds its SQL by string formatting, open to injection"),
    MutationKind("verify-false", "security", verify_false, "turns off TLS certificate checks (verify=False)"),
    MutationKind("tempfile-mktemp", "security", temp_mktemp,
                 "names its temporary file with tempfile.mktemp, open to a race"),
    MutationKind("list-membership", "efficiency", list_membership,
                 "tests membership in a list inside a loop, a linear scan each time"),
    MutationKind("string-concat", "efficiency", string_concat,
                 "builds a string with += in a loop, copying it each time"),
    MutationKind("repeated-in-loop", "efficiency", repeated_in_loop,
                 "recomputes sorted(...) or len(...) on every pass of a loop"),
    MutationKind("quadratic-dedupe", "efficiency", quadratic_dedupe,
                 "removes duplicates by scanning the earlier items, in quadratic time"),
)
MUTATION_OBJECTIVES: tuple[str, ...] = ("correctness", "security", "efficiency")


def kinds_for(objective: str) -> tuple[MutationKind, ...]:
    """The mutation kinds of one objective, in a fixed order."""
    return tuple(kind for kind in KINDS if kind.objective == objective)
