"""What every command shares: the store handle, output helpers and error translation."""

from __future__ import annotations

import json
import os
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
from core.jobs import JobInterrupted
from core.textsafe import one_line, visible

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
        """The store, created when it does not exist yet (for commands that write)."""
        if self._engine is None:
            from stores.db import make_engine

            self._engine = make_engine(self.db)
        return self._engine

    @property
    def existing_engine(self) -> Engine:
        """The store, which must exist already (for commands that only read)."""
        if self._engine is None:
            from stores.db import make_engine

            self._engine = make_engine(self.db, create=False)
        return self._engine


def state(ctx: typer.Context) -> CliState:
    """The CliState of the current invocation (a default one when called outside the root)."""
    root = ctx.find_root()
    if not isinstance(root.obj, CliState):
        root.obj = CliState()
    return root.obj


def engine_of(ctx: typer.Context) -> Engine:
    """The store engine of this invocation (created on first use: for commands that write)."""
    return state(ctx).engine


def reader_engine_of(ctx: typer.Context) -> Engine:
    """The store engine for a command that only reads: a missing store is an error, never created."""
    return state(ctx).existing_engine


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one sanitized error line to stderr and return the Exit to raise.

    Error messages quote paths, values and file contents, so they pass `core.textsafe` like any
    other untrusted text.
    """
    stderr_console.print(Text(f"error: {one_line(message)}", style="red"), soft_wrap=True)
    return typer.Exit(code=code)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.split("\n")[0]  # a CR or U+2028 in a quoted value is shown by one_line, not taken as a line end


def echo_text(text: str, *, nl: bool = True, err: bool = False) -> None:
    """Print untrusted multi-line text (code, messages, LLM output) with its controls made visible."""
    typer.echo(visible(text), nl=nl, err=err)


def echo_line(text: str, *, err: bool = False) -> None:
    """Print one line whose parts may be untrusted: controls and line breaks made visible."""
    typer.echo(one_line(text), err=err)


class WorkbenchGroup(TyperGroup):
    """Root group: known errors become one line with their exit status (2 usage, 1 bad data);
    tracebacks only with --debug."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        try:
            return super().parse_args(ctx, args)
        except typer.TyperException as exc:  # a bad root option: one line, as for subcommands
            if "--debug" in args or not hasattr(exc, "format_message"):
                raise
            raise fail(_one_line(Exception(exc.format_message())), code=getattr(exc, "exit_code", 2)) from None

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
            raise fail(_one_line(exc), code=exc.exit_code) from None
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
        except KeyboardInterrupt as exc:
            # A job's runner says which job ended cancelled, with its counters and how to resume.
            raise fail(_one_line(exc) if isinstance(exc, JobInterrupted) else "interrupted", code=130) from None
        except BrokenPipeError:
            # The reader went away (`| head`): nothing is wrong with the data, and there is nobody to tell.
            # Python's advice: point stdout at devnull so that the flush at exit does not fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(code=1) from None
        except UnicodeError as exc:  # text that cannot be read or written as UTF-8, e.g. a lone surrogate
            if _debug(ctx):
                raise
            raise fail(f"text that is not valid UTF-8: {_one_line(exc)} (rerun with --debug)") from None
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
    """Write a JSON document to stdout, escaped by JSON's rules: every non-ASCII character (ESC, C1,
    NUL, bidirectional controls, lone surrogates) is a `\\uXXXX` escape, never a raw byte."""
    typer.echo(json.dumps(to_jsonable(value), indent=2, ensure_ascii=True))


def emit_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], title: str | None = None) -> None:
    """A Rich table on a terminal, tab-separated lines otherwise; cells are sanitized plain text."""
    if sys.stdout.isatty():
        table = Table(title=title, show_lines=False)
        for column in columns:
            table.add_column(one_line(column))
        for row in rows:
            table.add_row(*(Text(_plain_cell(cell)) for cell in row))
        Console().print(table)
        return
    typer.echo("\t".join(one_line(column) for column in columns))
    for row in rows:
        typer.echo("\t".join(_plain_cell(cell) for cell in row))


def _plain_cell(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return cell.isoformat(timespec="seconds")
    return one_line(str(cell))


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
    echo_line(f"job {job.id} {job.state}: {job.title}")
    stderr_console.print(Text(f"watch it with `workbench jobs show {job.id}`; stop it with "
                              f"`workbench jobs cancel {job.id}`"), soft_wrap=True)
