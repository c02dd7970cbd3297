"""Rule-based evolution without a critic (issue #18, point 1): pairs from mined Python functions.

CodeFavor's Critic-Evol (arXiv 2410.03837, section 3.2) has a critic improve a draft; with no critic
at hand, the same kind of pair comes from the other direction: a mined function is taken as the
better code and a rule (`core.synthesis.mutation_kinds`) makes it worse on one objective. The
instruction is written from the function's signature and docstring, the criteria are the
objective's (the paper's four, `core.evaluation.protocols.CODEFAVOR_CRITERIA`). A variant is kept
only if it parses and differs from the original; a security variant also has to add a bandit finding. A second source,
commit-signal pairs, takes mined commits whose change to a function removes a bandit finding and
prefers the new code.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import inspect
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from core.curation.analysis import BanditFinding, BanditRunner, normalise
from core.evaluation.protocols import CODEFAVOR_CRITERIA as CRITERIA
from core.synthesis.mutation_kinds import (
    MUTATION_OBJECTIVES,
    FunctionNode,
    FunctionSource,
    MutationKind,
    Variant,
    kinds_for,
)

MUTATION_SOURCE = "mutation"
COMMIT_SIGNAL_SOURCE = "commit-signal"
MAX_FUNCTION_LINES = 80


@dataclass(frozen=True)
class MinedFunction:
    """A function of a mined file: its qualified name, its node, the imports it uses, its instruction."""

    qualname: str
    source: FunctionSource = field(repr=False, compare=False)  # the function without its docstring
    imports: tuple[ast.stmt, ...] = field(repr=False, compare=False)
    instruction: str
    code: str  # the imports it uses and the function, docstring and comments left out

    @property
    def code_hash(self) -> str:
        """Identity of the function's code (the same function in many commits is one function)."""
        return hashlib.sha256(self.code.encode("utf-8", "surrogatepass")).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class MutationPair:
    """A pair made by one rule: the original (chosen) against its variant (rejected)."""

    objective: str
    kind: str
    site: str
    function: str
    instruction: str
    criteria: str
    chosen: str
    rejected: str
    feedback: str
    added_findings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SignalPair:
    """A commit's change to a function that removes a bandit finding: the new code is chosen."""

    function: str
    instruction: str
    criteria: str
    chosen: str
    rejected: str
    feedback: str
    removed_findings: tuple[str, ...]


@dataclass
class MutationCounts:
    """What a mutation run saw and made, and what it dropped and why."""

    files: int = 0
    unparsable_files: int = 0
    functions: int = 0
    repeated_functions: int = 0
    skipped_functions: int = 0  # too long, or no statement besides the docstring
    pairs: Counter[str] = field(default_factory=Counter)  # by kind
    dropped: Counter[str] = field(default_factory=Counter)  # by reason

    def snapshot(self) -> dict[str, Any]:
        """Plain values for a job summary."""
        return {
            "files": self.files, "unparsable_files": self.unparsable_files, "functions": self.functions,
            "repeated_functions": self.repeated_functions, "skipped_functions": self.skipped_functions,
            "pairs": sum(self.pairs.values()), "pairs_by_kind": dict(sorted(self.pairs.items())),
            "dropped": sum(self.dropped.values()), "dropped_by_reason": dict(sorted(self.dropped.items())),
        }


# ---- functions of a file ---------------------------------------------------------------------------

def _bound_names(statement: ast.Import | ast.ImportFrom) -> set[str]:
    return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}


def _without_docstring(node: FunctionNode) -> FunctionNode:
    """A shallow copy of the function without its docstring (enough for `ast.unparse`, which reads only)."""
    first = node.body[0] if node.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        bare = copy.copy(node)
        bare.body = node.body[1:] or [ast.Pass()]
        return bare
    return node


def function_code(node: FunctionNode, imports: Sequence[ast.stmt], extra_modules: Sequence[str] = ()) -> str:
    """The function's source as a pair shows it: the imports it needs, then the function (no docstring)."""
    bound = {name for statement in imports if isinstance(statement, (ast.Import, ast.ImportFrom))
             for name in _bound_names(statement)}
    lines = [ast.unparse(statement) for statement in imports]
    lines += [f"import {module}" for module in extra_modules if module not in bound]
    # New statements (a rewritten loop, an added assignment) need line numbers before unparse.
    body = ast.unparse(ast.fix_missing_locations(_without_docstring(node)))
    return ("\n".join(sorted(set(lines), key=lines.index)) + "\n\n\n" if lines else "") + body + "\n"


