"""`workbench instructions import|list`: coding instructions for Critic-Evol."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from core.synthesis.instructions import read_instructions
from core.textsafe import one_line
from stores.synthesis.runs import add_instructions, list_instructions
from workbench.cli.common import emit_json, emit_table, engine_of, reader_engine_of

instructions_app = typer.Typer(help="Import and list coding instructions (for Critic-Evol).", no_args_is_help=True)


@instructions_app.command("import")
def import_command(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A .jsonl or .csv file with an instruction (or prompt/problem) field."),
    field: Optional[str] = typer.Option(None, help="Column holding the instruction text."),
    language: str = typer.Option("python", help="Language of rows without a language field."),
) -> None:
    """Store instructions once each (re-importing the same file adds nothing)."""
    records = read_instructions(path, field=field, language=language)  # every row checked before the store opens
    ids, added = add_instructions(engine_of(ctx), records, source=str(path))
    typer.echo(f"{len(ids)} instructions read, {added} new")


@instructions_app.command("list")
def list_command(
    ctx: typer.Context,
    limit: int = typer.Option(50, min=1, max=100000, help="How many instructions."),
    after: Optional[int] = typer.Option(None, min=0, help="Start after this id (paging)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List stored instructions by id."""
    rows = list_instructions(reader_engine_of(ctx), limit=limit, after_id=after)
    if as_json:
        emit_json([{"id": i, "language": lang, "text": text} for i, lang, text in rows])
        return
    emit_table(["id", "language", "instruction"], [(i, lang, one_line(text, 90)) for i, lang, text in rows])
