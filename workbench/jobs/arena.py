"""Arena jobs: a model answers a set's questions; a judge compares candidate and baseline answers.

Chat models run through the synthesis driver (bounded concurrency, response cache, budget, cancel);
pairwise judges of ours (pair-rm, the baselines) decide in chunks. Every answer and judgement is
committed as it finishes, so the same command after a kill resumes where the store stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.engine import Engine

from core.errors import DataError, OptionError
from core.evaluation.arena import (
    JUDGE_PROMPT_VERSION,
    VERDICT_PARSER_VERSION,
    ArenaAnswerMethod,
    ArenaJudgeMethod,
    decision_verdict,
)
from core.evaluation.arena_models import ArenaFinished, ArenaProgress
from core.evaluation.judges import make_judge, parse_judge_spec
from core.llm.accounting import Meter, parse_budget
from core.llm.base import ChatBackend, SamplingParams
from core.llm.specs import make_backend, parse_spec
from core.synthesis.driver import SynthFinished, SynthProgress, run_synthesis
from stores.evaluation.arena import (
    ANSWER_JOB_KIND,
    JUDGE_JOB_KIND,
    ArenaAnswerStore,
    ArenaJudgeStore,
    get_arena_set,
    missing_answers,
    open_run,
    record_judgements,
    run_pairings,
    set_run_state,
)
from workbench.jobs.llm_servers import resolve_server
from workbench.jobs.runner import JobHandle
from workbench.jobs.synthesize import SynthConfig, model_names

ArenaEvent = ArenaProgress | ArenaFinished
# Pairwise judges commit this many judgements per transaction unless they prefer their own size.
DEFAULT_CHUNK = 64


@dataclass(frozen=True)
class AnswerConfig:
    """A model answering a set's questions; the same config re-run fills in what is missing."""

    set_ref: str
    model_spec: str
    name: str | None = None  # the name its answers are stored under; default the backend's model name
    limit: int | None = None  # only the first N questions of the set
    concurrency: int = 16
    budget: str | None = None
    max_tokens: int = 2048
    temperature: float = 0.0

    def validate(self) -> None:
        """Raise OptionError for a config that cannot run."""
        parse_spec(self.model_spec)
        parse_budget(self.budget)
        if self.concurrency < 1 or self.max_tokens < 1 or self.temperature < 0:
            raise OptionError("concurrency and max tokens must be at least 1, temperature at least 0")
        if self.limit is not None and self.limit < 1:
            raise OptionError("limit must be at least 1")


@dataclass(frozen=True)
class JudgeConfig:
    """A judging of a candidate's answers against a baseline's; the same config re-run resumes it."""

    set_ref: str
    candidate: str
    judge: str
    baseline: str = "baseline"
    orders: str = "both"
    concurrency: int = 16
    budget: str | None = None
    device: str | None = None
    batch_size: int | None = None

    def validate(self) -> None:
        """Raise OptionError for a config that cannot run."""
        spec = parse_judge_spec(self.judge)
        if spec.kind == "generative":
            parse_spec(spec.argument)
        parse_budget(self.budget)
        if self.orders not in ("both", "given"):
            raise OptionError(f"orders must be 'both' or 'given', not {self.orders!r}")
        if self.concurrency < 1:
            raise OptionError("concurrency must be at least 1")


def _resolver(engine: Engine) -> Callable[[str], tuple[str, str]]:
    def resolve(server_id: str) -> tuple[str, str]:
        return resolve_server(engine, server_id)

    return resolve


def answer_model_name(engine: Engine, config: AnswerConfig) -> str:
    """The name a config's answers are stored under: `--name`, else the model name its backend reports."""
    return config.name or model_names(SynthConfig("commit-instruct", critic=config.model_spec), engine)["critic"]


