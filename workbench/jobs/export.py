"""Export runner: stream the filtered pairs to the export writer as a job and record the manifest."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.engine import Engine

from core.curation.rules import Condition, filter_spec
from core.errors import DataError, OptionError
from core.localmodels import require_local_model
from core.outputs import check_output_folder
from core.training.export import ExportOptions, write_export
from stores.curation.pairs import count_pairs
from stores.tables import utcnow
from stores.training.exports import ExportInfo, export_conditions, export_pairs, record_export
from workbench.jobs.runner import JobHandle


def export_store(
    engine: Engine, conditions: Sequence[Condition], out_dir: Path, options: ExportOptions, *, force: bool = False,
) -> ExportInfo:
    """Export the pairs matching the filter (completed by the default export filter) as a job.

    Store and return the export with its manifest.

    Checked before the job starts: the options, the output folder (a non-empty one only with
    `force`), the tokenizer (a local folder) and that at least one pair matches; a check that
    fails raises OptionError or DataError and writes nothing.
    """
    options.check()
    check_output_folder(out_dir, allow_existing=force)
    if options.tokenizer:
        require_local_model(options.tokenizer, what="--tokenizer")
    if (options.parquet or options.hf) and importlib.util.find_spec("pyarrow") is None:
        raise OptionError("parquet and datasets output need the ml extra (pip install -e '.[ml]')")
    if options.hf and importlib.util.find_spec("datasets") is None:
        raise OptionError("datasets output needs the ml extra (pip install -e '.[ml]')")
    conditions = export_conditions(conditions)
    spec = filter_spec(tuple(conditions))
    total = count_pairs(engine, conditions)
    if total == 0:
        shown = " ".join(spec) or "(all)"
        raise DataError(f"no pairs match {shown}: nothing to export (see `workbench pairs stats`)")
    job = JobHandle.start(engine, "export", f"Export {total} pairs to {out_dir}",
                          {"out_dir": str(out_dir), "filter": spec, "formats": list(options.formats)})
    try:
        manifest = write_export(
            export_pairs(engine, conditions), out_dir, options, filter_spec=spec,
            created_at=utcnow().isoformat(timespec="seconds"), progress=lambda done: job.progress(done, total),
        )
        info = record_export(engine, out_dir, options.formats, spec, manifest.pair_ids_hash, manifest.data,
                             job_id=job.job_id)
    except BaseException as exc:
        job.finish("failed", error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    job.finish("done", done=info.pair_count, summary={"export_id": info.id, "pairs": info.pair_count,
                                                       "records": manifest.data["records"]})
    return info
