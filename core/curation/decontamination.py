"""Decontamination against CodePrefBench: exact top-1 Levenshtein ratio of each snippet to any
benchmark code, comments stripped on both sides (the paper's Appendix A.5); and of each pair's
problem (the code block of its instruction, else the instruction) to any benchmark task's problem,
so a pair made from a benchmark problem (HumanEval and MBPP problems are CodePrefBench's
correctness and efficiency tasks) is caught even when neither of its codes resembles the
benchmark's.

Exact and fast: rapidfuzz's `fuzz.ratio` is 100 * (1 - indel / (len1 + len2)), and the indel
distance is at least len1 + len2 - 2 * sum over characters of min(count1, count2). That bound
(computed per character bin with numpy) caps the score a benchmark snippet can reach, so
candidates are tried best bound first and the search stops once no bound beats the best score.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from core.curation.stripping import strip_comments
from core.evaluation.bench import BENCH_ENV_VAR, Benchmark, load_benchmark, resolve_bench_dir

__all__ = ["BENCH_ENV_VAR"]
DEFAULT_THRESHOLD = 80.0
DEFAULT_FLOOR = 50.0
_BINS = 129  # one per ASCII character plus one for everything else: merging bins keeps the bound valid
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class BenchSnippet:
    """One benchmark code (comments stripped) and where it comes from."""

    task_id: str
    objective: str
    code: str


@dataclass(frozen=True, slots=True)
class TopMatch:
    """Top-1 similarity of one snippet: exact when >= the floor, else None (known to be below)."""

    score: float | None
    bench_index: int | None


def bench_snippets(benchmark: Benchmark) -> list[BenchSnippet]:
    """Every choice of every task of a loaded (validated) benchmark, comments stripped."""
    return [
        BenchSnippet(task.uid or task.task_id, objective, strip_comments(choice))
        for objective, tasks in benchmark.tasks.items()
        for task in tasks
        for choice in task.choices
    ]


def load_benchmark_snippets(bench: str | os.PathLike[str] | None) -> list[BenchSnippet]:
    """Load CodePrefBench from `--bench` or WORKBENCH_BENCH, through the evaluation stage's loader."""
    return bench_snippets(load_benchmark(resolve_bench_dir(bench)))


_FENCED = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n(.*?)^[ \t]*\1[ \t]*$", re.MULTILINE | re.DOTALL)


def problem_text(instruction: str) -> str:
    """The problem an instruction poses: its fenced code blocks (the prompt of a HumanEval- or
    MBPP-style task) or, without any, the whole text; whitespace runs become one space."""
    blocks = [match.group(2) for match in _FENCED.finditer(instruction)]
    return " ".join(("\n".join(blocks) if blocks else instruction).split())


def instruction_snippets(benchmark: Benchmark) -> list[BenchSnippet]:
    """The problem text of every distinct task instruction of a loaded benchmark."""
    seen: dict[str, BenchSnippet] = {}
    for objective, tasks in benchmark.tasks.items():
        for task in tasks:
            text = problem_text(task.instruction)
            if text and text not in seen:
                seen[text] = BenchSnippet(task.uid or task.task_id, objective, text)
    return list(seen.values())


def load_benchmark_texts(bench: str | os.PathLike[str] | None) -> tuple[list[BenchSnippet], list[BenchSnippet]]:
    """CodePrefBench's codes and its tasks' problem texts, loaded once."""
    benchmark = load_benchmark(resolve_bench_dir(bench))
    return bench_snippets(benchmark), instruction_snippets(benchmark)


def char_histogram(text: str) -> np.ndarray:
    """Character counts in the bins the bound uses."""
    import numpy as np  # deferred: numpy costs a tenth of a second at start-up

    codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    return np.bincount(np.minimum(codes, _BINS - 1), minlength=_BINS).astype(np.int32)


