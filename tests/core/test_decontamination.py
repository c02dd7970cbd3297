"""Decontamination: the pruned top-1 search equals a brute-force rapidfuzz pass."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from rapidfuzz import fuzz

from core.curation.decontamination import ContaminationIndex, cdf, load_benchmark_snippets, scan
from core.curation.stripping import strip_comments
from core.errors import BenchmarkError

BENCH = Path(__file__).resolve().parents[2] / ".." / "shared" / "codeprefbench"
needs_bench = pytest.mark.skipif(not BENCH.is_dir(), reason=f"CodePrefBench not found at {BENCH}")


def perturb(code: str, rng: random.Random, rate: float) -> str:
    chars = list(code)
    for _ in range(int(len(chars) * rate)):
        chars[rng.randrange(len(chars))] = rng.choice("xyz_ (\n")
    return "".join(chars)


def brute_force(text: str, codes: list[str]) -> float:
    return max(fuzz.ratio(text, code) for code in codes)


def test_exact_against_brute_force_on_hand_made_corpus() -> None:
    rng = random.Random(3)
    words = ["def", "return", "x", "y", "for", "in", "range", "if", "else", "print", "ünï", "(", ")", ":"]
    codes = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 60))) for _ in range(200)]
    index = ContaminationIndex(codes)
    queries = [perturb(rng.choice(codes), rng, rate) for rate in (0.0, 0.05, 0.2, 0.5) for _ in range(15)]
    queries += ["", "a", "é" * 40]
    for query in queries:
        expected = brute_force(query, codes)
        for floor in (0.0, 50.0, 80.0):
            match = index.top1(query, floor)
            if expected >= floor:
                assert match.score == pytest.approx(expected, abs=1e-9), (query, floor)
                assert fuzz.ratio(query, codes[match.bench_index]) == pytest.approx(expected)
            else:
                assert match.score is None


@needs_bench
def test_exact_against_brute_force_on_codeprefbench_sample() -> None:
    bench = load_benchmark_snippets(BENCH)
    assert len(bench) == 2728
    codes = [snippet.code for snippet in bench]
    rng = random.Random(0)
    queries = [perturb(rng.choice(codes), rng, rate) for rate in (0.02, 0.1, 0.15, 0.3) for _ in range(10)]
    queries += ["def add(a, b):\n    return a + b\n", "# only a comment\n"]
    results = [m for chunk in scan([queries], codes, floor=80.0, workers=1) for m in chunk]
    for query, match in zip(queries, results):
        expected = brute_force(strip_comments(query), codes)
        if expected >= 80:
            assert match.score == pytest.approx(expected, abs=1e-9)
        else:
            assert match.score is None
    assert any(m.score is not None for m in results) and any(m.score is None for m in results)


def test_benchmark_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BenchmarkError, match="does not exist"):
        load_benchmark_snippets(tmp_path / "missing")
    with pytest.raises(BenchmarkError, match="is missing"):
        load_benchmark_snippets(tmp_path)
    monkeypatch.delenv("WORKBENCH_BENCH", raising=False)
    with pytest.raises(BenchmarkError, match="pass --bench DIR"):
        load_benchmark_snippets(None)


def test_cdf_counts_below_floor_as_low() -> None:
    points = dict(cdf([None, 90.0, 60.0, 100.0], floor=50.0, step=10))
    assert points[50] == 0.25 and points[60] == 0.5 and points[90] == 0.75 and points[100] == 1.0
