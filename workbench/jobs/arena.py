"""Arena jobs: a model answers a set's questions; a judge compares candidate and baseline answers.

Chat models run through the synthesis driver (bounded concurrency, response cache, budget, cancel);
pairwise judges of ours (pair-rm, the baselines) decide in chunks. Every answer and judgement is
committed as it finishes, so the same command after a kill resumes where the store stops.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import closing
from dataclasses import asdict, dataclass, field
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
from core.jobs import JobCancelled, JobInfo
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
from workbench.jobs.ml import load_ml, needs_ml
from workbench.jobs.registry import JobKind, job_kind, register
from workbench.jobs.runner import JobContext, JobStarted, drain, run_async, run_foreground
from workbench.jobs.synthesize import SynthConfig, model_names

ArenaEvent = ArenaProgress | ArenaFinished
# Pairwise judges commit this many judgements per transaction unless they prefer their own size.
DEFAULT_CHUNK = 64


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
class ArenaSummary:
    """An arena job's progress: items stored of `total` (answers or judgements), why it stopped, and the
    driver's counters (requests, tokens, failures); `run_id` for a judging."""

    done: int = 0
    total: int = 0
    stop_reason: str = ""
    run_id: int | None = None
    counters: dict[str, Any] = field(default_factory=dict)


def _drive(ctx: JobContext, events: AsyncIterator[ArenaProgress], outcome: _Outcome, meter: list[Meter]
           ) -> Generator[ArenaProgress, None, ArenaSummary]:
    """Run an arena job's async body on an event loop of its own; end the job the way its outcome says."""
    with closing(run_async(events)) as driven:
        yield from driven
    summary = ctx.summary if isinstance(ctx.summary, ArenaSummary) else ArenaSummary()
    if outcome.stop_reason == "budget":
        raise JobCancelled(f"budget reached ({meter[0].budget.describe()})")
    if outcome.stop_reason != "done":
        raise ctx.stop_exception()
    return summary


def run_arena_answer(ctx: JobContext, config: AnswerConfig) -> Generator[ArenaProgress, None, ArenaSummary]:
    """Generate the answers a model still lacks on a set, as an `arena-answer` job."""
    outcome, meter = _Outcome(), [Meter(budget=parse_budget(config.budget))]
    return (yield from _drive(ctx, _answer_events(ctx, config, outcome, meter[0]), outcome, meter))


async def _answer_events(ctx: JobContext, config: AnswerConfig, outcome: _Outcome, meter: Meter
                         ) -> AsyncIterator[ArenaProgress]:
    engine = ctx.engine
    arena_set = get_arena_set(engine, config.set_ref)
    model = answer_model_name(engine, config)
    subjects = missing_answers(engine, arena_set.id, model, limit=config.limit)
    total = min(config.limit or arena_set.questions, arena_set.questions)
    params = SamplingParams(max_tokens=config.max_tokens, temperature=config.temperature)
    method = ArenaAnswerMethod(params)
    lineage = {"spec": config.model_spec, "model": model, "prompt_version": method.prompt_version,
               "params": asdict(params), "job_id": ctx.job_id}
    store = ArenaAnswerStore(engine, subjects, model=model, lineage=lineage, job_id=ctx.job_id)
    already = total - len(subjects)
    ctx.progress(already, total, ArenaSummary(already, total), force=True)
    backend: ChatBackend | None = None
    try:
        if subjects:
            backend = make_backend(config.model_spec, concurrency=config.concurrency,
                                   resolve_server=_resolver(engine))
            async for event in run_synthesis(method, store, {"candidate": backend}, concurrency=config.concurrency,
                                             meter=meter, cancel=ctx.should_stop):
                counters = {**_counters(event), "failed": len(store.failures)}
                ctx.progress(already + store.stored, total, ArenaSummary(already + store.stored, total, counters=counters))
                if isinstance(event, SynthProgress):
                    yield ArenaProgress(ctx.job_id, already + store.stored, total, counters)
                elif isinstance(event, SynthFinished):
                    outcome.finish(event.stop_reason, counters, meter, store.failures)
        else:
            outcome.finish("done", {}, None, [])
    except BaseException as exc:
        outcome.fail(exc)
        raise
    finally:
        ctx.progress(already + store.stored, total, ArenaSummary(already + store.stored, total, outcome.stop_reason,
                                                                 counters=outcome.counters), force=True)
        if backend is not None:
            await backend.aclose()


