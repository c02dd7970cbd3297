"""Managed LLM servers: start `vllm serve` as a job, list, resolve for `vllm:ID` specs, stop."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.errors import LLMError, NotFoundError
from core.llm.server import start_process, stop_process, vllm_command, wait_healthy
from core.processes import process_alive
from core.synthesis.records import ServerInfo
from stores.jobs import create_job, finish_job, update_job
from stores.synthesis.tables import LlmServerRow
from stores.tables import utcnow


def _info(row: LlmServerRow) -> ServerInfo:
    return ServerInfo(id=int(row.id), job_id=row.job_id, model=row.model, base_url=row.base_url,  # type: ignore[arg-type]
                      port=row.port, pid=row.pid, state=row.state, log_path=row.log_path, created_at=row.created_at)


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
    """Start `vllm serve MODEL`, record it as a job, wait until it is healthy; raise LLMError if not."""
    name = served_name or model
    base_url = f"http://127.0.0.1:{port}/v1"
    command = vllm_command(model, port, served_name=served_name, extra=extra_args, executable=executable)
    job_id = create_job(engine, "llm-serve", f"vllm serve {name} on port {port}", {"model": model, "port": port})
    log_path = log_dir / f"llm-server-{job_id}.log"
    try:
        pid = start_process(command, log_path)
    except LLMError as exc:
        finish_job(engine, job_id, "failed", error=str(exc))
        raise
    update_job(engine, job_id, pid=pid, log_path=str(log_path))
    with Session(engine) as session:
        row = LlmServerRow(job_id=job_id, model=name, base_url=base_url, port=port, pid=pid,
                           log_path=str(log_path), command_json=json.dumps(command))
        session.add(row)
        session.commit()
        server_id = int(row.id)  # type: ignore[arg-type]
    try:
        wait_healthy(base_url, pid, log_path, timeout_s=timeout_s)
    except LLMError as exc:
        stop_process(pid, grace_s=5)
        _set_state(engine, server_id, "failed")
        finish_job(engine, job_id, "failed", error=str(exc))
        raise
    _set_state(engine, server_id, "ready")
    update_job(engine, job_id, summary={"base_url": base_url, "server_id": server_id})
    return get_server(engine, server_id)


def _set_state(engine: Engine, server_id: int, state: str) -> None:
    with Session(engine) as session:
        row = session.get(LlmServerRow, server_id)
        if row is not None:
            row.state = state
            if state in ("stopped", "failed"):
                row.stopped_at = utcnow()
            session.add(row)
            session.commit()


def get_server(engine: Engine, server_id: int) -> ServerInfo:
    """One managed server or NotFoundError; a server whose process died reads as stopped."""
    with Session(engine) as session:
        row = session.get(LlmServerRow, server_id)
        if row is None:
            raise NotFoundError(f"LLM server {server_id} does not exist (see `workbench llm list`)")
        info = _info(row)
    if info.state in ("starting", "ready") and (info.pid is None or not process_alive(info.pid)):
        _set_state(engine, server_id, "stopped")
        return get_server(engine, server_id)
    return info


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


def stop_server(engine: Engine, server_id: int) -> ServerInfo:
    """Stop a managed server and finish its job."""
    info = get_server(engine, server_id)
    if info.pid is not None and info.state in ("starting", "ready"):
        stop_process(info.pid)
    _set_state(engine, server_id, "stopped")
    if info.job_id is not None:
        finish_job(engine, info.job_id, "done", summary={"base_url": info.base_url, "server_id": server_id})
    return get_server(engine, server_id)
