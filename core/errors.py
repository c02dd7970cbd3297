"""Domain errors whose messages a user can act on; each front end decides how to show them."""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error a front end shows as one line instead of a traceback."""


class RepositoryError(WorkbenchError):
    """A path is not a usable git repository, or a rev cannot be resolved."""


class RecipeError(WorkbenchError):
    """A YAML recipe is malformed; the message names the file and the key."""


class OptionError(WorkbenchError):
    """An option value is not supported (unknown language, bad range, ...)."""


class StoreError(WorkbenchError):
    """The store cannot be opened or written (locked, read-only, wrong schema)."""


class NotFoundError(WorkbenchError):
    """A requested row (commit, job, pair, run) does not exist."""


class BenchmarkError(WorkbenchError):
    """Benchmark files are missing or malformed."""


class LLMError(WorkbenchError):
    """An LLM backend failed in a way retries cannot fix."""
