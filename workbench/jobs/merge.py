"""Merges as jobs: stream the average, record progress, and store the result with its lineage."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from core.errors import WorkbenchError
from core.outputs import check_output_folder
from core.training.weights import merge_weights
from stores.training.runs import record_checkpoint
from workbench.jobs.runner import JobHandle


def run_merge(
    engine: Engine,
    inputs: Sequence[str | Path],
    weights: Sequence[float],
    out_dir: str | Path,
    *,
    verify: bool = True,
    cancel: threading.Event | None = None,
) -> Iterator[Any]:
    """Merge checkpoints as a `merge` job, yielding core's merge events; the result is a stored checkpoint.

    The weights, the output folder and the checkpoints' compatibility are checked before the job
    row exists: a merge that cannot run leaves no job, folder or file.
    """
    weights = merge_weights(weights, len(inputs))
    check_output_folder(out_dir)
    # Deferred: torch is needed only here, so listing or showing runs works without it.
    from core.training.merge import MergeFinished, MergeProgress, check_compatible, merge_checkpoints

    paths = [str(Path(path).expanduser().resolve()) for path in inputs]
    out = str(Path(out_dir).expanduser().resolve())
    check_compatible([Path(path) for path in paths])
    job = JobHandle.start(engine, "merge", f"merge {len(paths)} checkpoints -> {Path(out).name}",
                          {"inputs": paths, "weights": list(weights), "out": out})
    try:
        for event in merge_checkpoints(paths, weights, out, verify=verify, cancel=cancel):
            if isinstance(event, MergeProgress):
                job.progress(event.done, event.total)
            if isinstance(event, MergeFinished):
                lineage = {"inputs": paths, "weights": list(weights), "normalised": list(event.weights)}
                record_checkpoint(engine, out, "merge", verified=bool(event.verified), job_id=job.job_id,
                                  problems="; ".join(event.problems), lineage=lineage)
                summary = {"out": out, "tensors": event.tensor_count, "shards": event.shard_count,
                           "seconds": round(event.seconds, 2), "verified": event.verified}
                if event.verified is False:
                    job.finish("failed", error=f"merged checkpoint failed verification: {event.problems[0]}",
                               summary=summary, done=event.tensor_count)
                else:
                    job.finish("done", summary=summary, done=event.tensor_count)
            yield event
    except WorkbenchError as exc:
        job.finish("failed", error=str(exc))
        raise
    except BaseException as exc:
        job.finish("failed", error=f"{type(exc).__name__}: {exc}")
        raise
