"""Managed LLM servers: `vllm serve` as a job a worker supervises; list, resolve for `vllm:ID` specs, stop.

The worker running an `llm-serve` job starts the server as its child (which dies with it), waits
until it is healthy, and keeps it until the job is cancelled (`workbench llm stop ID`), which
ends it `cancelled` like any other job. A server that exits on its own fails the job.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.errors import LLMError, NotFoundError
from core.jobs import JobState
from core.llm.server import stop_process, vllm_command, wait_healthy
from core.synthesis.records import ServerInfo
from stores.jobs import enqueue_job, get_job, request_cancel
from stores.synthesis.tables import LlmServerRow
from stores.tables import JobRow, utcnow
from workbench.jobs.registry import JobKind, register
from workbench.jobs.runner import JobContext
from workbench.jobs.train import dies_with_parent

KIND = "llm-serve"


@dataclass(frozen=True, slots=True)
class ServeParams:
    """What to serve, on which loopback port, with which executable, logging where."""

    model: str
    port: int
    log_dir: str
    served_name: str | None = None
    extra_args: tuple[str, ...] = ()
    executable: str = "vllm"
    timeout_s: float = 600.0


@dataclass(frozen=True, slots=True)
class ServeSummary:
    """The server's id and URL while it runs."""

    server_id: int | None = None
    base_url: str = ""
    state: str = "starting"


@dataclass(frozen=True, slots=True)
class ServerReady:
    """The server answers: it can be used as `vllm:ID`."""

    server_id: int
    base_url: str


def _info(row: LlmServerRow, job: JobRow | None) -> ServerInfo:
    state = row.state
    if state in ("starting", "ready") and (job is None or job.state not in (JobState.QUEUED, JobState.RUNNING)):
        state = "stopped"  # its job ended: no worker keeps the server any more
    return ServerInfo(id=int(row.id), job_id=row.job_id, model=row.model, base_url=row.base_url,  # type: ignore[arg-type]
                      port=row.port, pid=row.pid, state=state, log_path=row.log_path, created_at=row.created_at)


