"""Export runner: stream the filtered pairs to the export writer as a job and record the manifest."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from core.curation.rules import Condition, filter_spec, parse_filter
from core.training.export import ExportOptions, write_export
from stores.curation.pairs import count_pairs
from stores.tables import utcnow
from stores.training.exports import ExportInfo, export_pairs, get_export, record_export
from workbench.jobs.registry import JobKind, register
from workbench.jobs.runner import JobContext, drain, run_foreground


@dataclass(frozen=True, slots=True)
class ExportParams:
    """Which pairs (filter conditions as written), where, and how."""

    out_dir: str
    where: tuple[str, ...] = ()
    options: ExportOptions = ExportOptions()


@dataclass(frozen=True, slots=True)
class ExportSummary:
    """The recorded export and its record counts per format and split."""

    export_id: int | None  # None until the export is written and recorded
    pairs: int
    records: dict[str, dict[str, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExportStarted:
    """The filter matched this many pairs; writing starts."""

    total: int


def run_export(ctx: JobContext, params: ExportParams) -> Generator[ExportStarted, None, ExportSummary]:
    """Export the pairs matching the filter; store the export with its manifest (lineage for training)."""
    conditions = parse_filter(list(params.where))
    params.options.check()
    total = count_pairs(ctx.engine, conditions)
    ctx.progress(0, total, ExportSummary(export_id=None, pairs=total), force=True)
    yield ExportStarted(total)
    ctx.check()

    def progress(done: int) -> None:
        ctx.progress(done, total)
        ctx.check()

    out_dir = Path(params.out_dir)
    spec = filter_spec(conditions)
    manifest = write_export(export_pairs(ctx.engine, conditions), out_dir, params.options, filter_spec=spec,
                            created_at=utcnow().isoformat(timespec="seconds"), progress=progress)
    info = record_export(ctx.engine, out_dir, params.options.formats, spec, manifest.pair_ids_hash, manifest.data,
                         job_id=ctx.job_id)
    summary = ExportSummary(export_id=info.id, pairs=info.pair_count, records=manifest.data["records"])
    ctx.progress(info.pair_count, total, summary, force=True)
    return summary


def _check(_engine: Engine, params: ExportParams) -> None:
    parse_filter(list(params.where))
    params.options.check()


EXPORT = register(JobKind(
    name="export", params_type=ExportParams, summary_type=ExportSummary, run=run_export,
    title=lambda params: f"Export pairs to {params.out_dir}", check=_check,
))


def export_store(
    engine: Engine, conditions: Sequence[Condition], out_dir: Path, options: ExportOptions,
) -> ExportInfo:
    """Export the pairs matching the filter as a job in the foreground; return the stored export."""
    params = ExportParams(out_dir=str(out_dir), where=tuple(filter_spec(tuple(conditions))), options=options)
    _check(engine, params)
    info = drain(run_foreground(engine, EXPORT.name, params))
    summary = EXPORT.load_summary(info.summary)
    assert isinstance(summary, ExportSummary) and summary.export_id is not None
    return get_export(engine, summary.export_id)
