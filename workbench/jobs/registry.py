"""The registry of job kinds: what each kind takes, reports, and the generator that runs it.

A kind registers itself when its runner module is imported (`register(JobKind(...))` at module
level); `job_kind(name)` imports every runner module first, so a worker knows every kind. Params
and summaries are frozen dataclasses, stored as JSON through pydantic's TypeAdapter.

New kind: write `run(ctx, params) -> Generator[event, None, Summary]` (check `ctx.check()` between
units of work, report with `ctx.progress(...)`), register it below the runner, and add the module to
RUNNER_MODULES. It then runs in the foreground (`run_foreground`) and in any `workbench worker`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pydantic import TypeAdapter
from sqlalchemy.engine import Engine

from core.errors import OptionError
from core.jobs import JobInfo

if TYPE_CHECKING:
    from workbench.jobs.runner import JobContext

P = TypeVar("P")
S = TypeVar("S")

RUNNER_MODULES = (
    "workbench.jobs.mine",
    "workbench.jobs.mutate",
    "workbench.jobs.arena",
    "workbench.jobs.synthesize",
    "workbench.jobs.curate",
    "workbench.jobs.export",
    "workbench.jobs.train",
    "workbench.jobs.merge",
    "workbench.jobs.evaluate",
    "workbench.jobs.pipeline",
    "workbench.jobs.llm_servers",
    "workbench.jobs.codeopt",
)


@dataclass(frozen=True)
class JobKind(Generic[P, S]):
    """One kind of job.

    `shared` kinds split their work into claimable items: more workers may join a running job
    of theirs while `has_work(engine, job_id, params, lease_s)` says items are left. `run_key` names the
    run a job advances, so a second command on the same run joins it instead of starting a rival
    job. `check` raises the domain error of bad params before any job row is written.
    `resume_params` turns a stopped job's params and summary into those of the job resuming it;
    `resume_hint` may name `{job_id}` and any field of the job's summary. `failure(summary)` turns
    a run that returned but did not do its work (items that failed) into `failed` with that line.
    """

    name: str
    params_type: type[P]
    summary_type: type[S]
    run: Callable[[JobContext, P], Generator[object, None, S]]
    title: Callable[[P], str]
    shared: bool = False
    run_key: Callable[[Engine, P], str | None] | None = None
    check: Callable[[Engine, P], None] | None = None
    has_work: Callable[[Engine, int, P, float], bool] | None = None
    resume_params: Callable[[P, dict[str, Any]], P] | None = None
    failure: Callable[[S], str | None] | None = None
    resume_hint: str = "re-run it to resume (workbench jobs resume {job_id})"

    @cached_property
    def _params_adapter(self) -> TypeAdapter[P]:
        return TypeAdapter(self.params_type)

    @cached_property
    def _summary_adapter(self) -> TypeAdapter[S]:
        return TypeAdapter(self.summary_type)

    def dump_params(self, params: P) -> dict[str, Any]:
        """Params as the JSON object stored with the job."""
        dumped = self._params_adapter.dump_python(params, mode="json")
        assert isinstance(dumped, dict)
        return dumped

    def load_params(self, stored: dict[str, Any]) -> P:
        """Params back from the stored JSON object."""
        return self._params_adapter.validate_python(stored)

    def dump_summary(self, summary: S) -> dict[str, Any]:
        """A summary as the JSON object stored with the job."""
        dumped = self._summary_adapter.dump_python(summary, mode="json")
        assert isinstance(dumped, dict)
        return dumped

    def load_summary(self, stored: dict[str, Any]) -> S | None:
        """A summary back from the stored JSON object (None while the job has reported none)."""
        return self._summary_adapter.validate_python(stored) if stored else None


_KINDS: dict[str, JobKind[Any, Any]] = {}


def register(kind: JobKind[P, S]) -> JobKind[P, S]:
    """Add a kind to the registry (once per name)."""
    if kind.name in _KINDS and _KINDS[kind.name] is not kind:
        raise ValueError(f"job kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def load_kinds() -> dict[str, JobKind[Any, Any]]:
    """Every registered kind, importing the runner modules first."""
    for module in RUNNER_MODULES:
        importlib.import_module(module)
    return dict(_KINDS)


def job_kind(name: str) -> JobKind[Any, Any]:
    """The kind called `name`; OptionError when no runner registers it."""
    if name not in _KINDS:
        load_kinds()
    if name not in _KINDS:
        raise OptionError(f"unknown job kind {name!r} (known: {', '.join(sorted(_KINDS))})")
    return _KINDS[name]


def summary_of(job: JobInfo) -> Any:
    """A job's summary as its kind's type, or None (no summary yet, or a kind without a runner here)."""
    try:
        return job_kind(job.kind).load_summary(job.summary)
    except (OptionError, ValueError):
        return None
