"""Pipelines as jobs: mine and make offline pairs, curate, export, train each recipe (detached runs), merge
their final checkpoints, evaluate, and record the lineage of every stage in the pipeline job's summary."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from core.errors import WorkbenchError
from core.pipeline import PipelineSpec, check_pipeline
from core.training.recipes import load_train_recipe
from stores.training.runs import get_train_run
from workbench.jobs.merge import run_merge
from workbench.jobs.runner import JobHandle
from workbench.jobs.train import start_training


@dataclass(frozen=True, slots=True)
class PipelineStep:
    """One stage of a pipeline reached a new state."""

    stage: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


def run_pipeline(
    engine: Engine,
    spec: PipelineSpec,
    *,
    db_url: str,
    gpus: int = 0,
    poll_seconds: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[PipelineStep]:
    """Run the chain one stage at a time as a `pipeline` job whose summary is the lineage.

    Every recipe and the benchmark folder are checked before the job starts (`check_pipeline`).
    """
    check_pipeline(spec)
    job = JobHandle.start(engine, "pipeline", f"pipeline {spec.name}", {"file": spec.source_path})
    lineage: dict[str, Any] = {"pipeline": spec.source_path, "train_runs": [], "checkpoints": []}
    try:
        if spec.sources is not None:
            yield from _sources(engine, spec, lineage)
        if spec.curate is not None:
            yield from _curate(engine, spec, lineage)
        if spec.export_out:
            yield _export(engine, spec, lineage)
        for index, recipe_path in enumerate(spec.train):
            run = start_training(engine, load_train_recipe(recipe_path), db_url=db_url, gpus=gpus)
            lineage["train_runs"].append(run.job_id)
            yield PipelineStep("train", f"run {run.job_id} started ({recipe_path})", {"run": run.job_id})
            while run.is_active:
                sleep(poll_seconds)
                run = get_train_run(engine, run.job_id)
                job.progress(index, len(spec.train), {"lineage": lineage, "stage": f"train {run.job_id}"})
            if run.state != "done" or not run.latest.get("checkpoint"):
                raise WorkbenchError(f"training run {run.job_id} ended {run.state}: {run.error or 'no checkpoint'}")
            lineage["checkpoints"].append(run.latest["checkpoint"])
            yield PipelineStep("train", f"run {run.job_id} done: {run.latest['checkpoint']}", {"run": run.job_id})
        model = lineage["checkpoints"][-1]
        if spec.merge_out and spec.merge_weights:
            for event in run_merge(engine, lineage["checkpoints"], spec.merge_weights, spec.merge_out):
                if type(event).__name__ == "MergeFinished":
                    if not event.verified:
                        raise WorkbenchError(f"merged model {event.out_dir} failed verification")
                    model = event.out_dir
            lineage["merge"] = {"out": model, "weights": list(spec.merge_weights)}
            yield PipelineStep("merge", f"merged into {model}", {"out": model})
        lineage["model"] = model
        if spec.eval_benchmark:
            generative = load_train_recipe(spec.train[-1]).modeling == "generation"
            yield from _evaluate(engine, spec, model, generative, lineage)
        else:
            lineage["eval"] = "skipped: the pipeline file names no eval.benchmark"
            yield PipelineStep("eval", lineage["eval"])
        job.finish("done", summary={"lineage": lineage}, done=len(spec.train))
    except BaseException as exc:
        job.finish("failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                   summary={"lineage": lineage})
        raise


def _evaluate(
    engine: Engine, spec: PipelineSpec, model: str, generative: bool, lineage: dict[str, Any]
) -> Iterator[PipelineStep]:
    """Score the final model on CodePrefBench as an eval run whose lineage names this pipeline."""
    from core.evaluation.bench import OBJECTIVES, load_benchmark, resolve_bench_dir
    from core.evaluation.judges import make_judge
    from stores.evaluation.runs import create_run, run_scores
    from workbench.jobs.evaluate import run_evaluation

    benchmark = load_benchmark(resolve_bench_dir(spec.eval_benchmark))
    judge = make_judge(f"hf:{model}" if generative else f"pair-rm:{model}")
    try:
        run_id = create_run(
            engine, judge_spec=judge.spec.text, judge_kind=judge.spec.kind, benchmark=benchmark,
            objectives=spec.eval_objectives or OBJECTIVES, orders=spec.eval_orders, task_limit=spec.eval_limit,
            lineage={**judge.lineage, "pipeline": spec.source_path, "checkpoints": lineage["checkpoints"]},
        )
        lineage["eval_run"] = run_id
        yield PipelineStep("eval", f"eval run {run_id} started: {judge.spec.text}", {"run": run_id})
        for _event in run_evaluation(engine, run_id, judge, benchmark):
            pass
    finally:
        judge.close()
    result = run_scores(engine, run_id)
    scores = {score.objective: round(score.headline, 4) for score in result.objectives}
    lineage["eval_scores"] = scores
    # Given order is the paper's figure; both orders and consistency are the workbench's stricter view.
    lineage["eval_both_orders"] = {score.objective: round(score.accuracy, 4) for score in result.objectives}
    lineage["eval_consistency"] = {score.objective: score.consistency for score in result.objectives}
    yield PipelineStep("eval", f"eval run {run_id} done: {scores}", {"run": run_id, "scores": scores})


def _export(engine: Engine, spec: PipelineSpec, lineage: dict[str, Any]) -> PipelineStep:
    """Write the training sets the recipes read, recording the export's id and pair-ids hash."""
    from pathlib import Path

    from core.curation.rules import parse_filter
    from core.training.export import ExportOptions
    from stores.training.exports import DEFAULT_EXPORT_FILTER
    from workbench.jobs.export import export_store

    assert spec.export_out is not None
    # The pipeline's own export folder: a re-run refreshes it.
    info = export_store(engine, parse_filter(spec.export_where or DEFAULT_EXPORT_FILTER), Path(spec.export_out),
                        ExportOptions(formats=spec.export_formats), force=True)
    lineage["export"] = {"id": info.id, "out": info.out_dir, "pair_ids_hash": info.pair_ids_hash}
    return PipelineStep("export", f"export {info.id}: {info.pair_count} pairs into {info.out_dir}", {"export": info.id})


