"""Tables of execution labelling: problems with tests, sampling configurations, solutions with their
verdicts and runtimes, the lineage of each code-optimise pair, and policy evaluations."""

# No `from __future__ import annotations` here: SQLModel reads annotations at class creation.
from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from stores.tables import utcnow


class CodeProblemRow(SQLModel, table=True):
    """A problem with tests, stored once by content hash."""

    __tablename__ = "code_problems"

    id: Optional[int] = Field(default=None, primary_key=True)
    task_id: str = Field(index=True)
    source: str = Field(default="jsonl", index=True)  # humaneval | mbpp | jsonl
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    entry_point: str
    test: str = Field(sa_column=Column(Text, nullable=False))
    canonical_solution: str = Field(default="", sa_column=Column(Text, nullable=False))
    content_hash: str = Field(sa_column_kwargs={"unique": True})
    created_at: datetime = Field(default_factory=utcnow)


class CodeSampleConfigRow(SQLModel, table=True):
    """How a set of solutions was sampled: model, prompt version and sampling parameters."""

    __tablename__ = "code_sample_configs"

    key: str = Field(primary_key=True)
    model: str
    prompt_version: str
    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    created_at: datetime = Field(default_factory=utcnow)


class CodeSolutionRow(SQLModel, table=True):
    """One sample slot of a problem: the answer and its code, then the sandbox's verdict and runtime.

    Execution workers claim solutions through the `exec_*` columns, as work items with leases
    (stores.claims): the claiming worker, its heartbeat, and how often the solution was claimed.
    """

    __tablename__ = "code_solutions"
    __table_args__ = (
        UniqueConstraint("config_key", "problem_id", "sample_index", name="uq_code_solution_slot"),
        Index("ix_code_solutions_exec", "exec_state", "id"),
        Index("ix_code_solutions_problem", "problem_id", "config_key"),
        {"info": {"claim_columns": {"state": "exec_state", "worker_id": "exec_worker_id",
                                    "heartbeat_at": "exec_heartbeat_at", "attempts": "exec_attempts"}}},
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    problem_id: int = Field(foreign_key="code_problems.id")
    config_key: str = Field(foreign_key="code_sample_configs.key")
    sample_index: int
    sampled: bool = False
    answer: str = Field(default="", sa_column=Column(Text, nullable=False))
    code: str = Field(default="", sa_column=Column(Text, nullable=False))
    code_hash: str = Field(default="", index=True)
    finish_reason: str = ""
    conversation_id: Optional[int] = None
    exec_state: str = "waiting"  # waiting (no answer yet) | pending | claimed | done
    exec_job_id: Optional[int] = Field(default=None, foreign_key="jobs.id")
    exec_worker_id: Optional[str] = Field(default=None, index=True)
    exec_heartbeat_at: Optional[datetime] = None
    exec_attempts: int = 0
    status: str = ""  # passed | failed | timeout, once executed
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    runtime_median_s: Optional[float] = None
    runtime_cv: Optional[float] = None
    runtime_runs: int = 0
    stable: bool = False
    samples_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    isolation: str = ""
    executed_at: Optional[datetime] = None
    created_at: datetime = Field(default_factory=utcnow)


class CodePairLinkRow(SQLModel, table=True):
    """Lineage of a code-optimise pair: its problem, its two solutions and the objective."""

    __tablename__ = "code_pair_links"

    pair_id: int = Field(primary_key=True, foreign_key="pairs.id")
    problem_id: int = Field(foreign_key="code_problems.id", index=True)
    chosen_solution_id: int = Field(foreign_key="code_solutions.id")
    rejected_solution_id: int = Field(foreign_key="code_solutions.id")
    objective: str
    created_at: datetime = Field(default_factory=utcnow)


class PolicyEvalRow(SQLModel, table=True):
    """A policy model's pass@k, runtime and code length on held-out problems."""

    __tablename__ = "policy_evals"

    id: Optional[int] = Field(default=None, primary_key=True)
    job_id: Optional[int] = Field(default=None, foreign_key="jobs.id")
    model: str
    config_key: str = Field(foreign_key="code_sample_configs.key")
    samples_per_problem: int
    ks_json: str = Field(default="[1]", sa_column=Column(Text, nullable=False))
    problem_ids_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    selection: str = ""
    state: str = Field(default="running", index=True)  # running | done | failed | cancelled
    metrics_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    seen_problems: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    finished_at: Optional[datetime] = None


class PolicyEvalProblemRow(SQLModel, table=True):
    """One problem's share of a policy evaluation."""

    __tablename__ = "policy_eval_problems"

    eval_id: int = Field(primary_key=True, foreign_key="policy_evals.id")
    problem_id: int = Field(primary_key=True, foreign_key="code_problems.id")
    samples: int
    passed: int
    pass_at_json: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    mean_runtime_s: Optional[float] = None
    mean_length_chars: Optional[float] = None
