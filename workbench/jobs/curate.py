"""Curation runners: analyse, dedupe and decontaminate the stored pairs as jobs."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from core.curation.analysis import PairCode, analyse_stream
from core.curation.decontamination import (
    DEFAULT_THRESHOLD,
    BenchSnippet,
    TopMatch,
    cdf,
    load_benchmark_texts,
    problem_text,
)
from core.curation.decontamination import scan as decontamination_scan
from core.curation.dedupe import DEFAULT_NEAR_THRESHOLD, DedupeItem, find_clusters
from core.curation.rules import Condition
from stores.claims import (
    add_work_items,
    claim_work_items,
    clear_work_items,
    complete_work_items,
    has_claimable_work,
    release_work_items,
    work_counts,
)
from stores.curation.analyses import (
    analysed_pages,
    pair_codes,
    stale_pair_ids,
    store_analyses,
    store_analysis_values,
    unanalysed_count,
)
from stores.curation.pairs import matching_ids, pair_instructions, set_status
from workbench.jobs.registry import JobKind, register
from workbench.jobs.runner import JobContext, drain, run_foreground, wait_for_other_workers

ANALYSE_CHUNK = 100  # pairs per pool task: large enough to amortise bandit's manager, small for progress


# ---- analyse ----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AnalyseParams:
    """Analysis with `workers` processes, `chunk` pairs per task; then dedupe when `dedupe` is set."""

    workers: int = 2
    chunk: int = ANALYSE_CHUNK
    dedupe: bool = False


@dataclass(frozen=True, slots=True)
class AnalyseSummary:
    """How many stale pairs the job found and analysed (by every worker on it)."""

    total: int = 0
    analysed: int = 0
    seconds: float = 0.0
    pairs_per_second: float | None = None


@dataclass(frozen=True, slots=True)
class AnalyseProgress:
    """How far an analysis job is."""

    done: int
    total: int
    elapsed: float


def _analyse_scope(job_id: int) -> str:
    return f"analyse:{job_id}"


def run_analyse(ctx: JobContext, params: AnalyseParams) -> Generator[AnalyseProgress, None, AnalyseSummary]:
    """Analyse every pair whose stored analysis is missing or stale; other workers may join and share the pairs."""
    engine, scope = ctx.engine, _analyse_scope(ctx.job_id)
    started = time.monotonic()
    if ctx.is_owner:
        add_work_items(engine, scope, [str(pair_id) for pair_id in stale_pair_ids(engine)])

    def counts() -> tuple[int, int, int]:
        found = work_counts(engine, scope, ctx.lease_s)
        return found["pending"], found["claimed"], found["done"]

    pending, claimed, done = counts()
    total = pending + claimed + done
    summary = AnalyseSummary(total=total, analysed=done)
    ctx.progress(done, total, summary, force=True)
    try:
        while True:
            for analysed in _analyse_claimed(ctx, scope, params):
                done = counts()[2]
                elapsed = time.monotonic() - started
                summary = AnalyseSummary(total=total, analysed=done, seconds=round(elapsed, 2),
                                         pairs_per_second=round(done / elapsed, 1) if elapsed else None)
                ctx.progress(done, total, summary)
                yield AnalyseProgress(done, total, elapsed)
            if not ctx.is_owner or not wait_for_other_workers(ctx, lambda: counts()[:2]):
                break
    finally:
        release_work_items(engine, scope, ctx.worker_id)
    if ctx.is_owner:
        clear_work_items(engine, scope)
        if params.dedupe:
            drain(ctx.run_child(DEDUPE.name, DedupeParams()))
    elapsed = time.monotonic() - started
    return AnalyseSummary(total=total, analysed=summary.analysed, seconds=round(elapsed, 2),
                          pairs_per_second=round(summary.analysed / elapsed, 1) if elapsed else None)


def _analyse_claimed(ctx: JobContext, scope: str, params: AnalyseParams) -> Iterator[int]:
    """Claim chunks of the scope's pairs and analyse them; yield how many each chunk had."""
    # The pool reads its input ahead in a thread: the semaphore keeps this worker from claiming
    # more chunks than it has processes (plus one), so that other workers find pairs left.
    in_hand = threading.Semaphore(max(params.workers, 1) + 1)
    stop = threading.Event()

    def chunks() -> Iterator[list[PairCode]]:
        while True:
            in_hand.acquire()
            if stop.is_set() or ctx.should_stop():
                return
            keys = claim_work_items(ctx.engine, scope, ctx.worker_id, params.chunk, ctx.lease_s)
            if not keys:
                return
            codes = pair_codes(ctx.engine, [int(key) for key in keys])
            missing = set(keys) - {str(code.pair_id) for code in codes}
            complete_work_items(ctx.engine, scope, sorted(missing), ctx.worker_id)  # pairs deleted meanwhile
            if codes:
                yield codes
            else:
                in_hand.release()

    try:
        for results in analyse_stream(chunks(), workers=params.workers):
            store_analyses(ctx.engine, results)
            complete_work_items(ctx.engine, scope, [str(result.pair_id) for result in results], ctx.worker_id)
            in_hand.release()
            yield len(results)
            ctx.check()
    finally:
        stop.set()
        in_hand.release()


