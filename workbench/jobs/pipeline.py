"""Pipelines as jobs: mine and make offline pairs, curate, export, train each recipe, merge their final
checkpoints, evaluate, and record the lineage of every stage in the pipeline job's summary.

Each stage is a job of its own kind run inside the pipeline job by the same worker (so a pipeline
never waits for a free worker, and cancelling the pipeline stops the stage in progress).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from core.errors import WorkbenchError
from core.jobs import JobInfo, JobState
from core.pipeline import PipelineSpec, check_pipeline, load_pipeline
from core.training.recipes import load_train_recipe
from stores.training.runs import get_train_run
from workbench.jobs.registry import JobKind, register
from workbench.jobs.runner import JobContext, run_foreground


@dataclass(frozen=True, slots=True)
class PipelineParams:
    """A pipeline file and the GPUs each training run gets."""

    file: str
    gpus: int = 0


@dataclass(frozen=True, slots=True)
class PipelineSummary:
    """The lineage so far: export, training runs and their final checkpoints, merge, model, eval run and scores."""

    pipeline: str
    stage: str = ""
    export: dict[str, Any] | None = None
    train_runs: list[int] = field(default_factory=list)
    checkpoints: list[str] = field(default_factory=list)
    merge: dict[str, Any] | None = None
    model: str | None = None
    eval_run: int | None = None
    eval_scores: dict[str, float] = field(default_factory=dict)
    eval_both_orders: dict[str, float] = field(default_factory=dict)
    eval_consistency: dict[str, float | None] = field(default_factory=dict)
    eval: str | None = None
    sources: dict[str, Any] = field(default_factory=dict)
    curate: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PipelineStep:
    """One stage of a pipeline reached a new state."""

    stage: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)


class StageFailed(WorkbenchError):
    """A stage job of the pipeline did not end done."""


def _child(ctx: JobContext, events: Generator[object, None, JobInfo], stage: str) -> Generator[object, None, JobInfo]:
    info = yield from events
    if info.state == JobState.CANCELLED:
        raise ctx.stop_exception()
    if info.state != JobState.DONE:
        raise StageFailed(f"{stage} job {info.id} ended {info.state}: {info.error or 'no error recorded'}")
    return info


def run_pipeline_job(ctx: JobContext, params: PipelineParams) -> Generator[object, None, PipelineSummary]:
    """Run the chain one stage at a time; the summary is the lineage."""
    from workbench.jobs.evaluate import EVAL, EvalParams
    from workbench.jobs.export import EXPORT, ExportParams
    from workbench.jobs.merge import MERGE, merge_params
    from workbench.jobs.train import queue_training

    spec = load_pipeline(params.file)
    summary = PipelineSummary(pipeline=spec.source_path)
    ctx.progress(0, len(spec.train), summary, force=True)

    def advance(**changes: Any) -> PipelineSummary:
        nonlocal summary
        summary = replace(summary, **changes)
        ctx.progress(len(summary.train_runs), len(spec.train), summary, force=True)
        return summary

    if spec.sources is not None:
        yield from _sources(ctx, spec, advance)
    if spec.curate is not None:
        yield from _curate(ctx, spec, advance)
    if spec.export_out:
        yield from _export_step(ctx, spec, EXPORT.name, ExportParams, advance)
    for recipe_path in spec.train:
        ctx.check()
        run = queue_training(ctx.engine, load_train_recipe(recipe_path), gpus=params.gpus, owner=ctx.worker_id)
        advance(train_runs=[*summary.train_runs, run.job_id], stage=f"train {run.job_id}")
        yield PipelineStep("train", f"run {run.job_id} started ({recipe_path})", {"run": run.job_id})
        yield from _child(ctx, ctx.run_owned(run.job_id), f"training run {run.job_id}")
        run = get_train_run(ctx.engine, run.job_id)
        if not run.latest.get("checkpoint"):
            raise StageFailed(f"training run {run.job_id} ended without a checkpoint")
        advance(checkpoints=[*summary.checkpoints, run.latest["checkpoint"]])
        yield PipelineStep("train", f"run {run.job_id} done: {run.latest['checkpoint']}", {"run": run.job_id})
    model = summary.checkpoints[-1]
    if spec.merge_out and spec.merge_weights:
        advance(stage="merge")
        merge = merge_params(summary.checkpoints, spec.merge_weights, spec.merge_out)
        yield from _child(ctx, ctx.run_child(MERGE.name, merge), "merge")
        model = merge.out
        advance(merge={"out": model, "weights": list(spec.merge_weights)})
        yield PipelineStep("merge", f"merged into {model}", {"out": model})
    advance(model=model)
    if not spec.eval_benchmark:
        advance(eval="skipped: the pipeline file names no eval.benchmark")
        yield PipelineStep("eval", summary.eval or "")
        return summary
    generative = load_train_recipe(spec.train[-1]).modeling == "generation"
    judge = f"hf:{model}" if generative else f"pair-rm:{model}"
    advance(stage="eval")
    eval_params = EvalParams(judge=judge, bench_dir=spec.eval_benchmark, limit=spec.eval_limit,
                             objectives=spec.eval_objectives, orders=spec.eval_orders,
                             lineage={"pipeline": spec.source_path, "checkpoints": summary.checkpoints})
    yield PipelineStep("eval", f"evaluating {judge}")
    info = yield from _child(ctx, ctx.run_child(EVAL.name, eval_params), "eval")
    result = EVAL.load_summary(info.summary)
    run_id = result.run_id if result else None
    scores: dict[str, float] = {}
    both: dict[str, float] = {}
    consistency: dict[str, float | None] = {}
    if run_id is not None:
        from stores.evaluation.runs import run_scores

        # Given order is the paper's figure; both orders and consistency are the workbench's stricter view.
        for score in run_scores(ctx.engine, run_id).objectives:
            scores[score.objective] = round(score.headline, 4)
            both[score.objective] = round(score.accuracy, 4)
            consistency[score.objective] = score.consistency
    advance(eval_run=run_id, eval_scores=scores, eval_both_orders=both, eval_consistency=consistency, stage="done")
    yield PipelineStep("eval", f"eval run {summary.eval_run} done: {scores}", {"run": summary.eval_run,
                                                                             "scores": scores})
    return summary


def _export_step(ctx: JobContext, spec: PipelineSpec, kind: str, params_type: Any,
                 advance: Any) -> Generator[object, None, None]:
    """Write the training sets the recipes read, recording the export's id and pair-ids hash."""
    from core.curation.rules import filter_spec, parse_filter
    from core.training.export import ExportOptions
    from stores.training.exports import DEFAULT_EXPORT_FILTER, get_export

    assert spec.export_out is not None
    where = tuple(filter_spec(parse_filter(spec.export_where or DEFAULT_EXPORT_FILTER)))
    # The pipeline's own export folder: a re-run refreshes it.
    params = params_type(out_dir=str(Path(spec.export_out).expanduser().resolve()), where=where,
                         options=ExportOptions(formats=spec.export_formats), force=True)
    info = yield from _child(ctx, ctx.run_child(kind, params), "export")
    export = get_export(ctx.engine, int(info.summary["export_id"]))
    advance(export={"id": export.id, "out": export.out_dir, "pair_ids_hash": export.pair_ids_hash}, stage="export")
    yield PipelineStep("export", f"export {export.id}: {export.pair_count} pairs into {export.out_dir}",
                       {"export": export.id})


