"""`workbench decontaminate --bench DIR`: top-1 similarity of every pair side to CodePrefBench."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from core.curation.decontamination import BENCH_ENV_VAR, DEFAULT_THRESHOLD, cdf_csv, cdf_svg, load_benchmark_texts
from core.errors import OptionError
from core.outputs import check_output_file
from workbench.cli.common import DETACH_HELP, echo_line, emit_json, emit_table, engine_of, queue_detached
from workbench.cli.progress import CommandProgress
from workbench.jobs.curate import DecontaminateParams, DecontaminationSummary, decontaminate_store
from workbench.jobs.runner import drain

decontaminate_app = typer.Typer()


@decontaminate_app.command("decontaminate")
def decontaminate_command(
    ctx: typer.Context,
    bench: Optional[Path] = typer.Option(None, "--bench", envvar=BENCH_ENV_VAR,
                                         help="CodePrefBench folder (*.jsonl.gz)."),
    threshold: float = typer.Option(DEFAULT_THRESHOLD, min=1, max=100, help="Flag pairs with a side at or above this."),
    flag: bool = typer.Option(True, "--flag/--no-flag", help="Flag pending pairs at or above the threshold."),
    workers: int = typer.Option(2, min=1, max=64, help="Worker processes."),
    sample: int = typer.Option(1000, min=0, help="Sides sampled (seeded) for the exact full-range CDF."),
    cdf_out: Optional[Path] = typer.Option(None, "--cdf-out", help="Write the CDF as .csv or .svg."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP + " The CDF is in the job's summary."),
) -> None:
    """Exact top-1 Levenshtein ratio of each pair side to any benchmark code (comments stripped), and of
    each pair's problem to any benchmark task's problem."""
    if cdf_out is not None:  # checked before the benchmark loads or any side is scanned
        check_output_file(cdf_out, what="--cdf-out", suffixes=(".csv", ".svg"))
    if detach:
        folder = str(bench.expanduser().resolve()) if bench else None
        queue_detached(ctx, "decontaminate", DecontaminateParams(bench_dir=folder, threshold=threshold, flag=flag,
                                                                 workers=workers, sample=sample), as_json=as_json)
        return
    snippets, instructions = load_benchmark_texts(bench)
    summary: DecontaminationSummary | None = None
    with CommandProgress("scanning pair sides") as progress:

        def show(event: Any) -> None:
            nonlocal summary
            if isinstance(event, DecontaminationSummary):
                summary = event
            else:
                progress.update(event.done, event.total)

        drain(decontaminate_store(engine_of(ctx), snippets, threshold=threshold, flag=flag,
                                  workers=workers, sample=sample, instructions=instructions), show)
    if summary is None:
        typer.echo("cancelled")
        raise typer.Exit(code=1)
    if cdf_out is not None:
        text = cdf_csv(summary.cdf) if cdf_out.suffix == ".csv" else cdf_svg(summary.cdf, threshold)
        try:
            cdf_out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise OptionError(f"cannot write {cdf_out}: {exc.strerror}") from None
    if as_json:
        emit_json(summary)
        return
    echo_line(f"{summary.pairs} pairs ({summary.sides} sides) against {summary.bench_snippets} benchmark snippets "
               f"in {summary.seconds:.1f}s: {summary.contaminated_pairs} pairs at or above {threshold:g} "
               f"({summary.contaminated_sides} sides, {summary.contaminated_instructions} problems), "
               f"{summary.flagged} flagged")
    if summary.unanalysed:
        typer.echo(f"warning: {summary.unanalysed} pairs are not analysed yet and were skipped", err=True)
    if summary.cdf:
        emit_table(["similarity", f"CDF (sample of {summary.cdf_sample})"],
                   [(x, f"{fraction:.3f}") for x, fraction in summary.cdf], title="top-1 similarity CDF")
