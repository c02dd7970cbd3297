"""The `workbench` command: one sub-app per pipeline stage; no subcommand opens the TUI."""

from __future__ import annotations

from typing import Optional

import typer

from workbench.cli.arena import arena_app
from workbench.cli.codeopt import codeopt_app, problems_app
from workbench.cli.commits import commits_app
from workbench.cli.common import CliState, WorkbenchGroup
from workbench.cli.curate import curate_app
from workbench.cli.decontaminate import decontaminate_app
from workbench.cli.eval import eval_app
from workbench.cli.export import export_app
from workbench.cli.instructions import instructions_app
from workbench.cli.jobs import jobs_app
from workbench.cli.llm import llm_app
from workbench.cli.merge import merge_app
from workbench.cli.mine import mine_command
from workbench.cli.mutate import commit_signal_command, mutate_command
from workbench.cli.pairs import pairs_app
from workbench.cli.synth import synth_app
from workbench.cli.train import pipeline_app, train_app
from workbench.cli.worker import worker_app

app = typer.Typer(
    cls=WorkbenchGroup,
    help="CodeFavor Workbench: build code preference models from mining to evaluation.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
app.command("mine")(mine_command)
app.add_typer(commits_app, name="commits")
app.add_typer(jobs_app, name="jobs")
app.add_typer(eval_app, name="eval")
app.add_typer(arena_app, name="arena")
app.add_typer(pairs_app, name="pairs")
app.add_typer(curate_app, name="curate")
app.add_typer(decontaminate_app)
app.add_typer(export_app)
app.add_typer(train_app, name="train")
app.add_typer(merge_app)
app.add_typer(pipeline_app)
synth_app.command("mutate")(mutate_command)
synth_app.command("commit-signal")(commit_signal_command)
app.add_typer(synth_app, name="synth")
app.add_typer(instructions_app, name="instructions")
app.add_typer(llm_app, name="llm")
app.add_typer(worker_app)
app.add_typer(problems_app, name="problems")
app.add_typer(codeopt_app, name="codeopt")


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    db: Optional[str] = typer.Option(
        None, "--db", envvar="WORKBENCH_DB",
        help="Store: a SQLite file path or a SQLAlchemy URL (default ./workbench.db).",
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors."),
) -> None:
    """Open the workbench TUI, or run a subcommand."""
    ctx.obj = CliState(db=db, debug=debug)
    if ctx.invoked_subcommand is None:
        # Deferred: Textual is only imported on the path that opens the TUI.
        from workbench.app import make_app, run_and_exit

        run_and_exit(make_app(db_path=db, engine=ctx.obj.engine))


def main() -> None:
    """Console-script entry point."""
    app()