def _analyse_has_work(engine: Engine, job_id: int, _params: AnalyseParams, lease_s: float) -> bool:
    return has_claimable_work(engine, _analyse_scope(job_id), lease_s)


ANALYSE = register(JobKind(
    name="analyse", params_type=AnalyseParams, summary_type=AnalyseSummary, run=run_analyse,
    title=lambda params: "Analyse pairs" + (" and mark duplicates" if params.dedupe else ""), shared=True,
    has_work=_analyse_has_work,
    resume_hint="re-run it to resume: analysed pairs are skipped (workbench jobs resume {job_id})",
))


def analyse_store(engine: Engine, *, workers: int = 2, chunk: int = ANALYSE_CHUNK
                  ) -> Generator[AnalyseProgress, None, None]:
    """Analyse every pair whose stored analysis is missing or stale, as a job in the foreground; yields progress."""
    events = run_foreground(engine, ANALYSE.name, AnalyseParams(workers=workers, chunk=chunk))
    try:  # a caller that stops iterating ends the job cancelled, at once
        for event in events:
            if isinstance(event, AnalyseProgress):
                yield event
    finally:
        events.close()


# ---- dedupe -----------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DedupeParams:
    """Near-duplicate ratio threshold (0-100), or None for exact duplicates only."""

    near_threshold: float | None = DEFAULT_NEAR_THRESHOLD


@dataclass(frozen=True, slots=True)
class DedupeSummary:
    """What a dedupe run found."""

    pairs: int
    clusters: int
    exact_clusters: int
    near_clusters: int
    duplicates: int
    unanalysed: int


@dataclass(frozen=True, slots=True)
class DedupeLoaded:
    """The analysed pairs are read; clustering starts."""

    pairs: int


def run_dedupe(ctx: JobContext, params: DedupeParams) -> Generator[DedupeLoaded, None, DedupeSummary]:
    """Cluster analysed pairs (exact after normalisation, then near) and mark all but the first of each."""
    items = [
        DedupeItem(pair_id, f"{chosen_hash}:{rejected_hash}", f"{chosen}\n\x00\n{rejected}")
        for page in analysed_pages(ctx.engine) for pair_id, chosen, rejected, chosen_hash, rejected_hash in page
    ]
    ctx.progress(0, len(items), DedupeSummary(pairs=len(items), clusters=0, exact_clusters=0, near_clusters=0,
                                              duplicates=0, unanalysed=0), force=True)
    yield DedupeLoaded(len(items))
    ctx.check()
    clusters = find_clusters(items, near_threshold=params.near_threshold)
    ctx.check()
    values: dict[int, dict[str, Any]] = {item.pair_id: {"dup_cluster": None, "duplicate": False} for item in items}
    for cluster in clusters:
        for member in cluster.members:
            values[member] = {"dup_cluster": cluster.representative, "duplicate": member != cluster.representative}
    store_analysis_values(ctx.engine, values)
    summary = DedupeSummary(
        pairs=len(items), clusters=len(clusters),
        exact_clusters=sum(1 for c in clusters if c.kind == "exact"),
        near_clusters=sum(1 for c in clusters if c.kind == "near"),
        duplicates=sum(len(c.members) - 1 for c in clusters), unanalysed=unanalysed_count(ctx.engine),
    )
    ctx.progress(len(items), len(items), summary, force=True)
    return summary


DEDUPE = register(JobKind(
    name="dedupe", params_type=DedupeParams, summary_type=DedupeSummary, run=run_dedupe,
    title=lambda params: "Dedupe pairs",
))


def dedupe_store(engine: Engine, *, near_threshold: float | None = DEFAULT_NEAR_THRESHOLD) -> DedupeSummary:
    """Cluster analysed pairs and mark duplicates, as a job in the foreground; return what it found."""
    info = drain(run_foreground(engine, DEDUPE.name, DedupeParams(near_threshold)))
    summary = DEDUPE.load_summary(info.summary)
    assert isinstance(summary, DedupeSummary)
    return summary


# ---- decontaminate ----------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DecontaminateParams:
    """Score pair sides against CodePrefBench (from `bench_dir`, or these `snippets`), and each pair's problem
    against its tasks' problems (from `bench_dir`, or these `instructions`); flag at `threshold`."""

    bench_dir: str | None = None
    snippets: tuple[BenchSnippet, ...] = ()
    instructions: tuple[BenchSnippet, ...] = ()
    threshold: float = DEFAULT_THRESHOLD
    flag: bool = True
    workers: int = 2
    sample: int = 1000
    seed: int = 0
    chunk: int = 200


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


