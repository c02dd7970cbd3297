"""Tables of the synthesis stage: instructions, work items, conversations, response cache, LLM servers."""

# No `from __future__ import annotations` here: SQLModel reads annotations at class creation.
from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from stores.tables import utcnow


class InstructionRow(SQLModel, table=True):
    """A coding instruction imported for Critic-Evol."""

    __tablename__ = "instructions"

    id: Optional[int] = Field(default=None, primary_key=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    language: str = "python"
    source: str = ""
    external_id: Optional[str] = None
    content_hash: str = Field(sa_column_kwargs={"unique": True})
    created_at: datetime = Field(default_factory=utcnow)


class SynthItemRow(SQLModel, table=True):
    """One subject (commit, instruction or solution slot) to run through one synthesis configuration."""

    __tablename__ = "synth_items"
    __table_args__ = (
        UniqueConstraint("config_key", "subject_id", name="uq_synth_item"),
        Index("ix_synth_items_claim", "config_key", "state", "id"),
    )
    # A claim carries the worker holding the item and its heartbeat; any worker may take an item
    # whose heartbeat is older than the lease.

    id: Optional[int] = Field(default=None, primary_key=True)
    method: str
    config_key: str
    subject_id: int
    state: str = "pending"  # pending | claimed | pair | sampled | filtered | failed
    retryable: bool = False
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    job_id: Optional[int] = Field(default=None, foreign_key="jobs.id")
    worker_id: Optional[str] = Field(default=None, index=True)
    heartbeat_at: Optional[datetime] = None
    pair_id: Optional[int] = None
    conversation_id: Optional[int] = None
    attempts: int = 0
    updated_at: datetime = Field(default_factory=utcnow)


class ConversationRow(SQLModel, table=True):
    """One LLM exchange: model, prompt version, messages, answer, usage, latency and outcome."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("item_id", "step", "cache_key", name="uq_conversation_step"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    item_id: int = Field(foreign_key="synth_items.id", index=True)
    job_id: Optional[int] = Field(default=None, foreign_key="jobs.id")
    method: str
    step: str
    role: str
    model: str
    prompt_version: str
    cache_key: str
    messages_json: str = Field(sa_column=Column(Text, nullable=False))
    response: str = Field(sa_column=Column(Text, nullable=False))
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    outcome: str = ""  # "" while the item goes on; pair | filtered | failed on its last exchange
    created_at: datetime = Field(default_factory=utcnow)


class ResponseCacheRow(SQLModel, table=True):
    """An answer keyed by model, prompt version, messages and sampling parameters."""

    __tablename__ = "llm_cache"

    key: str = Field(primary_key=True)
    model: str
    prompt_version: str
    text: str = Field(sa_column=Column(Text, nullable=False))
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    created_at: datetime = Field(default_factory=utcnow)


class LlmServerRow(SQLModel, table=True):
    """A `vllm serve` process started by the workbench."""

    __tablename__ = "llm_servers"

    id: Optional[int] = Field(default=None, primary_key=True)
    job_id: Optional[int] = Field(default=None, foreign_key="jobs.id")
    model: str
    base_url: str
    port: int
    pid: Optional[int] = None
    state: str = "starting"  # starting | ready | stopped | failed
    log_path: str = ""
    command_json: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)
    stopped_at: Optional[datetime] = None