async def run_answer_job(
    engine: Engine, config: AnswerConfig, *, cancel: Callable[[], bool] = lambda: False
) -> AsyncIterator[ArenaEvent]:
    """Generate the answers a model still lacks on a set as an `arena-answer` job."""
    config.validate()
    arena_set = get_arena_set(engine, config.set_ref)
    model = answer_model_name(engine, config)
    subjects = missing_answers(engine, arena_set.id, model, limit=config.limit)
    total = min(config.limit or arena_set.questions, arena_set.questions)
    params = SamplingParams(max_tokens=config.max_tokens, temperature=config.temperature)
    method = ArenaAnswerMethod(params)
    job = JobHandle.start(engine, ANSWER_JOB_KIND, f"arena answers of {model} on {arena_set.name}",
                          {**asdict(config), "set_id": arena_set.id, "model": model})
    lineage = {"spec": config.model_spec, "model": model, "prompt_version": method.prompt_version,
               "params": asdict(params), "job_id": job.job_id}
    store = ArenaAnswerStore(engine, subjects, model=model, lineage=lineage, job_id=job.job_id)
    already = total - len(subjects)
    outcome = _Outcome()
    backend: ChatBackend | None = None
    try:
        if subjects:
            backend = make_backend(config.model_spec, concurrency=config.concurrency,
                                   resolve_server=_resolver(engine))
            meter = Meter(budget=parse_budget(config.budget))
            async for event in run_synthesis(method, store, {"candidate": backend}, concurrency=config.concurrency,
                                             meter=meter, cancel=lambda: cancel() or job.cancel_requested()):
                counters = {**_counters(event), "failed": len(store.failures)}
                if isinstance(event, SynthProgress):
                    job.progress(already + store.stored, total, counters)
                    yield ArenaProgress(job.job_id, already + store.stored, total, counters)
                elif isinstance(event, SynthFinished):
                    outcome.finish(event.stop_reason, counters, meter, store.failures)
        else:
            outcome.finish("done", {}, None, [])
    except BaseException as exc:
        outcome.fail(exc)
        raise
    finally:
        job.finish(outcome.job_state, error=outcome.error, summary=outcome.counters, done=already + store.stored)
        if backend is not None:
            await backend.aclose()
    yield ArenaFinished(job.job_id, outcome.job_state, outcome.stop_reason, already + store.stored, total,
                        outcome.counters, outcome.error)


