"""Merges as jobs: stream the average, record progress, and store the result with its lineage."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from core.errors import WorkbenchError
from core.outputs import check_output_folder
from core.training.weights import merge_weights
from stores.training.runs import record_checkpoint
from workbench.jobs.registry import JobKind, register
from workbench.jobs.runner import JobContext, run_foreground


@dataclass(frozen=True, slots=True)
class MergeParams:
    """Checkpoint folders, one weight each (normalised), the output folder, and whether to verify it."""

    inputs: tuple[str, ...]
    weights: tuple[float, ...]
    out: str
    verify: bool = True


@dataclass(frozen=True, slots=True)
class MergeSummary:
    """The merged checkpoint: where, how many tensors and shards, and whether it passed verification."""

    out: str
    tensors: int = 0
    shards: int = 0
    seconds: float = 0.0
    verified: bool | None = None
    weights: tuple[float, ...] = field(default_factory=tuple)


class _StopFlag:
    """The `cancel` the merge polls between tensors: the job's stop signals."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    def is_set(self) -> bool:
        return self.ctx.should_stop()


def run_merge_job(ctx: JobContext, params: MergeParams) -> Generator[Any, None, MergeSummary]:
    """Merge checkpoints; the result is a stored checkpoint with its lineage. Failed verification fails the job."""
    # Deferred: torch is needed only here (and only in the process running the job, never a TUI).
    from core.training.merge import MergeFinished, MergeProgress, check_compatible, merge_checkpoints
    from workbench.jobs.ml import load_ml

    load_ml()
    check_compatible([Path(path) for path in params.inputs])

    summary = MergeSummary(out=params.out)
    ctx.progress(0, summary=summary, force=True)
    events: Iterator[Any] = merge_checkpoints(list(params.inputs), list(params.weights), params.out,
                                              verify=params.verify, cancel=_StopFlag(ctx))
    try:
        for event in events:
            if isinstance(event, MergeProgress):
                ctx.progress(event.done, event.total)
            if isinstance(event, MergeFinished):
                lineage = {"inputs": list(params.inputs), "weights": list(params.weights),
                           "normalised": list(event.weights)}
                record_checkpoint(ctx.engine, params.out, "merge", verified=bool(event.verified), job_id=ctx.job_id,
                                  problems="; ".join(event.problems), lineage=lineage)
                summary = MergeSummary(out=params.out, tensors=event.tensor_count, shards=event.shard_count,
                                       seconds=round(event.seconds, 2), verified=event.verified,
                                       weights=tuple(event.weights))
                ctx.progress(event.tensor_count, event.tensor_count, summary, force=True)
                yield event
                if event.verified is False:
                    raise WorkbenchError(f"merged checkpoint failed verification: {event.problems[0]}")
                continue
            yield event
    except WorkbenchError:
        if ctx.should_stop():  # the merge noticed the stop between tensors
            raise ctx.stop_exception() from None
        raise
    return summary


def _check(_engine: Engine, params: MergeParams) -> None:
    """The weights (finite, positive, one per checkpoint) and an empty output folder; no torch here, so a
    TUI can queue a merge (the checkpoints' compatibility is checked where the merge runs)."""
    merge_weights(list(params.weights), len(params.inputs))
    check_output_folder(Path(params.out))


MERGE = register(JobKind(
    name="merge", params_type=MergeParams, summary_type=MergeSummary, run=run_merge_job,
    title=lambda params: f"merge {len(params.inputs)} checkpoints -> {Path(params.out).name}", check=_check,
    resume_hint="re-run it to merge again (workbench jobs resume {job_id})",
))


def merge_params(inputs: Sequence[str | Path], weights: Sequence[float], out_dir: str | Path, *,
                 verify: bool = True) -> MergeParams:
    """Params with every path made absolute (a worker may run in another folder)."""
    return MergeParams(inputs=tuple(str(Path(path).expanduser().resolve()) for path in inputs),
                       weights=tuple(float(w) for w in weights), out=str(Path(out_dir).expanduser().resolve()),
                       verify=verify)


def run_merge(
    engine: Engine,
    inputs: Sequence[str | Path],
    weights: Sequence[float],
    out_dir: str | Path,
    *,
    verify: bool = True,
    cancel: threading.Event | None = None,
) -> Generator[Any, None, Any]:
    """Merge checkpoints as a `merge` job in the foreground, yielding core's merge events; the result is a
    stored checkpoint.

    The weights, the output folder and the checkpoints' compatibility are checked before the job
    row exists: a merge that cannot run leaves no job, folder or file.
    """
    params = merge_params(inputs, merge_weights(weights, len(inputs)), out_dir, verify=verify)
    _check(engine, params)
    # Deferred: torch is needed only here, so listing or showing runs works without it.
    from core.training.merge import check_compatible

    check_compatible([Path(path) for path in params.inputs])
    return (yield from run_foreground(engine, MERGE.name, params, cancel=cancel))
