"""`workbench export --format ... --out DIR`: training sets with a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from core.curation.rules import filter_spec, parse_filter
from core.evaluation.protocols import DEFAULT_PROTOCOL, PROTOCOL_NAMES
from core.training.export import DEFAULT_FORMATS, FORMATS, ExportOptions, check_export_folder
from stores.training.exports import DEFAULT_EXPORT_FILTER
from workbench.cli.common import DETACH_HELP, echo_line, emit_json, engine_of, queue_detached
from workbench.jobs.export import ExportParams, export_store

export_app = typer.Typer()


@export_app.command("export")
def export_command(
    ctx: typer.Context,
    out: Path = typer.Option(..., "--out", help="Output folder."),
    formats: str = typer.Option(",".join(DEFAULT_FORMATS), "--format", "-f",
                                help=f"Comma-separated formats: {', '.join(FORMATS)}."),
    where: str = typer.Option(
        "", "--where", "-w",
        help=f"Which pairs (filter conditions); fields left open take the default: {DEFAULT_EXPORT_FILTER}."),
    one_order: bool = typer.Option(False, "--one-order", help="One order per pair, seeded and balanced between A and B (default: both)."),
    protocol: str = typer.Option(DEFAULT_PROTOCOL, "--protocol", help=f"Prompt layout: {', '.join(PROTOCOL_NAMES)} (the one evaluation uses)."),
    keep_comments: bool = typer.Option(False, "--keep-comments", help="Keep comments and docstrings."),
    seed: int = typer.Option(0, help="Seed of the train/validation split."),
    validation: float = typer.Option(0.05, min=0.0, max=0.99, help="Fraction of pairs in validation."),
    parquet: bool = typer.Option(False, "--parquet", help="Also write parquet files."),
    hf: bool = typer.Option(False, "--hf", help="Also write a datasets DatasetDict (save_to_disk)."),
    tokenizer: Optional[str] = typer.Option(None, help="Tokenizer folder for token-length statistics."),
    force: bool = typer.Option(False, "--force", help="Replace the earlier export in --out (its files are removed; "
                                                      "a folder that is not an export is never touched)."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Export pairs as classification, generation, DPO or chat JSONL with a manifest beside them."""
    options = ExportOptions(
        formats=tuple(f.strip() for f in formats.split(",") if f.strip()), both_orders=not one_order,
        strip=not keep_comments, seed=seed, validation_fraction=validation, parquet=parquet, hf=hf,
        tokenizer=tokenizer, protocol=protocol,
    )
    options.check()  # usage errors before the store opens
    conditions = parse_filter(where)
    check_export_folder(out, replace=force, replace_option="--force")
    if detach:
        params = ExportParams(out_dir=str(out.expanduser().resolve()), where=tuple(filter_spec(conditions)),
                              options=options, force=force)
        queue_detached(ctx, "export", params, as_json=as_json)
        return
    info = export_store(engine_of(ctx), conditions, out, options, force=force)
    if as_json:
        emit_json(info.manifest)
        return
    records = ", ".join(f"{fmt} {c['train']}+{c['validation']}" for fmt, c in info.manifest["records"].items())
    echo_line(f"export {info.id}: {info.pair_count} pairs to {info.out_dir} (train+validation records: {records})")