async def run_judge_job(
    engine: Engine, config: JudgeConfig, *, cancel: Callable[[], bool] = lambda: False
) -> AsyncIterator[ArenaEvent]:
    """Judge the pairings a run still lacks as an `arena-judge` job; the run is created on first use."""
    config.validate()
    spec = parse_judge_spec(config.judge)
    arena_set = get_arena_set(engine, config.set_ref)
    for role, model in (("candidate", config.candidate), ("baseline", config.baseline)):
        if not arena_set.models.get(model):
            raise DataError(
                f"the {role} {model!r} has no answers on set {arena_set.name!r} (models with answers: "
                f"{', '.join(arena_set.models) or 'none'}); run `workbench arena answer` or `arena import-answers`"
            )
    generative = spec.kind == "generative"
    backend: ChatBackend | None = None
    judge: Any = None
    if generative:
        backend = make_backend(spec.argument, concurrency=config.concurrency, resolve_server=_resolver(engine))
        lineage: dict[str, Any] = {"model": backend.model_name}
    else:
        judge = make_judge(spec.text, device=config.device, batch_size=config.batch_size)
        lineage = dict(judge.lineage)
    run_id = open_run(
        engine, set_id=arena_set.id, candidate=config.candidate, baseline=config.baseline, judge_spec=spec.text,
        judge_kind=spec.kind, orders=config.orders, prompt_version=JUDGE_PROMPT_VERSION if generative else "",
        parser_version=VERDICT_PARSER_VERSION if generative else "", lineage=lineage,
    )
    pending, total, missing = run_pairings(engine, run_id)
    already = total - len(pending)
    job = JobHandle.start(engine, JUDGE_JOB_KIND, f"arena run {run_id}: {config.candidate} vs {config.baseline}",
                          {**asdict(config), "run_id": run_id, "set_id": arena_set.id})
    set_run_state(engine, run_id, "running", job_id=job.job_id, total=total)
    outcome = _Outcome()
    stored = 0

    def stop() -> bool:
        return cancel() or job.cancel_requested()

    try:
        if generative and pending:
            assert backend is not None
            store = ArenaJudgeStore(engine, run_id, pending)
            meter = Meter(budget=parse_budget(config.budget))
            async for event in run_synthesis(ArenaJudgeMethod(), store, {"judge": backend},
                                             concurrency=config.concurrency, meter=meter, cancel=stop):
                stored = store.stored
                counters = {**_counters(event), "failed": len(store.failures), "missing_answers": missing,
                            "run_id": run_id}
                if isinstance(event, SynthProgress):
                    job.progress(already + stored, total, counters)
                    yield ArenaProgress(job.job_id, already + stored, total, counters)
                elif isinstance(event, SynthFinished):
                    outcome.finish(event.stop_reason, counters, meter, store.failures)
        elif pending:
            chunk_size = int(getattr(judge, "preferred_chunk", DEFAULT_CHUNK))
            stop_reason = "done"
            for start in range(0, len(pending), chunk_size):
                if stop():
                    stop_reason = "cancelled"
                    break
                chunk = pending[start : start + chunk_size]
                outputs = await asyncio.to_thread(judge.decide, [item.judge_item() for item in chunk])
                stored += record_judgements(engine, run_id, [
                    (item, *decision_verdict(output.decision, item.candidate_side), output.raw, output.latency_s,
                     output.prompt_tokens, output.completion_tokens, False)
                    for item, output in zip(chunk, outputs)
                ])
                counters = {"done": stored, "missing_answers": missing, "run_id": run_id}
                job.progress(already + stored, total, counters)
                yield ArenaProgress(job.job_id, already + stored, total, counters)
            outcome.finish(stop_reason, {"done": stored, "missing_answers": missing}, None, [])
        else:
            outcome.finish("done", {"done": 0, "missing_answers": missing}, None, [])
    except BaseException as exc:
        outcome.fail(exc)
        raise
    finally:
        set_run_state(engine, run_id, {"done": "done", "failed": "failed"}.get(outcome.job_state, "stopped"))
        job.finish(outcome.job_state, error=outcome.error, summary={**outcome.counters, "run_id": run_id},
                   done=already + stored)
        if backend is not None:
            await backend.aclose()
        if judge is not None:
            judge.close()
    yield ArenaFinished(job.job_id, outcome.job_state, outcome.stop_reason, already + stored, total,
                        {**outcome.counters, "run_id": run_id}, outcome.error)


def _counters(event: SynthProgress | SynthFinished | Any) -> dict[str, Any]:
    if isinstance(event, (SynthProgress, SynthFinished)):
        return {key: value for key, value in event.counters.items() if key not in ("pairs", "filtered")}
    return {}


class _Outcome:
    """How a job ends: its state, why it stopped, its counters and error line."""

    def __init__(self) -> None:
        self.job_state = "failed"
        self.stop_reason = "interrupted"
        self.counters: dict[str, Any] = {}
        self.error: str | None = "the run stopped before it finished"

    def finish(self, stop_reason: str, counters: dict[str, Any], meter: Meter | None, failures: list[str]) -> None:
        self.stop_reason, self.counters = stop_reason, counters
        if stop_reason == "done":
            self.job_state = "done"
            self.error = f"{len(failures)} item(s) failed, first: {failures[0]}; re-run to retry" if failures else None
        elif stop_reason == "budget":
            assert meter is not None
            self.job_state, self.error = "cancelled", f"budget reached ({meter.budget.describe()}); re-run to resume"
        else:
            self.job_state, self.error = "cancelled", "cancelled; re-run to resume"

    def fail(self, exc: BaseException) -> None:
        if self.job_state != "failed" or self.stop_reason != "interrupted":
            return
        if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt, GeneratorExit)):
            self.job_state, self.error = "cancelled", "interrupted; re-run to resume"
        else:
            self.error = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
