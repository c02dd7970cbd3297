"""Static analysis of preference pairs: parse validity, radon metrics, bandit findings, diffs."""

from __future__ import annotations

import difflib
import hashlib
import logging
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.curation.stripping import parses, strip_comments

ANALYSIS_VERSION = "analysis-v1"
_WHITESPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class BanditFinding:
    """One bandit finding on one side of a pair."""

    test_id: str
    severity: str
    confidence: str
    line: int


@dataclass(frozen=True, slots=True)
class SideMetrics:
    """What the analysis knows about one side (chosen or rejected) of a pair."""

    parses: bool
    cyclomatic: float
    maintainability: float
    loc: int
    halstead_volume: float
    findings: tuple[BanditFinding, ...] = ()


@dataclass(frozen=True, slots=True)
class PairAnalysis:
    """The stored analysis of one pair; deltas are chosen minus rejected."""

    pair_id: int
    content_hash: str
    chosen: SideMetrics
    rejected: SideMetrics
    diff_size: int
    length_ratio: float
    identical: bool
    chosen_norm_hash: str
    rejected_norm_hash: str

    @property
    def deltas(self) -> dict[str, float]:
        """Chosen minus rejected for each metric and the bandit finding count."""
        return {
            "cc_delta": self.chosen.cyclomatic - self.rejected.cyclomatic,
            "mi_delta": self.chosen.maintainability - self.rejected.maintainability,
            "loc_delta": self.chosen.loc - self.rejected.loc,
            "volume_delta": self.chosen.halstead_volume - self.rejected.halstead_volume,
            "bandit_delta": len(self.chosen.findings) - len(self.rejected.findings),
        }


@dataclass(frozen=True, slots=True)
class PairCode:
    """The code of one pair, as analysis needs it."""

    pair_id: int
    chosen: str
    rejected: str
    content_hash: str = ""


@dataclass(slots=True)
class _Cache:
    bandit: dict[str, tuple[BanditFinding, ...]] = field(default_factory=dict)


def normalise(code: str) -> str:
    """Code without comments, docstrings or whitespace differences: the key of exact dedupe."""
    return _WHITESPACE.sub(" ", strip_comments(code)).strip()


