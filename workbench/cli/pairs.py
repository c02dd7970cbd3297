"""`workbench pairs list|show|import|stats`: the preference pairs in the store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from core.curation.pairs import read_pairs_jsonl
from core.curation.rules import parse_filter
from core.textsafe import one_line
from stores.curation.pairs import count_pairs, get_pair, import_pairs, list_pairs, pair_stats
from workbench.cli.common import echo_text, emit_json, emit_table, engine_of, reader_engine_of

pairs_app = typer.Typer(help="Import, list and inspect preference pairs.", no_args_is_help=True)

WHERE_HELP = "Filter: FIELD OP VALUE conditions, e.g. 'status=pending cc_delta<0 criteria~secure' (ops = != < <= > >= ~)."


def _number(value: Optional[float], digits: int = 1) -> str:
    return "" if value is None else f"{value:.{digits}f}"


@pairs_app.command("import")
def import_command(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="JSONL: instruction, criteria, chosen, rejected, optional feedback and source."),
    source: str = typer.Option("import", help="Source recorded for records without one."),
) -> None:
    """Import pairs from a JSONL file; pairs already stored are skipped."""
    pairs = list(read_pairs_jsonl(file, source=source))  # validate every line before opening the store
    added, skipped = import_pairs(engine_of(ctx), pairs)
    typer.echo(f"imported {added} pairs ({skipped} already stored)")


@pairs_app.command("list")
def list_command(
    ctx: typer.Context,
    where: Optional[str] = typer.Option(None, "--where", "-w", help=WHERE_HELP),
    limit: int = typer.Option(50, min=1, max=100000, help="How many pairs."),
    after: Optional[int] = typer.Option(None, min=0, help="Start after this pair id (keyset paging)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List pairs by id, filtered."""
    conditions = parse_filter(where)
    pairs = list_pairs(reader_engine_of(ctx), conditions, limit=limit, after_id=after)
    if as_json:
        emit_json(pairs)
        return
    emit_table(
        ["id", "source", "status", "parses", "cc_delta", "bandit_delta", "contamination", "dup", "criteria"],
        [(p.id, p.source, p.status, p.parses, _number(p.cc_delta), "" if p.bandit_delta is None else p.bandit_delta,
          _number(p.contamination), "dup" if p.duplicate else "", one_line(p.criteria.split("\n")[0], 60))
         for p in pairs],
    )


@pairs_app.command("show")
def show_command(
    ctx: typer.Context,
    pair_id: int = typer.Argument(..., min=1, help="Pair id."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show one pair: texts, lineage and analysis."""
    pair = get_pair(reader_engine_of(ctx), pair_id)
    if as_json:
        emit_json(pair)
        return
    lines = [f"pair {pair.id} · {pair.source} · {pair.status}", "", "[instruction]", pair.instruction, "",
             "[criteria]", pair.criteria, "", "[chosen]", pair.chosen, "", "[rejected]", pair.rejected]
    if pair.feedback:
        lines += ["", "[feedback]", pair.feedback]
    if pair.analysis:
        lines += ["", "[analysis]"]
        lines += [f"{key}: {value}" for key, value in pair.analysis.items() if key != "findings"]
        for side in ("chosen", "rejected"):
            for finding in pair.analysis["findings"].get(side, []):
                lines.append(f"bandit {side}: {finding['test_id']} {finding['severity']}/{finding['confidence']} line {finding['line']}")
    echo_text("\n".join(lines))


@pairs_app.command("stats")
def stats_command(
    ctx: typer.Context,
    where: Optional[str] = typer.Option(None, "--where", "-w", help=WHERE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Counts by source and status, analysis coverage, and how many match a filter."""
    conditions = parse_filter(where)
    engine = reader_engine_of(ctx)
    stats = pair_stats(engine)
    matching = count_pairs(engine, conditions) if where else stats.total
    if as_json:
        emit_json({"stats": stats, "matching": matching})
        return
    rows = [("total", stats.total), ("matching", matching), ("analysed", stats.analysed),
            ("duplicates", stats.duplicates), ("contaminated (>=80)", stats.contaminated)]
    rows += [(f"source {name}", count) for name, count in sorted(stats.by_source.items())]
    rows += [(f"status {name}", count) for name, count in sorted(stats.by_status.items())]
    emit_table(["what", "pairs"], rows)