class ContaminationIndex:
    """Benchmark snippets prepared for exact top-1 search."""

    def __init__(self, codes: Sequence[str]) -> None:
        import numpy as np  # deferred: numpy costs a tenth of a second at start-up

        self.codes = list(codes)
        self.lengths = np.array([len(c) for c in self.codes], dtype=np.int64)
        self.histograms = np.stack([char_histogram(c) for c in self.codes]) if self.codes else np.zeros((0, _BINS), np.int32)

    def top1(self, text: str, floor: float = DEFAULT_FLOOR) -> TopMatch:
        """Exact best `fuzz.ratio` of `text` (already comment-stripped) when it is >= `floor`."""
        import numpy as np
        from rapidfuzz.distance import Indel

        if not self.codes:
            return TopMatch(None, None)
        common = np.minimum(self.histograms, char_histogram(text)).sum(axis=1)
        totals = self.lengths + len(text)
        with np.errstate(divide="ignore", invalid="ignore"):
            bounds = np.where(totals > 0, 200.0 * common / np.maximum(totals, 1), 100.0)
        candidates = np.flatnonzero(bounds >= floor - _EPSILON)
        if candidates.size == 0:
            return TopMatch(None, None)
        order = candidates[np.argsort(-bounds[candidates], kind="stable")]
        best_score, best_index = -1.0, None
        cutoff = floor / 100.0
        for index in order:
            if bounds[index] < max(best_score, floor) - _EPSILON:
                break
            # normalized_similarity with a cutoff lets rapidfuzz stop early on hopeless candidates
            similarity = Indel.normalized_similarity(text, self.codes[index], score_cutoff=cutoff)
            score = similarity * 100.0
            if score > best_score and (similarity > 0 or cutoff == 0):
                best_score, best_index = score, int(index)
                cutoff = similarity
        if best_index is None or best_score < floor:
            return TopMatch(None, None)
        return TopMatch(best_score, best_index)


_WORKER_INDEX: ContaminationIndex | None = None


def _init_worker(codes: list[str]) -> None:
    global _WORKER_INDEX
    _WORKER_INDEX = ContaminationIndex(codes)


def _scan_chunk(args: tuple[list[str], float, bool]) -> list[TopMatch]:
    texts, floor, strip = args
    assert _WORKER_INDEX is not None
    return [_WORKER_INDEX.top1(strip_comments(t) if strip else t, floor) for t in texts]


def scan(
    chunks: Iterable[list[str]], bench_codes: Sequence[str], *, floor: float = DEFAULT_FLOOR,
    workers: int = 2, strip: bool = True,
) -> Iterator[list[TopMatch]]:
    """Top-1 matches for chunks of snippets (stripping their comments first), in order, in a pool."""
    if workers <= 1:
        _init_worker(list(bench_codes))
        for chunk in chunks:
            yield _scan_chunk((chunk, floor, strip))
        return
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    with context.Pool(workers, initializer=_init_worker, initargs=(list(bench_codes),)) as pool:
        yield from pool.imap(_scan_chunk, ((chunk, floor, strip) for chunk in chunks))


def cdf(scores: Sequence[float | None], *, floor: float = DEFAULT_FLOOR, step: int = 5) -> list[tuple[int, float]]:
    """(x, fraction of snippets with top-1 <= x) for x from the floor to 100; below-floor counts as <= floor."""
    import numpy as np

    total = len(scores)
    if not total:
        return []
    known = np.array([s for s in scores if s is not None], dtype=float)
    below = total - known.size
    points = []
    for x in range(int(floor), 101, step):
        points.append((x, float((below + np.count_nonzero(known <= x)) / total)))
    return points


def cdf_csv(points: Sequence[tuple[int, float]]) -> str:
    """The CDF as CSV: similarity, fraction of snippets at or below it."""
    return "similarity,fraction_at_or_below\n" + "".join(f"{x},{fraction:.6f}\n" for x, fraction in points)


def cdf_svg(points: Sequence[tuple[int, float]], threshold: float = DEFAULT_THRESHOLD) -> str:
    """The CDF as a small standalone SVG line chart (the paper's Figure 16), threshold marked."""
    width, height, margin = 480, 320, 40
    plot_w, plot_h = width - 2 * margin, height - 2 * margin

    def xy(x: float, y: float) -> str:
        return f"{margin + plot_w * x / 100:.1f},{margin + plot_h * (1 - y):.1f}"

    line = " ".join(xy(x, y) for x, y in points)
    ticks = "".join(
        f'<text x="{margin + plot_w * t / 100:.1f}" y="{height - margin + 16}" font-size="11" text-anchor="middle">{t}</text>'
        for t in range(0, 101, 20))
    marker_x = margin + plot_w * threshold / 100
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<rect x="{margin}" y="{margin}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#888"/>'
        f'<line x1="{marker_x:.1f}" y1="{margin}" x2="{marker_x:.1f}" y2="{height - margin}" stroke="#c33" stroke-dasharray="4"/>'
        f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="2"/>{ticks}'
        f'<text x="{width / 2}" y="{height - 6}" font-size="12" text-anchor="middle">top-1 similarity to CodePrefBench</text>'
        f'<text x="12" y="{margin - 12}" font-size="12">fraction of snippets (CDF)</text></svg>\n'
    )