def signature(node: FunctionNode) -> str:
    """`def name(args) -> returns` (async too), without decorators or body."""
    stub = copy.copy(node)
    stub.body, stub.decorator_list = [ast.Expr(ast.Constant(...))], []
    return ast.unparse(stub).split("\n")[0].removesuffix(": ...").removesuffix(":")


def instruction_for(node: FunctionNode, class_name: str | None = None) -> str:
    """The coding instruction a function answers: its signature and, when it has one, its docstring."""
    owner = f" (a method of class `{class_name}`)" if class_name else ""
    lines = [f"Write a Python function `{signature(node)}`{owner}."]
    docstring = ast.get_docstring(node)
    if docstring:
        lines += ["", inspect.cleandoc(docstring)]
    return "\n".join(lines)


def extract_functions(source: str, *, max_lines: int = MAX_FUNCTION_LINES) -> tuple[list[MinedFunction], int]:
    """Top-level functions and methods of top-level classes, and how many were skipped (too long or empty).

    Raises SyntaxError (or ValueError for NUL bytes) when the source does not parse.
    """
    tree = ast.parse(source)
    imports = [s for s in tree.body if isinstance(s, (ast.Import, ast.ImportFrom))]
    found: list[tuple[FunctionNode, str | None]] = []
    for statement in tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.append((statement, None))
        elif isinstance(statement, ast.ClassDef):
            found += [(s, statement.name) for s in statement.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
    functions, skipped = [], 0
    for node, class_name in found:
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        bare = _without_docstring(node)
        if length > max_lines or (len(bare.body) == 1 and isinstance(bare.body[0], ast.Pass)):
            skipped += 1
            continue
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        used = tuple(s for s in imports if isinstance(s, (ast.Import, ast.ImportFrom)) and _bound_names(s) & names)
        qualname = f"{class_name}.{node.name}" if class_name else node.name
        function_source = FunctionSource(ast.unparse(bare))
        functions.append(MinedFunction(qualname, function_source, used, instruction_for(node, class_name),
                                       function_code(function_source.node, used)))
    return functions, skipped


# ---- mutation --------------------------------------------------------------------------------------

def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class _Candidate:
    kind: MutationKind
    variant: Variant
    code: str


def _candidates(function: MinedFunction, objective: str, seed: int, counts: MutationCounts) -> list[_Candidate]:
    """Variants of every applicable kind, in a seeded order, that parse and differ from the original."""
    order = list(kinds_for(objective))
    random.Random(f"{seed}:{objective}:{function.code_hash}").shuffle(order)
    found = []
    for kind in order:
        variant = kind.apply(function.source, random.Random(f"{seed}:{kind.name}:{function.code_hash}"))
        if variant is None:
            continue
        code = function_code(variant.function, function.imports, variant.imports)
        if not _parses(code):
            counts.dropped[f"{kind.name}: does not parse"] += 1
        elif code == function.code:  # both come from ast.unparse: no comments, one layout
            counts.dropped[f"{kind.name}: same as the original"] += 1
        else:
            found.append(_Candidate(kind, variant, code))
    return found


# Low-severity findings (assert statements, importing subprocess or pickle) say little about how
# secure a function is: only medium and high ones make or break a security pair.
COUNTED_SEVERITIES = ("MEDIUM", "HIGH")


def _added_findings(before: Sequence[BanditFinding], after: Sequence[BanditFinding]) -> tuple[str, ...]:
    """Medium or high bandit test ids found more often in `after` than in `before` (one per extra finding)."""
    def counted(findings: Sequence[BanditFinding]) -> Counter[str]:
        return Counter(f.test_id for f in findings if f.severity.upper() in COUNTED_SEVERITIES)

    return tuple(sorted((counted(after) - counted(before)).elements()))


def _pair(function: MinedFunction, candidate: _Candidate, added: tuple[str, ...] = ()) -> MutationPair:
    kind = candidate.kind
    feedback = f"The rejected code {kind.weakness}; the chosen code does not."
    if added:
        feedback = f"The rejected code {kind.weakness} (bandit {', '.join(sorted(set(added)))}); the chosen code does not."
    return MutationPair(
        objective=kind.objective, kind=kind.name, site=candidate.variant.site, function=function.qualname,
        instruction=function.instruction, criteria=CRITERIA[kind.objective], chosen=function.code,
        rejected=candidate.code, feedback=feedback, added_findings=added,
    )


def mutate_source(
    source: str,
    *,
    objectives: Sequence[str] = MUTATION_OBJECTIVES,
    seed: int = 0,
    bandit: BanditRunner,
    counts: MutationCounts,
    seen: set[str] | None = None,
) -> list[MutationPair]:
    """At most one pair per function and objective from one Python file; the same seed gives the same pairs.

    Functions whose code is in `seen` (already mutated in this run) are skipped and added otherwise.
    Security variants are scanned with bandit in one batch per file.
    """
    counts.files += 1
    try:
        functions, skipped = extract_functions(source)
    except (SyntaxError, ValueError, RecursionError):
        counts.unparsable_files += 1
        return []
    counts.skipped_functions += skipped
    pairs: list[MutationPair] = []
    security: list[tuple[MinedFunction, list[_Candidate]]] = []
    for function in functions:
        if seen is not None:
            if function.code_hash in seen:
                counts.repeated_functions += 1
                continue
            seen.add(function.code_hash)
        counts.functions += 1
        for objective in objectives:
            candidates = _candidates(function, objective, seed, counts)
            if objective == "security":
                if candidates:
                    security.append((function, candidates))
            elif candidates:
                pairs.append(_pair(function, candidates[0]))
    if security:
        codes = [code for function, candidates in security for code in (function.code, *(c.code for c in candidates))]
        findings = dict(zip(codes, bandit.scan(codes)))
        for function, candidates in security:
            for candidate in candidates:
                added = _added_findings(findings[function.code], findings[candidate.code])
                if added:
                    pairs.append(_pair(function, candidate, added))
                    break
                counts.dropped[f"{candidate.kind.name}: no new bandit finding"] += 1
    for pair in pairs:
        counts.pairs[pair.kind] += 1
    order = {objective: index for index, objective in enumerate(MUTATION_OBJECTIVES)}
    return sorted(pairs, key=lambda p: (order.get(p.objective, 9), p.function))


# ---- commit signal ---------------------------------------------------------------------------------

def commit_signal_pairs(old_source: str, new_source: str, *, bandit: BanditRunner) -> list[SignalPair]:
    """Functions a commit changed so that bandit finds less and nothing new: the new version is chosen.

    Functions are matched by qualified name; files that do not parse on either side give nothing.
    """
    try:
        old_functions, _ = extract_functions(old_source)
        new_functions, _ = extract_functions(new_source)
    except (SyntaxError, ValueError, RecursionError):
        return []
    old_by_name = {f.qualname: f for f in old_functions}
    changed = [(old_by_name[f.qualname], f) for f in new_functions
               if f.qualname in old_by_name and normalise(old_by_name[f.qualname].code) != normalise(f.code)]
    if not changed:
        return []
    codes = [code for old, new in changed for code in (old.code, new.code)]
    findings = dict(zip(codes, bandit.scan(codes)))
    pairs = []
    for old, new in changed:
        removed = _added_findings(findings[new.code], findings[old.code])
        introduced = _added_findings(findings[old.code], findings[new.code])
        if removed and not introduced:
            ids = ", ".join(sorted(set(removed)))
            pairs.append(SignalPair(
                function=new.qualname, instruction=new.instruction, criteria=CRITERIA["security"], chosen=new.code,
                rejected=old.code, removed_findings=removed,
                feedback=f"The rejected code has a weakness bandit reports ({ids}) that the chosen code fixes.",
            ))
    return pairs


# ---- what a run reports ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class OfflineProgress:
    """Counters of a mutation or commit-signal run after a batch of commit records."""

    job_id: int
    done: int
    total: int
    counters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OfflineFinished:
    """The run ended (done or cancelled) with its counters: pairs stored and pairs already stored."""

    job_id: int
    state: str
    done: int
    total: int
    counters: dict[str, Any]
    error: str | None = None
