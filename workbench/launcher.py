"""The `workbench` console script: opens the TUI straight away, or hands over to the Typer CLI.

`workbench` alone (or with only `--db`/`--debug`) skips importing every CLI command module, which
would add a few tenths of a second before the first frame.
"""

from __future__ import annotations

import sys

from workbench.gc_policy import relax_young_collections

# Before the imports that follow (Textual, SQLAlchemy): they allocate enough to run over 250 young
# collections with the default settings, 0.1 s of a start-up.
relax_young_collections()


def _tui_options(args: list[str]) -> tuple[str | None, bool] | None:
    """(db, debug) when the arguments only choose the store, else None."""
    db: str | None = None
    debug = False
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--debug":
            debug = True
        elif arg == "--db" and index + 1 < len(args):
            db = args[index + 1]
            index += 1
        elif arg.startswith("--db="):
            db = arg.removeprefix("--db=")
        else:
            return None
        index += 1
    return db, debug


def main() -> None:
    """Console-script entry point."""
    options = _tui_options(sys.argv[1:])
    if options is None:
        from workbench.cli import app

        app()
        return
    db, debug = options
    from sqlalchemy.exc import DatabaseError, OperationalError

    from core.errors import WorkbenchError
    from core.textsafe import one_line

    try:
        from workbench.app import make_app, run_and_exit

        run_and_exit(make_app(db_path=db))
    except (WorkbenchError, OperationalError, DatabaseError) as exc:
        if debug:
            raise
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        print(f"error: {one_line(detail[0]) if detail else type(exc).__name__}", file=sys.stderr)
        raise SystemExit(getattr(exc, "exit_code", 1)) from None