def _sources(engine: Engine, spec: PipelineSpec, lineage: dict[str, Any]) -> Iterator[PipelineStep]:
    """Mine each repository (resumable), then make mutation and commit-signal pairs from the records."""
    from core.mining.events import MineFinished
    from core.mining.mine import MineOptions
    from core.synthesis.mutation import OfflineFinished
    from workbench.jobs.mine import MineJobStarted, run_mine_job
    from workbench.jobs.mutate import MutationConfig, run_commit_signal_job, run_mutation_job

    assert spec.sources is not None
    sources, done = spec.sources, lineage.setdefault("sources", {})
    for repo in sources.mine:
        job_id, finished = None, None
        for event in run_mine_job(engine, repo.path, MineOptions(rev=repo.rev, max_commits=repo.max_commits)):
            if isinstance(event, MineJobStarted):
                job_id = event.job_id
            elif isinstance(event, MineFinished):
                finished = event
        if finished is None or finished.cancelled:
            raise WorkbenchError(f"mining {repo.path} (job {job_id}) did not finish")
        done.setdefault("mine_jobs", []).append(job_id)
        yield PipelineStep("mine", f"job {job_id}: {finished.records_kept} records from {repo.path}",
                           {"job": job_id, "records": finished.records_kept})
    makers = []
    if sources.mutation_objectives is not None:
        config = MutationConfig(objectives=sources.mutation_objectives, limit=sources.mutation_limit,
                                seed=sources.mutation_seed)
        makers.append(("mutation", lambda: run_mutation_job(engine, config)))
    if sources.commit_signal:
        makers.append(("commit-signal", lambda: run_commit_signal_job(engine, limit=sources.commit_signal_limit)))
    for name, make in makers:
        end = None
        for offline in make():
            if isinstance(offline, OfflineFinished):
                end = offline
        if end is None or end.state != "done":
            raise WorkbenchError(f"{name} pairs ended {end.state if end else 'early'}: {end.error if end else ''}")
        done[name] = {"job": end.job_id, "stored": end.counters.get("stored", 0),
                      "already_stored": end.counters.get("already_stored", 0)}
        yield PipelineStep(name, f"job {end.job_id}: {end.counters.get('stored', 0)} new pairs "
                                 f"({end.counters.get('already_stored', 0)} already stored)", done[name])


def _curate(engine: Engine, spec: PipelineSpec, lineage: dict[str, Any]) -> Iterator[PipelineStep]:
    """Analyse every pair, dedupe, and flag pairs too close to a benchmark task (they are then not exported)."""
    from core.curation.decontamination import load_benchmark_snippets
    from workbench.jobs.curate import DecontaminationSummary, analyse_store, decontaminate_store, dedupe_store

    assert spec.curate is not None
    curate, record = spec.curate, lineage.setdefault("curate", {})
    analysed = None
    for analysed in analyse_store(engine):
        pass
    record["analysed"] = getattr(analysed, "done", 0)
    yield PipelineStep("analyse", f"{record['analysed']} pairs analysed")
    if curate.dedupe:
        summary = dedupe_store(engine, near_threshold=curate.near_threshold)
        record["duplicates"] = summary.duplicates
        yield PipelineStep("dedupe", f"{summary.duplicates} duplicates in {summary.clusters} clusters of "
                                     f"{summary.pairs} pairs")
    if curate.decontaminate:
        snippets = load_benchmark_snippets(spec.eval_benchmark)
        result = None
        for event in decontaminate_store(engine, snippets, threshold=curate.contamination_threshold):
            if isinstance(event, DecontaminationSummary):
                result = event
        if result is None:
            raise WorkbenchError("decontamination was cancelled")
        record["contaminated"], record["flagged"] = result.contaminated_pairs, result.flagged
        yield PipelineStep("decontaminate", f"{result.contaminated_pairs} of {result.pairs} pairs at or above "
                                            f"{curate.contamination_threshold:g}; {result.flagged} flagged")
