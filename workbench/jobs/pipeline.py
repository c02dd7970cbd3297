"""Pipelines as jobs: train each recipe (detached runs), merge their final checkpoints, record lineage."""

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
            objectives=OBJECTIVES, task_limit=spec.eval_limit,
            lineage={**judge.lineage, "pipeline": spec.source_path, "checkpoints": lineage["checkpoints"]},
        )
        lineage["eval_run"] = run_id
        yield PipelineStep("eval", f"eval run {run_id} started: {judge.spec.text}", {"run": run_id})
        for _event in run_evaluation(engine, run_id, judge, benchmark):
            pass
    finally:
        judge.close()
    scores = {score.objective: round(score.headline, 4) for score in run_scores(engine, run_id).objectives}
    lineage["eval_scores"] = scores
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
