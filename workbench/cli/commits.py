"""`workbench commits list|show|repos`: browse mined commit records."""

from __future__ import annotations

import difflib
from typing import Optional

import typer

from core.textsafe import one_line, visible
from stores.mining.commits import count_commits, find_commit_by_sha, get_commit, list_commits, list_repositories
from workbench.cli.common import echo_text, emit_json, emit_table, reader_engine_of, short_time

commits_app = typer.Typer(help="Browse mined commit records.", no_args_is_help=True)


@commits_app.command("list")
def list_command(
    ctx: typer.Context,
    repo: Optional[int] = typer.Option(None, "--repo", min=1, help="Repository id (see `commits repos`)."),
    path: Optional[str] = typer.Option(None, "--path", help="Only paths containing this text."),
    text: Optional[str] = typer.Option(None, "--grep", help="Only messages containing this text (or a sha prefix)."),
    language: Optional[str] = typer.Option(None, "--language", help="Only this language."),
    limit: int = typer.Option(50, min=1, max=100_000, help="How many records."),
    after: Optional[int] = typer.Option(None, "--after", min=0, help="Start after this record id (paging)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List commit records, oldest id first; page with --after LAST_ID."""
    engine = reader_engine_of(ctx)
    rows = list_commits(engine, limit=limit, after_id=after, repository_id=repo, path=path, text=text,
                        language=language)
    if as_json:
        emit_json({"total": count_commits(engine, repository_id=repo, path=path, text=text, language=language),
                   "commits": rows})
        return
    emit_table(
        ["id", "repo", "sha", "date", "author", "+", "-", "path", "subject"],
        [(c.id, one_line(c.repository_name), c.sha[:10], short_time(c.authored_at), one_line(c.author),
          c.lines_added, c.lines_removed, one_line(c.path), one_line(c.subject)) for c in rows],
    )


@commits_app.command("show")
def show_command(
    ctx: typer.Context,
    record: str = typer.Argument(..., help="Record id, or a commit sha prefix."),
    path: Optional[str] = typer.Option(None, "--path", help="The file, when the commit changed several."),
    side: str = typer.Option("diff", "--side", help="What to print: diff, old, new or none."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output with both texts."),
) -> None:
    """Show one record: header, message, and the unified diff (or one side)."""
    if side not in ("diff", "old", "new", "none"):
        raise typer.BadParameter("choose diff, old, new or none", param_hint="--side")
    engine = reader_engine_of(ctx)
    record_id = int(record) if record.isdigit() and len(record) < 10 else find_commit_by_sha(engine, record, path)
    commit = get_commit(engine, record_id)
    if as_json:
        emit_json(commit)
        return
    # Names, paths, messages and code come from the repository: shown through core.textsafe.
    renamed = f" (renamed from {one_line(commit.old_path)})" if commit.old_path != commit.path else ""
    header = [
        f"record {commit.id} · {one_line(commit.repository_name)} · {commit.language}",
        f"commit {commit.sha} (parent {commit.parent_sha[:10]})",
        f"author {one_line(commit.author)} <{one_line(commit.author_email)}> {commit.authored_at.isoformat()}",
        f"path {one_line(commit.path)}{renamed}",
        f"+{commit.lines_added} -{commit.lines_removed}",
        "",
        # Only a line feed breaks a line: a CR, VT, FF or U+2028 in the message is shown (`␍`), never obeyed.
        *("    " + visible(line) for line in commit.message.rstrip("\n").split("\n")),
        "",
    ]
    echo_text("\n".join(header))
    if side == "old":
        echo_text(commit.old_text, nl=False)
    elif side == "new":
        echo_text(commit.new_text, nl=False)
    elif side == "diff":
        diff = difflib.unified_diff(_lines(commit.old_text), _lines(commit.new_text),
                                    fromfile=f"a/{one_line(commit.old_path)}", tofile=f"b/{one_line(commit.path)}")
        echo_text("".join(line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n"
                          for line in diff), nl=False)


def _lines(text: str) -> list[str]:
    """The lines of `text` broken at line feeds only, each keeping its `\\n` (str.splitlines also breaks
    at CR, VT, FF and U+2028, which the diff must show, not turn into lines)."""
    lines = text.split("\n")
    return [f"{line}\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])


@commits_app.command("repos")
def repos_command(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """List mined repositories with their license and record count."""
    repositories = list_repositories(reader_engine_of(ctx))
    if as_json:
        emit_json(repositories)
        return
    emit_table(["id", "name", "license", "records", "path"],
               [(r.id, one_line(r.name), r.license or "unknown", r.commit_count, one_line(r.path)) for r in repositories])