def _sources(ctx: JobContext, spec: PipelineSpec, advance: Any) -> Generator[object, None, None]:
    """Mine each repository (resumable), then make mutation and commit-signal pairs from the records."""
    from core.mining.mine import MineOptions
    from workbench.jobs.mine import MINE, MineParams
    from workbench.jobs.mutate import COMMIT_SIGNAL, MUTATE, CommitSignalParams, MutationConfig

    assert spec.sources is not None
    sources, done = spec.sources, dict[str, Any]()
    for repo in sources.mine:
        params = MineParams(str(Path(repo.path).expanduser().resolve()),
                            MineOptions(rev=repo.rev, max_commits=repo.max_commits))
        info = yield from _child(ctx, ctx.run_child(MINE.name, params), f"mining {repo.path}")
        records = int(info.summary.get("records_kept", 0))
        done.setdefault("mine_jobs", []).append(info.id)
        advance(sources=dict(done), stage="mine")
        yield PipelineStep("mine", f"job {info.id}: {records} records from {repo.path}",
                           {"job": info.id, "records": records})
    makers: list[tuple[str, str, Any]] = []
    if sources.mutation_objectives is not None:
        makers.append(("mutation", MUTATE.name, MutationConfig(objectives=sources.mutation_objectives,
                                                                limit=sources.mutation_limit,
                                                                seed=sources.mutation_seed)))
    if sources.commit_signal:
        makers.append(("commit-signal", COMMIT_SIGNAL.name, CommitSignalParams(sources.commit_signal_limit)))
    for name, kind, params in makers:
        info = yield from _child(ctx, ctx.run_child(kind, params), f"{name} pairs")
        stored, known = int(info.summary.get("stored", 0)), int(info.summary.get("already_stored", 0))
        done[name] = {"job": info.id, "stored": stored, "already_stored": known}
        advance(sources=dict(done), stage=name)
        yield PipelineStep(name, f"job {info.id}: {stored} new pairs ({known} already stored)", done[name])


