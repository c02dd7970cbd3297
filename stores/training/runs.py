"""Training runs in the store: record them, copy their events in, list, cancel, record checkpoints."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.errors import NotFoundError
from core.training.runs import EVENTS_FILE, CheckpointInfo, MetricPoint, TrainRunInfo
from stores.jobs import request_cancel
from stores.tables import JobRow
from stores.training.tables import CheckpointRow, TrainMetricRow, TrainPairDrawRow, TrainRunRow

WATCH_LOG = "watch.log"
_METRIC_FIELDS = ("grad_norm", "tokens_per_s", "samples_per_s", "eta_s", "gpu_mem_gb", "gpu_util")
_LATEST_ONLY = ("model_tflops_per_s", "mfu", "gpu_mem_used_gb", "tokens", "epoch", "token_accuracy",
                "reward_accuracy", "reward_margin")
_LINEAGE_KEYS = ("base_model", "base_revision", "base_revision_kind", "method")


def create_train_run(
    engine: Engine, job_id: int, *, name: str, recipe_path: str, run_dir: str, recipe: dict[str, Any],
    command: list[str], events_offset: int,
) -> None:
    """Record a training run started under a job; its events are read from `events_offset` on."""
    with Session(engine) as session:
        session.add(TrainRunRow(
            job_id=job_id, name=name, recipe_path=recipe_path, run_dir=run_dir, recipe_json=json.dumps(recipe),
            command_json=json.dumps(command), events_offset=events_offset,
        ))
        session.commit()


def sync_events(engine: Engine, job_id: int) -> int:
    """Copy new complete lines of the run's events file into the store; return how many."""
    with Session(engine) as session:
        run = session.get(TrainRunRow, job_id)
        if run is None:
            raise NotFoundError(f"training run {job_id} does not exist")
        path = Path(run.run_dir) / EVENTS_FILE
        if not path.is_file():
            return 0
        with path.open("rb") as handle:
            handle.seek(run.events_offset)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        if not complete:
            return 0
        latest = json.loads(run.latest_json or "{}")
        count = 0
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            count += 1
            _apply_event(session, run, event, latest)
        run.events_offset += len(complete)
        run.latest_json = json.dumps(latest, default=str)
        session.add(run)
        job = session.get(JobRow, job_id)
        if job is not None and job.state in ("queued", "running"):
            job.done, job.total = run.step, run.total_steps
            job.summary_json = json.dumps(latest, default=str, sort_keys=True)
            session.add(job)
        session.commit()
        return count


def _apply_event(session: Session, run: TrainRunRow, event: dict[str, Any], latest: dict[str, Any]) -> None:
    kind = event.get("type")
    if kind == "metric":
        session.add(TrainMetricRow(
            job_id=run.job_id, step=int(event["step"]), time=float(event["time"]), loss=float(event["loss"]),
            lr=float(event["lr"]), **{name: event.get(name) for name in _METRIC_FIELDS},
        ))
        run.step = int(event["step"])
        run.total_steps = event.get("total_steps", run.total_steps)
        latest.update({key: event[key] for key in ("loss", "lr", *_METRIC_FIELDS, *_LATEST_ONLY) if key in event})
    elif kind == "checkpoint":
        lineage = {"recipe": run.recipe_path, "run": run.job_id,
                   "datasets": [d.get("path") for d in json.loads(run.recipe_json)["datasets"]],
                   **{key: event[key] for key in _LINEAGE_KEYS if key in event}}
        session.add(CheckpointRow(
            path=str(event["path"]), kind="train", job_id=run.job_id, step=event.get("step"),
            verified=bool(event.get("verified")), problems="; ".join(event.get("problems") or []),
            lineage_json=json.dumps(lineage),
        ))
        if event.get("verified"):
            latest["checkpoint"] = event["path"]
    elif kind == "pair_draw":
        epoch = int(event["epoch"])
        for pair in event.get("pairs") or []:
            session.add(TrainPairDrawRow(job_id=run.job_id, epoch=epoch, group_key=str(pair["group"]),
                                         row=int(pair["row"]), pair_id=pair.get("pair_id")))
        latest["pair_draw_epochs"] = int(latest.get("pair_draw_epochs", 0)) + 1
    elif kind == "status":
        latest["phase"] = event.get("state")
        if event.get("total_steps"):
            run.total_steps = int(event["total_steps"])
        if event.get("step") is not None:
            run.step = int(event["step"])
        if event.get("error"):
            latest["error"] = event["error"]
        if event.get("state") == "loading":
            latest.update({key: event[key] for key in _LINEAGE_KEYS if key in event})
    elif kind == "info":
        latest["info"] = event.get("message")


def record_exit(engine: Engine, job_id: int, exit_code: int) -> dict[str, Any]:
    """Store the trainer's exit status after copying its last events; return the run's latest figures."""
    sync_events(engine, job_id)
    with Session(engine) as session:
        run = session.get(TrainRunRow, job_id)
        if run is None:
            raise NotFoundError(f"training run {job_id} does not exist")
        run.exit_code = exit_code
        latest = {**json.loads(run.latest_json or "{}"), "exit_code": exit_code, "step": run.step,
                  "total_steps": run.total_steps}
        run.latest_json = json.dumps({k: v for k, v in latest.items() if k not in ("step", "total_steps")}, default=str)
        session.add(run)
        session.commit()
    return latest


