"""Curation jobs over the store: analyse, dedupe, decontaminate and apply rules in bulk."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.curation.analysis import PairAnalysis, PairCode, analyse_stream, findings_to_json, text_hash
from core.curation.decontamination import DEFAULT_THRESHOLD, BenchSnippet, TopMatch, cdf
from core.curation.decontamination import scan as decontamination_scan
from core.curation.dedupe import DEFAULT_NEAR_THRESHOLD, DedupeItem, find_clusters
from core.curation.rules import Condition, Rule
from stores.curation_tables import PairAnalysisRow
from stores.jobs import JobHandle
from stores.pairs import count_pairs, matching_ids, set_status
from stores.tables import PairRow

ANALYSE_CHUNK = 100  # pairs per pool task: large enough to amortise bandit's manager, small for progress


@dataclass(frozen=True, slots=True)
class AnalyseProgress:
    """How far an analysis job is."""

    done: int
    total: int
    elapsed: float


def _stale_pairs(engine: Engine, chunk: int) -> Iterator[list[PairCode]]:
    last_id = 0
    while True:
        with Session(engine) as session:
            rows = session.execute(
                sa_select(PairRow.id, PairRow.chosen, PairRow.rejected, PairAnalysisRow.content_hash)  # type: ignore[call-overload]
                .outerjoin(PairAnalysisRow, col(PairAnalysisRow.pair_id) == col(PairRow.id))
                .where(col(PairRow.id) > last_id)
                .order_by(col(PairRow.id))
                .limit(chunk * 10)
            ).all()
        if not rows:
            return
        last_id = rows[-1][0]
        todo = []
        for pair_id, chosen, rejected, stored in rows:
            key = text_hash(f"{chosen}\x00{rejected}")
            if stored != key:
                todo.append(PairCode(pair_id, chosen, rejected, key))
        for start in range(0, len(todo), chunk):
            yield todo[start:start + chunk]


def _analysis_row(result: PairAnalysis) -> PairAnalysisRow:
    deltas = result.deltas
    return PairAnalysisRow(
        pair_id=result.pair_id, content_hash=result.content_hash,
        chosen_parses=result.chosen.parses, rejected_parses=result.rejected.parses,
        chosen_cc=result.chosen.cyclomatic, rejected_cc=result.rejected.cyclomatic, cc_delta=deltas["cc_delta"],
        chosen_mi=result.chosen.maintainability, rejected_mi=result.rejected.maintainability,
        mi_delta=deltas["mi_delta"],
        chosen_loc=result.chosen.loc, rejected_loc=result.rejected.loc, loc_delta=int(deltas["loc_delta"]),
        chosen_volume=result.chosen.halstead_volume, rejected_volume=result.rejected.halstead_volume,
        volume_delta=deltas["volume_delta"],
        chosen_bandit=len(result.chosen.findings), rejected_bandit=len(result.rejected.findings),
        bandit_delta=int(deltas["bandit_delta"]),
        findings_json=json.dumps({"chosen": findings_to_json(result.chosen.findings),
                                  "rejected": findings_to_json(result.rejected.findings)}),
        diff_size=result.diff_size, length_ratio=result.length_ratio, identical=result.identical,
        chosen_norm_hash=result.chosen_norm_hash, rejected_norm_hash=result.rejected_norm_hash,
    )


def analyse_store(engine: Engine, *, workers: int = 2, chunk: int = ANALYSE_CHUNK) -> Iterator[AnalyseProgress]:
    """Analyse every pair whose stored analysis is missing or stale, as a job; yields progress."""
    from sqlalchemy import func

    with Session(engine) as session:
        total_pairs = int(session.exec(select(func.count()).select_from(PairRow)).one())
    job = JobHandle.start(engine, "analyse", "Analyse pairs", {"workers": workers})
    started = time.monotonic()
    done = 0
    try:
        for results in analyse_stream(_stale_pairs(engine, chunk), workers=workers):
            with Session(engine) as session:
                for result in results:
                    existing = session.get(PairAnalysisRow, result.pair_id)
                    row = _analysis_row(result)
                    if existing is not None:
                        # keep dedupe and contamination results: they depend on content hashes, refreshed by their jobs
                        for key, value in row.model_dump().items():
                            if key not in ("dup_cluster", "duplicate") and not key.startswith("contamination"):
                                setattr(existing, key, value)
                        session.add(existing)
                    else:
                        session.add(row)
                session.commit()
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


def apply_rules(engine: Engine, rules: Sequence[Rule], *, dry_run: bool = False) -> list[tuple[Rule, int]]:
    """Apply rules in order (later rules win); returns how many pairs each rule matches or changed."""
    counts = []
    for rule in rules:
        if dry_run:
            counts.append((rule, count_pairs(engine, rule.conditions)))
        else:
            ids = matching_ids(engine, rule.conditions)
            set_status(engine, ids, rule.action, label=f"rule {rule.name}")
            counts.append((rule, len(ids)))
    return counts


def analysis_rows(engine: Engine, *, after_id: int = 0, limit: int = 5000) -> list[tuple[int, str, str]]:
    """(pair id, chosen norm hash, rejected norm hash) of analysed pairs, a keyset page at a time."""
    with Session(engine) as session:
        return list(session.exec(
            select(PairAnalysisRow.pair_id, PairAnalysisRow.chosen_norm_hash, PairAnalysisRow.rejected_norm_hash)
            .where(col(PairAnalysisRow.pair_id) > after_id).order_by(col(PairAnalysisRow.pair_id)).limit(limit)
        ).all())


def store_analysis_values(engine: Engine, values: dict[int, dict[str, Any]]) -> None:
    """Write some analysis columns (dedupe, contamination) for many pairs in one transaction."""
    with Session(engine) as session:
        for pair_id, changes in values.items():
            session.execute(update(PairAnalysisRow).where(col(PairAnalysisRow.pair_id) == pair_id).values(**changes))
        session.commit()



def _analysed_pages(engine: Engine, page: int = 2000) -> Iterator[list[tuple[int, str, str, str, str]]]:
    last_id = 0
    while True:
        with Session(engine) as session:
            rows = session.execute(
                sa_select(PairRow.id, PairRow.chosen, PairRow.rejected,  # type: ignore[call-overload]
                          PairAnalysisRow.chosen_norm_hash, PairAnalysisRow.rejected_norm_hash)
                .join(PairAnalysisRow, col(PairAnalysisRow.pair_id) == col(PairRow.id))
                .where(col(PairRow.id) > last_id).order_by(col(PairRow.id)).limit(page)
            ).all()
        if not rows:
            return
        last_id = rows[-1][0]
        yield [(int(r[0]), str(r[1]), str(r[2]), str(r[3]), str(r[4])) for r in rows]


def _unanalysed_count(engine: Engine) -> int:
    from sqlalchemy import func

    with Session(engine) as session:
        return int(session.execute(
            sa_select(func.count()).select_from(PairRow)
            .outerjoin(PairAnalysisRow, col(PairAnalysisRow.pair_id) == col(PairRow.id))
            .where(col(PairAnalysisRow.pair_id).is_(None))
        ).scalar_one())


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
            for page in _analysed_pages(engine) for pair_id, chosen, rejected, chosen_hash, rejected_hash in page
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
        duplicates=sum(len(c.members) - 1 for c in clusters), unanalysed=_unanalysed_count(engine),
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


def decontaminate_store(
    engine: Engine, bench: Sequence[BenchSnippet], *, threshold: float = DEFAULT_THRESHOLD,
    flag: bool = True, workers: int = 2, sample: int = 1000, seed: int = 0, chunk: int = 200,
) -> Iterator[DecontaminationProgress | DecontaminationSummary]:
    """Score every side of every analysed pair against the benchmark; flag pending pairs >= threshold.

    Scores at or above the threshold are exact top-1 values; the CDF comes from exact top-1 scores
    (no floor) of a seeded sample of sides. Yields progress, then the summary.
    """
    import random

    started = time.monotonic()
    job = JobHandle.start(engine, "decontaminate", "Decontaminate against CodePrefBench",
                          {"threshold": threshold, "bench_snippets": len(bench), "sample": sample})
    codes = [snippet.code for snippet in bench]
    try:
        ids: list[int] = []
        texts: list[str] = []
        for page in _analysed_pages(engine):
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
        values: dict[int, dict[str, Any]] = {}
        contaminated: list[int] = []
        for index, pair_id in enumerate(ids):
            chosen_match, rejected_match = scores[2 * index], scores[2 * index + 1]
            best = max((m for m in (chosen_match, rejected_match) if m.score is not None),
                       key=lambda m: m.score or 0.0, default=None)
            values[pair_id] = {
                "contamination_chosen": chosen_match.score, "contamination_rejected": rejected_match.score,
                "contamination": best.score if best else None,
                "contamination_task": bench[best.bench_index].task_id if best and best.bench_index is not None else None,
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
        seconds=round(time.monotonic() - started, 2), unanalysed=_unanalysed_count(engine),
    )
    job.finish("done", done=total, summary=asdict(summary))
    yield summary