def _curate(ctx: JobContext, spec: PipelineSpec, advance: Any) -> Generator[object, None, None]:
    """Analyse every pair, dedupe, and flag pairs too close to a benchmark task (they are then not exported)."""
    from workbench.jobs.curate import ANALYSE, DECONTAMINATE, DEDUPE, AnalyseParams, DecontaminateParams, DedupeParams

    assert spec.curate is not None
    curate, record = spec.curate, {}
    info = yield from _child(ctx, ctx.run_child(ANALYSE.name, AnalyseParams()), "analysis")
    record["analysed"] = int(info.summary.get("analysed", 0))
    advance(curate=dict(record), stage="analyse")
    yield PipelineStep("analyse", f"{record['analysed']} pairs analysed")
    if curate.dedupe:
        info = yield from _child(ctx, ctx.run_child(DEDUPE.name, DedupeParams(near_threshold=curate.near_threshold)),
                                 "dedupe")
        found = info.summary
        record["duplicates"] = int(found.get("duplicates", 0))
        advance(curate=dict(record), stage="dedupe")
        yield PipelineStep("dedupe", f"{found.get('duplicates', 0)} duplicates in {found.get('clusters', 0)} clusters "
                                     f"of {found.get('pairs', 0)} pairs")
    if curate.decontaminate:
        bench = str(Path(spec.eval_benchmark).expanduser().resolve()) if spec.eval_benchmark else None
        params = DecontaminateParams(bench_dir=bench, threshold=curate.contamination_threshold)
        info = yield from _child(ctx, ctx.run_child(DECONTAMINATE.name, params), "decontamination")
        result = info.summary
        record["contaminated"], record["flagged"] = int(result.get("contaminated_pairs", 0)), int(result.get("flagged", 0))
        advance(curate=dict(record), stage="decontaminate")
        yield PipelineStep("decontaminate", f"{record['contaminated']} of {result.get('pairs', 0)} pairs at or above "
                                            f"{curate.contamination_threshold:g}; {record['flagged']} flagged")


def _check(_engine: Engine, params: PipelineParams) -> None:
    check_pipeline(load_pipeline(params.file))


PIPELINE = register(JobKind(
    name="pipeline", params_type=PipelineParams, summary_type=PipelineSummary, run=run_pipeline_job,
    title=lambda params: f"pipeline {Path(params.file).stem}", check=_check,
    resume_hint="finished stages keep their results; re-run it to start again (workbench jobs resume {job_id})",
))


def run_pipeline(engine: Engine, spec: PipelineSpec, *, gpus: int = 0, db_url: str | None = None
                 ) -> Generator[PipelineStep, None, None]:
    """Run a pipeline in the foreground as a `pipeline` job; yield each stage's steps (`db_url` is
    accepted for callers of the watcher-based runner; stages run in this process on `engine`).

    Every recipe and the benchmark folder are checked before the job starts (`check_pipeline`).
    """
    check_pipeline(spec)
    events = run_foreground(engine, PIPELINE.name, PipelineParams(file=spec.source_path, gpus=gpus))
    try:
        for event in events:
            if isinstance(event, PipelineStep):
                yield event
    finally:
        events.close()