def run_serve(ctx: JobContext, params: ServeParams) -> Generator[ServerReady, None, ServeSummary]:
    """Start the server, wait until healthy, keep it until the job is cancelled; then stop it (the job ends cancelled)."""
    engine = ctx.engine
    name = params.served_name or params.model
    base_url = f"http://127.0.0.1:{params.port}/v1"
    command = vllm_command(params.model, params.port, served_name=params.served_name, extra=params.extra_args,
                           executable=params.executable)
    log_path = Path(params.log_dir).expanduser().resolve() / f"llm-server-{ctx.job_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    _check(engine, params)
    with log_path.open("ab") as log:
        process = subprocess.Popen(dies_with_parent(command), stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    with Session(engine) as session:
        row = LlmServerRow(job_id=ctx.job_id, model=name, base_url=base_url, port=params.port, pid=process.pid,
                           log_path=str(log_path), command_json=json.dumps(command))
        session.add(row)
        session.commit()
        server_id = int(row.id)  # type: ignore[arg-type]
    from stores.jobs import update_job

    update_job(engine, ctx.job_id, pid=process.pid, log_path=str(log_path))
    ctx.progress(summary=ServeSummary(server_id, base_url), force=True)
    try:
        wait_healthy(base_url, process.pid, log_path, timeout_s=params.timeout_s,
                     alive=lambda _pid: process.poll() is None)
        _set_state(engine, server_id, "ready")
        ctx.progress(summary=ServeSummary(server_id, base_url, "ready"), force=True)
        yield ServerReady(server_id, base_url)
        while process.poll() is None and not ctx.should_stop():
            time.sleep(0.5)
        if process.poll() is not None:
            raise LLMError(f"the server exited with status {process.returncode} while serving; see {log_path}")
    except BaseException:
        stop_process(process.pid, grace_s=5)
        process.wait()
        _set_state(engine, server_id, "failed")
        raise
    stop_process(process.pid)
    process.wait()
    _set_state(engine, server_id, "stopped")
    ctx.summary = ServeSummary(server_id, base_url, "stopped")
    raise ctx.stop_exception()


def _set_state(engine: Engine, server_id: int, state: str) -> None:
    with Session(engine) as session:
        row = session.get(LlmServerRow, server_id)
        if row is not None:
            row.state = state
            if state in ("stopped", "failed"):
                row.stopped_at = utcnow()
            session.add(row)
            session.commit()


def _check(_engine: Engine, params: ServeParams) -> None:
    if shutil.which(params.executable) is None:
        raise LLMError(f"cannot start {params.executable!r}: not found (install vllm on this machine)")


SERVE = register(JobKind(
    name=KIND, params_type=ServeParams, summary_type=ServeSummary, run=run_serve, check=_check,
    title=lambda params: f"vllm serve {params.served_name or params.model} on port {params.port}",
    resume_hint="stopped; start it again with `workbench llm serve`",
))


def serve_model(
    engine: Engine,
    model: str,
    *,
    port: int,
    log_dir: Path,
    served_name: str | None = None,
    extra_args: Sequence[str] = (),
    executable: str = "vllm",
    timeout_s: float = 600.0,
) -> ServerInfo:
    """Queue an `llm-serve` job, make sure a worker runs it, and wait until the server is healthy.

    Raises LLMError (with the log's tail) when the server cannot start.
    """
    from workbench.jobs.worker import ensure_worker

    params = ServeParams(model=model, port=port, log_dir=str(Path(log_dir).expanduser().resolve()),
                         served_name=served_name, extra_args=tuple(extra_args), executable=executable,
                         timeout_s=timeout_s)
    _check(engine, params)
    job_id = enqueue_job(engine, KIND, SERVE.title(params), SERVE.dump_params(params)).id
    ensure_worker(engine, KIND)
    deadline = time.monotonic() + timeout_s + 60  # the worker's own start-up, then the server's
    while time.monotonic() < deadline:
        job = get_job(engine, job_id)
        server = _server_of_job(engine, job_id)
        if server is not None and server.state == "ready":
            return server
        if not job.is_active:
            raise LLMError(job.error or f"the server's job ended {job.state}")
        time.sleep(0.25)
    request_cancel(engine, job_id)
    raise LLMError(f"no worker started the server within {timeout_s + 60:g} s (see `workbench jobs show {job_id}`)")


def _server_of_job(engine: Engine, job_id: int) -> ServerInfo | None:
    with Session(engine) as session:
        row = session.exec(select(LlmServerRow).where(LlmServerRow.job_id == job_id)).first()
        return _info(row, session.get(JobRow, job_id)) if row is not None else None


def get_server(engine: Engine, server_id: int) -> ServerInfo:
    """One managed server or NotFoundError; a server whose job ended reads as stopped."""
    with Session(engine) as session:
        row = session.get(LlmServerRow, server_id)
        if row is None:
            raise NotFoundError(f"LLM server {server_id} does not exist (see `workbench llm list`)")
        return _info(row, session.get(JobRow, row.job_id) if row.job_id is not None else None)


def list_servers(engine: Engine, *, limit: int = 100) -> list[ServerInfo]:
    """Managed servers, newest first."""
    with Session(engine) as session:
        query = select(LlmServerRow.id).order_by(col(LlmServerRow.id).desc()).limit(limit)
        ids = [int(i) for i in session.exec(query).all() if i is not None]
    return [get_server(engine, server_id) for server_id in ids]


def resolve_server(engine: Engine, server_id: str) -> tuple[str, str]:
    """(base_url, model) of a ready managed server, for `vllm:ID` specs."""
    try:
        number = int(server_id)
    except ValueError:
        raise NotFoundError(f"vllm:{server_id}: expected a server id from `workbench llm list`") from None
    info = get_server(engine, number)
    if info.state != "ready":
        raise LLMError(f"LLM server {number} is {info.state}; start one with `workbench llm serve MODEL`")
    return info.base_url, info.model


def stop_server(engine: Engine, server_id: int, *, timeout_s: float = 60.0) -> ServerInfo:
    """Cancel a managed server's job and wait until its worker has stopped it."""
    info = get_server(engine, server_id)
    if info.job_id is None:
        return info
    request_cancel(engine, info.job_id)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and get_job(engine, info.job_id).is_active:
        time.sleep(0.2)
    return get_server(engine, server_id)