def _to_info(run: TrainRunRow, job: JobRow | None) -> TrainRunInfo:
    recipe = json.loads(run.recipe_json or "{}")
    params = json.loads(job.params_json or "{}") if job else {}
    return TrainRunInfo(
        job_id=run.job_id, name=run.name, state=job.state if job else "unknown", recipe_path=run.recipe_path,
        run_dir=run.run_dir, command=tuple(json.loads(run.command_json or "[]")), step=run.step,
        total_steps=run.total_steps, exit_code=run.exit_code, error=job.error if job else None,
        created_at=run.created_at, latest=json.loads(run.latest_json or "{}"),
        datasets=tuple(str(d.get("path")) for d in recipe.get("datasets", [])),
        lineage={key: params[key] for key in _LINEAGE_KEYS if key in params},
    )


def get_train_run(engine: Engine, job_id: int) -> TrainRunInfo:
    """One training run by its job id, or NotFoundError."""
    with Session(engine) as session:
        run = session.get(TrainRunRow, job_id)
        if run is None:
            raise NotFoundError(f"training run {job_id} does not exist (see `workbench train list`)")
        return _to_info(run, session.get(JobRow, job_id))


def list_train_runs(engine: Engine, *, limit: int = 200, before_id: int | None = None) -> list[TrainRunInfo]:
    """Newest runs first, one keyset page at a time."""
    with Session(engine) as session:
        query = select(TrainRunRow, JobRow).join(JobRow, col(JobRow.id) == col(TrainRunRow.job_id))
        query = query.order_by(col(TrainRunRow.job_id).desc()).limit(limit)
        if before_id is not None:
            query = query.where(col(TrainRunRow.job_id) < before_id)
        return [_to_info(run, job) for run, job in session.exec(query).all()]


def list_metrics(engine: Engine, job_id: int, *, after_step: int = -1, limit: int = 100_000) -> list[MetricPoint]:
    """Logged steps of a run after `after_step`, oldest first."""
    with Session(engine) as session:
        query = (select(TrainMetricRow).where(TrainMetricRow.job_id == job_id, col(TrainMetricRow.step) > after_step)
                 .order_by(col(TrainMetricRow.step)).limit(limit))
        return [
            MetricPoint(step=row.step, time=row.time, loss=row.loss, lr=row.lr,
                        **{name: getattr(row, name) for name in _METRIC_FIELDS})
            for row in session.exec(query).all()
        ]


def list_pair_draws(engine: Engine, job_id: int, *, limit: int = 100_000) -> list[dict[str, Any]]:
    """The pairs a DPO run drew, by epoch then draw order: epoch, group, row and pair_id."""
    with Session(engine) as session:
        query = (select(TrainPairDrawRow).where(TrainPairDrawRow.job_id == job_id)
                 .order_by(col(TrainPairDrawRow.epoch), col(TrainPairDrawRow.id)).limit(limit))
        return [{"epoch": row.epoch, "group": row.group_key, "row": row.row, "pair_id": row.pair_id}
                for row in session.exec(query).all()]


def cancel_train_run(engine: Engine, job_id: int) -> TrainRunInfo:
    """Ask a run to stop; its worker signals the trainer, which saves a checkpoint and exits."""
    get_train_run(engine, job_id)
    request_cancel(engine, job_id)
    return get_train_run(engine, job_id)


def read_log_tail(path: str | Path, max_lines: int = 200, max_bytes: int = 64_000) -> list[str]:
    """The last lines of a log file (empty when it does not exist yet or its path cannot name a file)."""
    try:
        with Path(path).open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except (OSError, ValueError):  # missing, unreadable, or a stored path holding a NUL
        return []
    lines = data.decode("utf-8", errors="replace").replace("\r", "\n").splitlines()
    return [line for line in lines if line.strip()][-max_lines:]


def record_checkpoint(
    engine: Engine, path: str, kind: str, *, verified: bool, problems: str = "",
    lineage: dict[str, Any] | None = None, job_id: int | None = None, step: int | None = None,
) -> CheckpointInfo:
    """Store a checkpoint (a merge result, say) with its verification and lineage."""
    row = CheckpointRow(path=path, kind=kind, job_id=job_id, step=step, verified=verified, problems=problems,
                        lineage_json=json.dumps(lineage or {}, default=str))
    with Session(engine) as session:
        session.add(row)
        session.commit()
        session.refresh(row)
        return _checkpoint_info(row)


def _checkpoint_info(row: CheckpointRow) -> CheckpointInfo:
    assert row.id is not None
    return CheckpointInfo(row.id, row.path, row.kind, row.job_id, row.step, row.verified, row.problems,
                          json.loads(row.lineage_json or "{}"), row.created_at)


def list_checkpoints(engine: Engine, *, limit: int = 200, job_id: int | None = None) -> list[CheckpointInfo]:
    """Checkpoints newest first, optionally of one run."""
    with Session(engine) as session:
        query = select(CheckpointRow).order_by(col(CheckpointRow.id).desc()).limit(limit)
        if job_id is not None:
            query = query.where(CheckpointRow.job_id == job_id)
        return [_checkpoint_info(row) for row in session.exec(query).all()]