def run_arena_judge(ctx: JobContext, config: JudgeConfig) -> Generator[ArenaProgress, None, ArenaSummary]:
    """Judge the pairings a run still lacks as an `arena-judge` job; the run is created on first use."""
    outcome, meter = _Outcome(), [Meter(budget=parse_budget(config.budget))]
    return (yield from _drive(ctx, _judge_events(ctx, config, outcome, meter[0]), outcome, meter))


async def _judge_events(ctx: JobContext, config: JudgeConfig, outcome: _Outcome, meter: Meter
                        ) -> AsyncIterator[ArenaProgress]:
    engine = ctx.engine
    spec = parse_judge_spec(config.judge)
    arena_set = get_arena_set(engine, config.set_ref)
    generative = spec.kind == "generative"
    backend: ChatBackend | None = None
    judge: Any = None
    if generative:
        backend = make_backend(spec.argument, concurrency=config.concurrency, resolve_server=_resolver(engine))
        lineage: dict[str, Any] = {"model": backend.model_name}
    else:
        if needs_ml(spec.text):
            load_ml()
        judge = make_judge(spec.text, device=config.device, batch_size=config.batch_size)
        lineage = dict(judge.lineage)
    run_id = open_run(
        engine, set_id=arena_set.id, candidate=config.candidate, baseline=config.baseline, judge_spec=spec.text,
        judge_kind=spec.kind, orders=config.orders, prompt_version=JUDGE_PROMPT_VERSION if generative else "",
        parser_version=VERDICT_PARSER_VERSION if generative else "", lineage=lineage,
    )
    pending, total, missing = run_pairings(engine, run_id)
    already = total - len(pending)
    set_run_state(engine, run_id, "running", job_id=ctx.job_id, total=total)
    stored = 0

    def report(counters: dict[str, Any], *, force: bool = False) -> None:
        ctx.progress(already + stored, total, ArenaSummary(already + stored, total, outcome.stop_reason if force else "",
                                                           run_id, counters), force=force)

    report({"missing_answers": missing, "run_id": run_id}, force=True)
    try:
        if generative and pending:
            assert backend is not None
            store = ArenaJudgeStore(engine, run_id, pending)
            async for event in run_synthesis(ArenaJudgeMethod(), store, {"judge": backend},
                                             concurrency=config.concurrency, meter=meter, cancel=ctx.should_stop):
                stored = store.stored
                counters = {**_counters(event), "failed": len(store.failures), "missing_answers": missing,
                            "run_id": run_id}
                report(counters)
                if isinstance(event, SynthProgress):
                    yield ArenaProgress(ctx.job_id, already + stored, total, counters)
                elif isinstance(event, SynthFinished):
                    outcome.finish(event.stop_reason, counters, meter, store.failures)
        elif pending:
            chunk_size = int(getattr(judge, "preferred_chunk", DEFAULT_CHUNK))
            stop_reason = "done"
            for start in range(0, len(pending), chunk_size):
                if ctx.should_stop():
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
                report(counters)
                yield ArenaProgress(ctx.job_id, already + stored, total, counters)
            outcome.finish(stop_reason, {"done": stored, "missing_answers": missing}, None, [])
        else:
            outcome.finish("done", {"done": 0, "missing_answers": missing}, None, [])
    except BaseException as exc:
        outcome.fail(exc)
        raise
    finally:
        set_run_state(engine, run_id, {"done": "done", "failed": "failed"}.get(outcome.job_state, "stopped"))
        report({**outcome.counters, "run_id": run_id}, force=True)
        if backend is not None:
            await backend.aclose()
        if judge is not None:
            judge.close()


def _check_answer(engine: Engine, config: AnswerConfig) -> None:
    config.validate()
    get_arena_set(engine, config.set_ref)


