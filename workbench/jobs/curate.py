"""Curation runners: analyse, dedupe and decontaminate the stored pairs as jobs."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.engine import Engine

from core.curation.analysis import analyse_stream
from core.curation.decontamination import DEFAULT_THRESHOLD, BenchSnippet, TopMatch, cdf, problem_text
from core.curation.decontamination import scan as decontamination_scan
from core.curation.dedupe import DEFAULT_NEAR_THRESHOLD, DedupeItem, find_clusters
from core.curation.rules import Condition
from stores.curation.analyses import (
    analysed_pages,
    stale_pairs,
    store_analyses,
    store_analysis_values,
    unanalysed_count,
)
from stores.curation.pairs import count_pairs, matching_ids, pair_instructions, set_status
from workbench.jobs.runner import JobHandle

ANALYSE_CHUNK = 100  # pairs per pool task: large enough to amortise bandit's manager, small for progress


@dataclass(frozen=True, slots=True)
class AnalyseProgress:
    """How far an analysis job is."""

    done: int
    total: int
    elapsed: float


def analyse_store(engine: Engine, *, workers: int = 2, chunk: int = ANALYSE_CHUNK) -> Iterator[AnalyseProgress]:
    """Analyse every pair whose stored analysis is missing or stale, as a job; yields progress."""
    total_pairs = count_pairs(engine)
    job = JobHandle.start(engine, "analyse", "Analyse pairs", {"workers": workers})
    started = time.monotonic()
    done = 0
    try:
        for results in analyse_stream(stale_pairs(engine, chunk), workers=workers):
            store_analyses(engine, results)
            done += len(results)
            job.progress(done, total_pairs)
            yield AnalyseProgress(done, total_pairs, time.monotonic() - started)
            if job.cancel_requested():
                job.finish("cancelled", done=done)
                return
    except GeneratorExit:
        job.finish("cancelled", done=done)  # the caller stopped iterating
        raise
    except BaseException as exc:
        job.finish("failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__, done=done)
        raise
    elapsed = time.monotonic() - started
    job.finish("done", done=done, summary={"analysed": done, "seconds": round(elapsed, 2),
                                           "pairs_per_second": round(done / elapsed, 1) if elapsed else None})


@dataclass(frozen=True, slots=True)
class DedupeSummary:
    """What a dedupe run found."""

    pairs: int
    clusters: int
    exact_clusters: int
    near_clusters: int
    duplicates: int
    unanalysed: int


def dedupe_store(engine: Engine, *, near_threshold: float | None = DEFAULT_NEAR_THRESHOLD) -> DedupeSummary:
    """Cluster analysed pairs (exact after normalisation, then near) and mark all but the first of each."""
    job = JobHandle.start(engine, "dedupe", "Dedupe pairs", {"near_threshold": near_threshold})
    try:
        items = [
            DedupeItem(pair_id, f"{chosen_hash}:{rejected_hash}", f"{chosen}\n\x00\n{rejected}")
            for page in analysed_pages(engine) for pair_id, chosen, rejected, chosen_hash, rejected_hash in page
        ]
        clusters = find_clusters(items, near_threshold=near_threshold)
        values: dict[int, dict[str, Any]] = {item.pair_id: {"dup_cluster": None, "duplicate": False} for item in items}
        for cluster in clusters:
            for member in cluster.members:
                values[member] = {"dup_cluster": cluster.representative, "duplicate": member != cluster.representative}
        store_analysis_values(engine, values)
    except BaseException as exc:
        job.finish("failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    summary = DedupeSummary(
        pairs=len(items), clusters=len(clusters),
        exact_clusters=sum(1 for c in clusters if c.kind == "exact"),
        near_clusters=sum(1 for c in clusters if c.kind == "near"),
        duplicates=sum(len(c.members) - 1 for c in clusters), unanalysed=unanalysed_count(engine),
    )
    job.finish("done", done=len(items), summary=asdict(summary))
    return summary


@dataclass(frozen=True, slots=True)
class DecontaminationProgress:
    """Snippets scanned so far."""

    done: int
    total: int


@dataclass(frozen=True, slots=True)
class DecontaminationSummary:
    """Outcome of a decontamination run: counts at the threshold and the top-1 CDF."""

    pairs: int
    sides: int
    bench_snippets: int
    threshold: float
    contaminated_pairs: int
    contaminated_sides: int
    flagged: int
    cdf: list[tuple[int, float]]
    cdf_sample: int
    seconds: float
    unanalysed: int
    bench_instructions: int = 0
    contaminated_instructions: int = 0


def decontaminate_store(
    engine: Engine, bench: Sequence[BenchSnippet], *, threshold: float = DEFAULT_THRESHOLD,
    flag: bool = True, workers: int = 2, sample: int = 1000, seed: int = 0, chunk: int = 200,
    instructions: Sequence[BenchSnippet] = (),
) -> Iterator[DecontaminationProgress | DecontaminationSummary]:
    """Score every side of every analysed pair against the benchmark; flag pending pairs >= threshold.

    Scores at or above the threshold are exact top-1 values; the CDF comes from exact top-1 scores
    (no floor) of a seeded sample of sides. With `instructions` (benchmark problem texts), each
    pair's problem text is scored too and `contamination` is the highest of its three scores.
    Yields progress, then the summary.
    """
    started = time.monotonic()
    job = JobHandle.start(engine, "decontaminate", "Decontaminate against CodePrefBench",
                          {"threshold": threshold, "bench_snippets": len(bench), "sample": sample})
    codes = [snippet.code for snippet in bench]
    try:
        ids: list[int] = []
        texts: list[str] = []
        for page in analysed_pages(engine):
            for pair_id, chosen, rejected, _c, _r in page:
                ids.append(pair_id)
                texts.extend((chosen, rejected))
        total = len(texts)
        scores: list[TopMatch] = []
        chunks = (texts[start:start + chunk] for start in range(0, total, chunk))
        for matches in decontamination_scan(chunks, codes, floor=threshold, workers=workers):
            scores.extend(matches)
            job.progress(len(scores), total)
            yield DecontaminationProgress(len(scores), total)
            if job.cancel_requested():
                job.finish("cancelled", done=len(scores))
                return
        problem_matches = _problem_matches(engine, ids, instructions, threshold, workers, chunk)
        values: dict[int, dict[str, Any]] = {}
        contaminated: list[int] = []
        for index, pair_id in enumerate(ids):
            chosen_match, rejected_match = scores[2 * index], scores[2 * index + 1]
            candidates = [(m, bench) for m in (chosen_match, rejected_match) if m.score is not None]
            problem_match = problem_matches.get(pair_id)
            if problem_match is not None and problem_match.score is not None:
                candidates.append((problem_match, instructions))
            best, source = max(candidates, key=lambda c: c[0].score or 0.0, default=(None, bench))
            values[pair_id] = {
                "contamination_chosen": chosen_match.score, "contamination_rejected": rejected_match.score,
                "contamination": best.score if best else None,
                "contamination_task": source[best.bench_index].task_id if best and best.bench_index is not None else None,
            }
            if best is not None:
                contaminated.append(pair_id)
        store_analysis_values(engine, values)
        flagged = 0
        if flag and contaminated:
            contaminated_ids = set(contaminated)
            pending = [pid for pid in matching_ids(engine, (Condition("status", "=", "pending"),)) if pid in contaminated_ids]
            flagged = set_status(engine, pending, "flag", label=f"decontaminate >= {threshold:g}")
        picked = random.Random(seed).sample(range(total), min(sample, total))
        sample_scores = [m.score for chunk_matches in decontamination_scan(
            [[texts[i] for i in picked]], codes, floor=0.0, workers=1) for m in chunk_matches]
    except GeneratorExit:
        job.finish("cancelled", done=len(scores))  # the caller stopped iterating
        raise
    except BaseException as exc:
        job.finish("failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    summary = DecontaminationSummary(
        pairs=len(ids), sides=total, bench_snippets=len(codes), threshold=threshold,
        contaminated_pairs=len(contaminated),
        contaminated_sides=sum(1 for m in scores if m.score is not None), flagged=flagged,
        cdf=cdf(sample_scores, floor=0.0), cdf_sample=len(sample_scores),
        seconds=round(time.monotonic() - started, 2), unanalysed=unanalysed_count(engine),
        bench_instructions=len(instructions),
        contaminated_instructions=sum(1 for m in problem_matches.values() if m.score is not None),
    )
    job.finish("done", done=total, summary=asdict(summary))
    yield summary


def _problem_matches(engine: Engine, pair_ids: Sequence[int], instructions: Sequence[BenchSnippet], threshold: float,
                     workers: int, chunk: int) -> dict[int, TopMatch]:
    """Top-1 match of each pair's problem text among the benchmark's, each distinct text scanned once."""
    if not instructions or not pair_ids:
        return {}
    problems = {pair_id: problem_text(text) for pair_id, text in pair_instructions(engine, pair_ids).items()}
    distinct = sorted(set(problems.values()))
    chunks = (distinct[start:start + chunk] for start in range(0, len(distinct), chunk))
    found = [m for matches in decontamination_scan(chunks, [s.code for s in instructions], floor=threshold,
                                                   workers=min(workers, max(1, len(distinct) // chunk)), strip=False)
             for m in matches]
    by_text = dict(zip(distinct, found))
    return {pair_id: by_text[text] for pair_id, text in problems.items()}
