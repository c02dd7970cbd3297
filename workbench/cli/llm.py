"""`workbench llm serve|stop|list`: `vllm serve` processes managed by the workbench."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer

from core.textsafe import one_line
from workbench.cli.common import emit_json, emit_table, engine_of, reader_engine_of, short_time, stderr_console
from workbench.jobs.llm_servers import list_servers, serve_model, stop_server

llm_app = typer.Typer(help="Start, list and stop managed vLLM servers (use them as vllm:ID).", no_args_is_help=True)


@llm_app.command("serve")
def serve_command(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model path or hub name for `vllm serve`."),
    port: int = typer.Option(8000, min=1, max=65535, help="Loopback port."),
    served_name: Optional[str] = typer.Option(None, help="Name the server answers to (default: MODEL)."),
    extra: str = typer.Option("", help="More `vllm serve` arguments, quoted as one string."),
    log_dir: Path = typer.Option(Path("logs"), help="Folder for the server log."),
    timeout: float = typer.Option(900.0, min=0.1, help="Seconds to wait until the server is healthy."),
    executable: str = typer.Option("vllm", help="The vllm executable."),
) -> None:
    """Start `vllm serve MODEL` under a worker (started detached if none runs), wait until it is healthy."""
    stderr_console.print(one_line(f"starting vllm serve {model} on port {port} ..."), markup=False)
    info = serve_model(engine_of(ctx), model, port=port, log_dir=log_dir, served_name=served_name,
                       extra_args=shlex.split(extra), executable=executable, timeout_s=timeout)
    typer.echo(f"server {info.id} ready at {info.base_url} (pid {info.pid}); use --critic vllm:{info.id}")


@llm_app.command("stop")
def stop_command(ctx: typer.Context, server_id: int = typer.Argument(..., min=1, help="Server id from `llm list`.")) -> None:
    """Stop a managed server."""
    info = stop_server(reader_engine_of(ctx), server_id)
    typer.echo(f"server {info.id}: {info.state}")


@llm_app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List managed servers, newest first."""
    servers = list_servers(reader_engine_of(ctx))
    if as_json:
        emit_json(servers)
        return
    emit_table(["id", "state", "model", "url", "pid", "started", "log"],
               [(s.id, s.state, s.model, s.base_url, s.pid or "", short_time(s.created_at), s.log_path) for s in servers])