def _check_judge(engine: Engine, config: JudgeConfig) -> None:
    config.validate()
    arena_set = get_arena_set(engine, config.set_ref)
    for role, model in (("candidate", config.candidate), ("baseline", config.baseline)):
        if not arena_set.models.get(model):
            raise DataError(
                f"the {role} {model!r} has no answers on set {arena_set.name!r} (models with answers: "
                f"{', '.join(arena_set.models) or 'none'}); run `workbench arena answer` or `arena import-answers`"
            )


def _answer_key(engine: Engine, config: AnswerConfig) -> str:
    # One job per set and model at a time; the same command after a kill takes the stalled job over.
    return f"arena-answer:{get_arena_set(engine, config.set_ref).id}:{answer_model_name(engine, config)}"


def _judge_key(engine: Engine, config: JudgeConfig) -> str:
    set_id = get_arena_set(engine, config.set_ref).id
    return f"arena-judge:{set_id}:{config.candidate}:{config.baseline}:{config.judge}:{config.orders}"


_HINT = "re-run the same command to resume: stored answers and judgements are kept (workbench jobs resume {job_id})"
ARENA_ANSWER = register(JobKind(
    name=ANSWER_JOB_KIND, params_type=AnswerConfig, summary_type=ArenaSummary, run=run_arena_answer,
    title=lambda config: f"arena answers of {config.name or config.model_spec} on {config.set_ref}",
    check=_check_answer, run_key=_answer_key, resume_hint=_HINT,
))
ARENA_JUDGE = register(JobKind(
    name=JUDGE_JOB_KIND, params_type=JudgeConfig, summary_type=ArenaSummary, run=run_arena_judge,
    title=lambda config: f"arena judging: {config.candidate} vs {config.baseline} on {config.set_ref}",
    check=_check_judge, run_key=_judge_key, resume_hint=_HINT,
))


async def _foreground(engine: Engine, kind: str, config: Any, cancel: Callable[[], bool]) -> AsyncIterator[ArenaEvent]:
    """Run an arena job in the foreground, in a thread (it has an event loop of its own); its progress,
    then one ArenaFinished however it ended (a failure is raised after it is recorded)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    stop = threading.Event()

    def forward(event: object) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, ("event", event))

    def work() -> None:
        try:
            info = drain(run_foreground(engine, kind, config, cancel=stop), forward)
            loop.call_soon_threadsafe(queue.put_nowait, ("end", info))
        except BaseException as exc:  # noqa: BLE001  handed to the caller's side
            loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))

    thread = threading.Thread(target=work, name=f"{kind} job", daemon=True)
    thread.start()
    job_id = 0
    try:
        while True:
            try:
                what, value = await asyncio.wait_for(queue.get(), timeout=0.2)
            except asyncio.TimeoutError:
                if cancel():
                    stop.set()
                continue
            if what == "error":
                raise value
            if what == "end":
                info: JobInfo = value
                break
            if isinstance(value, JobStarted):
                job_id = value.job_id
            elif isinstance(value, ArenaProgress):
                if cancel():
                    stop.set()
                yield value
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)
    summary = job_kind(kind).load_summary(info.summary) or ArenaSummary()
    counters = {**summary.counters, **({"run_id": summary.run_id} if summary.run_id is not None else {})}
    yield ArenaFinished(job_id or info.id, info.state.value, summary.stop_reason or info.state.value, summary.done,
                        summary.total, counters, info.error)


async def run_answer_job(
    engine: Engine, config: AnswerConfig, *, cancel: Callable[[], bool] = lambda: False
) -> AsyncIterator[ArenaEvent]:
    """Generate the answers a model still lacks on a set as an `arena-answer` job in the foreground."""
    _check_answer(engine, config)
    async for event in _foreground(engine, ARENA_ANSWER.name, config, cancel):
        yield event


async def run_judge_job(
    engine: Engine, config: JudgeConfig, *, cancel: Callable[[], bool] = lambda: False
) -> AsyncIterator[ArenaEvent]:
    """Judge the pairings a run still lacks as an `arena-judge` job in the foreground."""
    _check_judge(engine, config)
    async for event in _foreground(engine, ARENA_JUDGE.name, config, cancel):
        yield event


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