def run_decontaminate(ctx: JobContext, params: DecontaminateParams
                      ) -> Generator[DecontaminationProgress | DecontaminationSummary, None, DecontaminationSummary]:
    """Score every side of every analysed pair against the benchmark; flag pending pairs >= threshold.

    Scores at or above the threshold are exact top-1 values; the CDF comes from exact top-1 scores
    (no floor) of a seeded sample of sides. With `instructions` (benchmark problem texts), each
    pair's problem text is scored too and `contamination` is the highest of its three scores.
    Yields progress, then the summary.
    """
    engine = ctx.engine
    started = time.monotonic()
    if params.snippets:
        bench, instructions = list(params.snippets), list(params.instructions)
    else:
        bench, instructions = load_benchmark_texts(params.bench_dir)
    codes = [snippet.code for snippet in bench]
    ids: list[int] = []
    texts: list[str] = []
    for page in analysed_pages(engine):
        for pair_id, chosen, rejected, _c, _r in page:
            ids.append(pair_id)
            texts.extend((chosen, rejected))
    total = len(texts)
    scores: list[TopMatch] = []
    chunks = (texts[start:start + params.chunk] for start in range(0, total, params.chunk))
    ctx.progress(0, total, DecontaminationSummary(
        pairs=len(ids), sides=total, bench_snippets=len(codes), threshold=params.threshold, contaminated_pairs=0,
        contaminated_sides=0, flagged=0, cdf=[], cdf_sample=0, seconds=0.0, unanalysed=0), force=True)
    for matches in decontamination_scan(chunks, codes, floor=params.threshold, workers=params.workers):
        scores.extend(matches)
        ctx.progress(len(scores), total)
        yield DecontaminationProgress(len(scores), total)
        ctx.check()
    problem_matches = _problem_matches(engine, ids, instructions, params.threshold, params.workers, params.chunk)
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
    if params.flag and contaminated:
        contaminated_ids = set(contaminated)
        pending = [pid for pid in matching_ids(engine, (Condition("status", "=", "pending"),)) if pid in contaminated_ids]
        flagged = set_status(engine, pending, "flag", label=f"decontaminate >= {params.threshold:g}")
    picked = random.Random(params.seed).sample(range(total), min(params.sample, total))
    sample_scores = [m.score for chunk_matches in decontamination_scan(
        [[texts[i] for i in picked]], codes, floor=0.0, workers=1) for m in chunk_matches]
    summary = DecontaminationSummary(
        pairs=len(ids), sides=total, bench_snippets=len(codes), threshold=params.threshold,
        contaminated_pairs=len(contaminated),
        contaminated_sides=sum(1 for m in scores if m.score is not None), flagged=flagged,
        cdf=cdf(sample_scores, floor=0.0), cdf_sample=len(sample_scores),
        seconds=round(time.monotonic() - started, 2), unanalysed=unanalysed_count(engine),
        bench_instructions=len(instructions),
        contaminated_instructions=sum(1 for m in problem_matches.values() if m.score is not None),
    )
    ctx.progress(total, total, summary, force=True)
    yield summary
    return summary


def _check_decontaminate(_engine: Engine, params: DecontaminateParams) -> None:
    if not params.snippets:
        load_benchmark_texts(params.bench_dir)


DECONTAMINATE = register(JobKind(
    name="decontaminate", params_type=DecontaminateParams, summary_type=DecontaminationSummary,
    run=run_decontaminate, title=lambda params: "Decontaminate against CodePrefBench", check=_check_decontaminate,
))


def decontaminate_store(
    engine: Engine, bench: Sequence[BenchSnippet], *, threshold: float = DEFAULT_THRESHOLD,
    flag: bool = True, workers: int = 2, sample: int = 1000, seed: int = 0, chunk: int = 200,
    instructions: Sequence[BenchSnippet] = (),
) -> Generator[DecontaminationProgress | DecontaminationSummary, None, None]:
    """Decontaminate against these benchmark snippets (and problem texts, `instructions`) as a job in the
    foreground; yields progress, then the summary."""
    params = DecontaminateParams(snippets=tuple(bench), instructions=tuple(instructions), threshold=threshold, flag=flag, workers=workers,
                                 sample=sample, seed=seed, chunk=chunk)
    events = run_foreground(engine, DECONTAMINATE.name, params)
    try:  # a caller that stops iterating ends the job cancelled, at once
        for event in events:
            if isinstance(event, (DecontaminationProgress, DecontaminationSummary)):
                yield event
    finally:
        events.close()


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
