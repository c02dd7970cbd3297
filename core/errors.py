"""Domain errors whose messages a user can act on; each front end decides how to show them.

`exit_code` is the status a command line ends with: 2 for a usage error (an option or argument the
command cannot take), 1 for bad data (a file, a store or a repository that cannot be used as it is).
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error a front end shows as one line instead of a traceback.

    `exit_code` is the class's status unless one is given for this error (a RepositoryError for a
    path that does not exist is a usage error, one for a corrupt repository is bad data).
    """

    exit_code = 1

    def __init__(self, *args: object, exit_code: int | None = None) -> None:
        super().__init__(*args)
        if exit_code is not None:
            self.exit_code = exit_code


class RepositoryError(WorkbenchError):
    """A path is not a usable git repository, or a rev cannot be resolved."""


class RecipeError(WorkbenchError):
    """A YAML recipe is malformed; the message names the file, the line and column, and the key."""


class OptionError(WorkbenchError):
    """An option or argument value is not usable (unknown format or kind, bad range, missing path): a usage error."""

    exit_code = 2


class DataError(WorkbenchError):
    """An input file's content cannot be used (malformed, empty, degenerate); the message names file and line."""


class StoreError(WorkbenchError):
    """The store cannot be opened or written (locked, read-only, wrong schema, not a workbench store)."""


class NotFoundError(WorkbenchError):
    """A requested row (commit, job, pair, run) does not exist."""


class BenchmarkError(WorkbenchError):
    """Benchmark files are missing or malformed."""


class LLMError(WorkbenchError):
    """An LLM backend failed in a way retries cannot fix."""
