"""Plain data shared by every stage: store counts (jobs: core.jobs)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """Counts shown on the dashboard."""

    repositories: int
    commits: int
    jobs_running: int
    jobs_total: int
    extra: dict[str, int] = field(default_factory=dict)
