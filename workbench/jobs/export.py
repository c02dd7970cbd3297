"""Export runner: stream the filtered pairs to the export writer as a job and record the manifest."""

from __future__ import annotations

import importlib.util
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from core.curation.rules import Condition, filter_spec, parse_filter
from core.errors import DataError, OptionError
from core.localmodels import require_local_model
from core.training.export import ExportOptions, check_export_folder, write_export
from stores.curation.pairs import count_pairs
from stores.tables import utcnow
from stores.training.exports import ExportInfo, export_conditions, export_pairs, get_export, record_export
from workbench.jobs.registry import JobKind, register
from workbench.jobs.runner import JobContext, drain, run_foreground


@dataclass(frozen=True, slots=True)
class ExportParams:
    """Which pairs (filter conditions as written, completed by the default export filter), where, and how."""

    out_dir: str
    where: tuple[str, ...] = ()
    options: ExportOptions = ExportOptions()
    force: bool = False  # replace an earlier export in the folder (never a folder that is not an export)


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


def _conditions(params: ExportParams) -> list[Condition]:
    return list(export_conditions(parse_filter(list(params.where))))


def run_export(ctx: JobContext, params: ExportParams) -> Generator[ExportStarted, None, ExportSummary]:
    """Export the pairs matching the filter; store the export with its manifest (lineage for training)."""
    _check(ctx.engine, params)
    conditions = _conditions(params)
    total = count_pairs(ctx.engine, conditions)
    ctx.progress(0, total, ExportSummary(export_id=None, pairs=total), force=True)
    yield ExportStarted(total)
    ctx.check()

    def progress(done: int) -> None:
        ctx.progress(done, total)
        ctx.check()

    out_dir = Path(params.out_dir)
    spec = filter_spec(tuple(conditions))
    manifest = write_export(export_pairs(ctx.engine, conditions), out_dir, params.options, filter_spec=spec,
                            created_at=utcnow().isoformat(timespec="seconds"), progress=progress,
                            replace=params.force)
    info = record_export(ctx.engine, out_dir, params.options.formats, spec, manifest.pair_ids_hash, manifest.data,
                         job_id=ctx.job_id)
    summary = ExportSummary(export_id=info.id, pairs=info.pair_count, records=manifest.data["records"])
    ctx.progress(info.pair_count, total, summary, force=True)
    return summary


def _check(engine: Engine, params: ExportParams) -> None:
    """Checked before the job starts: the options, the output folder (new or empty, or an earlier
    export to replace with `force`), the tokenizer (a local folder) and that at least one pair matches; a check that
    fails raises OptionError or DataError and writes nothing."""
    options = params.options
    options.check()
    check_export_folder(Path(params.out_dir), replace=params.force)
    if options.tokenizer:
        require_local_model(options.tokenizer, what="--tokenizer")
    if (options.parquet or options.hf) and importlib.util.find_spec("pyarrow") is None:
        raise OptionError("parquet and datasets output need the ml extra (pip install -e '.[ml]')")
    if options.hf and importlib.util.find_spec("datasets") is None:
        raise OptionError("datasets output needs the ml extra (pip install -e '.[ml]')")
    conditions = _conditions(params)
    if count_pairs(engine, conditions) == 0:
        shown = " ".join(filter_spec(tuple(conditions))) or "(all)"
        raise DataError(f"no pairs match {shown}: nothing to export (see `workbench pairs stats`)")


EXPORT = register(JobKind(
    name="export", params_type=ExportParams, summary_type=ExportSummary, run=run_export,
    title=lambda params: f"Export pairs to {params.out_dir}", check=_check,
))


def export_store(
    engine: Engine, conditions: Sequence[Condition], out_dir: Path, options: ExportOptions, *, force: bool = False,
) -> ExportInfo:
    """Export the pairs matching the filter (completed by the default export filter) as a job in the
    foreground; store and return the export with its manifest. Checks as `_check`, before any job row."""
    params = ExportParams(out_dir=str(out_dir), where=tuple(filter_spec(tuple(conditions))), options=options,
                          force=force)
    _check(engine, params)
    info = drain(run_foreground(engine, EXPORT.name, params))
    summary = EXPORT.load_summary(info.summary)
    assert isinstance(summary, ExportSummary) and summary.export_id is not None
    return get_export(engine, summary.export_id)
