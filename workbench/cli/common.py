"""What every command shares: the store handle, output helpers and error translation."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError, OperationalError
from typer.core import TyperGroup

from core.errors import StoreError, WorkbenchError

stderr_console = Console(stderr=True, highlight=False)
# Modules of the optional extras: a command that needs one says which extra to install.
EXTRA_MODULES = frozenset({"torch", "transformers", "tokenizers", "safetensors", "accelerate", "datasets",
                           "pyarrow", "deepspeed", "vllm", "gguf"})


@dataclass
class CliState:
    """Put into `ctx.obj` by the root callback; the engine opens on first use."""

    db: str | None = None
    debug: bool = False
    _engine: Engine | None = field(default=None, repr=False)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            from stores.db import make_engine

            self._engine = make_engine(self.db)
        return self._engine


def state(ctx: typer.Context) -> CliState:
    """The CliState of the current invocation (a default one when called outside the root)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def engine_of(ctx: typer.Context) -> Engine:
    """The store engine of this invocation."""
    return state(ctx).engine


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one error line to stderr and return the Exit to raise."""
    stderr_console.print(Text(f"error: {message}", style="red"), soft_wrap=True)
    return typer.Exit(code=code)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


class WorkbenchGroup(TyperGroup):
    """Root group: known errors become one line and exit 1; tracebacks only with --debug."""

    def invoke(self, ctx: typer.Context) -> Any:  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort):
            raise
        except typer.TyperException as exc:  # a usage error: bad option value, missing argument
            if _debug(ctx) or not hasattr(exc, "format_message"):
                raise
            raise fail(_one_line(Exception(exc.format_message())), code=getattr(exc, "exit_code", 2)) from None
        except WorkbenchError as exc:
            if _debug(ctx):
                raise
            raise fail(_one_line(exc)) from None
        except (OperationalError, DatabaseError) as exc:
            if _debug(ctx):
                raise
            detail = _one_line(getattr(exc, "orig", exc))
            raise fail(str(StoreError(f"store: {detail}"))) from None
        except ModuleNotFoundError as exc:
            if _debug(ctx) or (exc.name or "").split(".")[0] not in EXTRA_MODULES:
                raise
            raise fail(f"{exc.name} is not installed: this needs the ml extra "
                       f"(pip install torch -e '.[ml]'; on GPU machines also '.[gpu]')") from None
        except KeyboardInterrupt:
            raise fail("interrupted", code=130) from None
        except Exception as exc:
            if _debug(ctx):
                raise
            raise fail(f"unexpected {type(exc).__name__}: {_one_line(exc)} (rerun with --debug)") from None


def _debug(ctx: typer.Context) -> bool:
    obj = ctx.find_root().obj
    return bool(isinstance(obj, CliState) and obj.debug)


def to_jsonable(value: Any) -> Any:
    """Dataclasses, datetimes and containers as JSON-ready values."""
    if is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(asdict(value))
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def emit_json(value: Any) -> None:
    """Write a JSON document to stdout."""
    typer.echo(json.dumps(to_jsonable(value), indent=2, ensure_ascii=False))


def emit_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    """A Rich table on a terminal, tab-separated lines otherwise; cells are plain text."""
    if sys.stdout.isatty():
        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
        Console().print(table)
        return
    typer.echo("\t".join(columns))
    for row in rows:
        typer.echo("\t".join(_plain_cell(cell) for cell in row))


def _plain_cell(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.isoformat(timespec="seconds")
    return str(cell).replace("\t", " ").replace("\n", " ")


def short_time(moment: datetime | None) -> str:
    """A compact timestamp for tables."""
    return moment.strftime("%Y-%m-%d %H:%M") if moment else ""


DETACH_HELP = "Queue the job for a worker (started detached if none runs) and return at once."


def queue_detached(ctx: typer.Context, kind: str, params: Any, *, as_json: bool = False) -> None:
    """`--detach`: queue the job (its params checked first) and say how to watch it."""
    from workbench.jobs.queue import enqueue

    job = enqueue(engine_of(ctx), kind, params)
    if as_json:
        emit_json({"job_id": job.id, "kind": job.kind, "state": job.state.value})
        return
    typer.echo(f"job {job.id} {job.state}: {job.title}")
    stderr_console.print(Text(f"watch it with `workbench jobs show {job.id}`; stop it with "
                              f"`workbench jobs cancel {job.id}`"), soft_wrap=True)