def text_hash(text: str) -> str:
    """A short stable hash of a text."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).hexdigest()


def radon_metrics(code: str) -> tuple[float, float, int, float]:
    """Radon's total cyclomatic complexity (decision points + 1), maintainability index, logical LOC,
    Halstead volume."""
    from radon.metrics import mi_compute, mi_parameters

    try:
        # One pass: mi_parameters already computes volume, complexity and raw counts for the MI.
        volume, complexity, lloc, comments = mi_parameters(code, True)
        maintainability = float(mi_compute(volume, complexity, lloc, comments))
    except Exception:  # SyntaxError and radon's own failures on odd code: metrics unknown
        return 0.0, 0.0, sum(1 for line in code.splitlines() if line.strip()), 0.0
    return float(complexity), maintainability, int(lloc), float(volume)


class BanditRunner:
    """Runs bandit in-process on many snippets with one manager per batch, caching by content hash.

    Uses bandit's public API (`BanditManager.discover_files`, `run_tests`, `get_issue_list`): the
    snippets of a batch are written to a private temporary folder, one file each, and scanned as
    bandit scans a project.
    """

    def __init__(self) -> None:
        from bandit.core import config, manager

        logging.getLogger("bandit").setLevel(logging.CRITICAL)
        self._config = config.BanditConfig()
        self._manager_type = manager.BanditManager
        self._cache: dict[str, tuple[BanditFinding, ...]] = {}

    def scan(self, codes: Sequence[str]) -> list[tuple[BanditFinding, ...]]:
        """Bandit findings for each snippet, in order; snippets that do not parse have none."""
        todo = {text_hash(code): code for code in codes if code.strip()}
        missing = {key: code for key, code in todo.items() if key not in self._cache}
        if missing:
            found = self._run(missing)
            for name in missing:
                self._cache[name] = tuple(sorted(found[name], key=lambda f: (f.line, f.test_id)))
        return [self._cache.get(text_hash(code), ()) if code.strip() else () for code in codes]

    def _run(self, snippets: dict[str, str]) -> dict[str, list[BanditFinding]]:

        found: dict[str, list[BanditFinding]] = {name: [] for name in snippets}
        with tempfile.TemporaryDirectory(prefix="workbench-bandit-") as folder:
            paths = {}
            for name, code in snippets.items():
                path = Path(folder) / f"{name}.py"
                path.write_bytes(code.encode("utf-8", "surrogatepass"))
                paths[str(path)] = name
            manager = self._manager_type(self._config, "file", quiet=True)
            manager.discover_files(sorted(paths))
            manager.run_tests()
            for issue in manager.get_issue_list():
                found[paths[issue.fname]].append(
                    BanditFinding(issue.test_id, str(issue.severity), str(issue.confidence), int(issue.lineno))
                )
        return found


def _diff_size(chosen: str, rejected: str) -> int:
    matcher = difflib.SequenceMatcher(None, rejected.splitlines(), chosen.splitlines(), autojunk=False)
    return sum(
        max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    )


def changed_lines(before: str, after: str) -> tuple[set[int], set[int]]:
    """1-based line numbers that differ between two texts: (in before, in after)."""
    matcher = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(), autojunk=False)
    old: set[int] = set()
    new: set[int] = set()
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            old.update(range(i1 + 1, i2 + 1))
            new.update(range(j1 + 1, j2 + 1))
    return old, new


def _side(code: str, findings: tuple[BanditFinding, ...]) -> SideMetrics:
    ok = parses(code)
    cyclomatic, maintainability, loc, volume = radon_metrics(code) if ok else (0.0, 0.0, 0, 0.0)
    if not ok:
        loc = sum(1 for line in code.splitlines() if line.strip())
    return SideMetrics(ok, cyclomatic, maintainability, loc, volume, findings)


def analyse_pairs(pairs: Sequence[PairCode], bandit: BanditRunner | None = None) -> list[PairAnalysis]:
    """Analyse a chunk of pairs, running bandit once over both sides of every pair."""
    runner = bandit or BanditRunner()
    findings = runner.scan([code for pair in pairs for code in (pair.chosen, pair.rejected)])
    results = []
    for index, pair in enumerate(pairs):
        chosen_norm, rejected_norm = normalise(pair.chosen), normalise(pair.rejected)
        results.append(
            PairAnalysis(
                pair_id=pair.pair_id,
                content_hash=pair.content_hash,
                chosen=_side(pair.chosen, findings[2 * index]),
                rejected=_side(pair.rejected, findings[2 * index + 1]),
                diff_size=_diff_size(pair.chosen, pair.rejected),
                length_ratio=len(pair.chosen) / max(len(pair.rejected), 1),
                identical=chosen_norm == rejected_norm,
                chosen_norm_hash=text_hash(chosen_norm),
                rejected_norm_hash=text_hash(rejected_norm),
            )
        )
    return results


_WORKER_BANDIT: BanditRunner | None = None


def _analyse_chunk(pairs: list[PairCode]) -> list[PairAnalysis]:
    global _WORKER_BANDIT
    if _WORKER_BANDIT is None:
        _WORKER_BANDIT = BanditRunner()
    return analyse_pairs(pairs, _WORKER_BANDIT)


def analyse_stream(
    chunks: Iterable[list[PairCode]], *, workers: int = 2
) -> Iterator[list[PairAnalysis]]:
    """Analyse chunks of pairs in a process pool (in order); one process when workers is 1."""
    if workers <= 1:
        runner = BanditRunner()
        for chunk in chunks:
            yield analyse_pairs(chunk, runner)
        return
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    with context.Pool(workers) as pool:
        yield from pool.imap(_analyse_chunk, chunks)


def findings_to_json(findings: Iterable[BanditFinding]) -> list[dict[str, Any]]:
    """Findings as JSON-ready dicts."""
    return [
        {"test_id": f.test_id, "severity": f.severity, "confidence": f.confidence, "line": f.line}
        for f in findings
    ]
