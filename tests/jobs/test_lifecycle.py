"""One lifecycle for every job kind: a cancel, Ctrl-C and an error end every kind the same way.

Each kind runs for real on small data (the loopback LLM for synthesis, a tiny model for training
and merging, a stand-in `vllm` for servers). Once its runner has yielded its first event:
- cancel: any front end asks the job to stop -> `cancelled`, "cancelled; <how to resume>";
- Ctrl-C: KeyboardInterrupt lands in the runner -> `cancelled`, "interrupted; <how to resume>";
- error: an OSError lands in the runner -> `failed`, with one line.
In every case the counters it reported stay (its typed summary), and no job is left running.
"""

from __future__ import annotations

import gzip
import json
import shutil
import socket
import sys
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from core.curation.decontamination import BenchSnippet
from core.curation.pairs import NewPair
from core.evaluation.bench import OBJECTIVES, objective_file
from core.jobs import JobInfo
from stores.curation.pairs import import_pairs
from stores.db import make_engine
from stores.jobs import get_job, list_jobs, request_cancel
from tests.cli.test_mine_cli import _fast_import_history
from tests.llm_server import LoopbackLLM
from tests.synth_answers import synth_responder
from tests.synth_fixtures import add_commits, commit_messages
from workbench.jobs.registry import job_kind, load_kinds
from workbench.jobs.runner import JobStarted, run_foreground, run_job_here

REPO_ROOT = Path(__file__).resolve().parents[2]
KINDS = ["mine", "synth", "analyse", "dedupe", "decontaminate", "export", "train", "merge", "eval", "pipeline",
         "llm-serve", "mutate", "commit-signal", "arena-answer", "arena-judge", "codeopt-sample", "codeopt-execute",
         "codeopt-pairs", "codeopt-eval"]
Events = Generator[object, None, JobInfo]


def test_the_list_covers_every_registered_kind() -> None:
    assert sorted(KINDS) == sorted(load_kinds())


def _pairs(engine: Engine, count: int = 6) -> None:
    import_pairs(engine, [NewPair(f"task {i}", "correctness", f"def f():\n    return {i}\n",
                                  f"def f():\n    x = {i}\n    return x\n") for i in range(count)])


def _analysed(engine: Engine) -> None:
    from workbench.jobs.curate import analyse_store

    _pairs(engine)
    list(analyse_store(engine, workers=1))


def _bench(folder: Path, tasks: int = 6) -> Path:
    folder.mkdir()
    for objective in OBJECTIVES:
        records = [{"task_id": f"T/{n}", "instruction": "Sum", "choices": ["def f(xs):\n    return sum(xs)\n",
                   "def f(xs):\n    total = 0\n    return total\n"], "gt_choice": n % 2} for n in range(tasks)]
        (folder / objective_file(objective)).write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode()))
    return folder


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Scenarios:
    """Builds the data each kind needs and starts it in the foreground; returns its events."""

    def __init__(self, engine: Engine, tmp_path: Path, request: pytest.FixtureRequest,
                 monkeypatch: pytest.MonkeyPatch, stack: list[Any]) -> None:
        self.engine = engine
        self.tmp = tmp_path
        self.request = request
        self.monkeypatch = monkeypatch
        self.stack = stack

    def start(self, kind: str) -> Events:
        return getattr(self, kind.replace("-", "_"))()

    def mine(self) -> Events:
        from workbench.jobs.mine import MineParams

        _fast_import_history(self.tmp / "repo", 3000)
        return run_foreground(self.engine, "mine", MineParams(str(self.tmp / "repo")))

    def synth(self) -> Events:
        from workbench.jobs.synthesize import SynthConfig

        add_commits(self.engine, commit_messages(30))
        server = LoopbackLLM(synth_responder, delay_s=0.1).start()
        self.stack.append(server.stop)
        return run_foreground(self.engine, "synth", SynthConfig("commit-instruct", critic=f"openai:critic@{server.base_url}",
                                                                concurrency=2))

    def analyse(self) -> Events:
        from workbench.jobs.curate import AnalyseParams

        _pairs(self.engine, 8)
        return run_foreground(self.engine, "analyse", AnalyseParams(workers=1, chunk=2))

    def dedupe(self) -> Events:
        from workbench.jobs.curate import DedupeParams

        _analysed(self.engine)
        return run_foreground(self.engine, "dedupe", DedupeParams())

    def decontaminate(self) -> Events:
        from workbench.jobs.curate import DecontaminateParams

        _analysed(self.engine)
        snippets = (BenchSnippet("T/1", "correctness", "def f():\n    return 1\n"),)
        return run_foreground(self.engine, "decontaminate", DecontaminateParams(snippets=snippets, workers=1,
                                                                                 sample=4, chunk=2))

    def export(self) -> Events:
        from workbench.jobs.export import ExportParams

        _pairs(self.engine)
        return run_foreground(self.engine, "export", ExportParams(out_dir=str(self.tmp / "export")))

    def _recipe(self, name: str = "r.yaml") -> Path:
        from tests.train_fixtures import write_export, write_recipe

        model = self.request.getfixturevalue("tiny_model_dir")
        data = write_export(self.tmp / "train.jsonl", copies=2)
        return write_recipe(self.tmp / name, model, data, self.tmp / "run", max_steps=100_000)

    def train(self) -> Events:
        from core.training.recipes import load_train_recipe
        from workbench.jobs.train import queue_training

        run = queue_training(self.engine, load_train_recipe(self._recipe()))
        return run_job_here(self.engine, run.job_id)

    def merge(self) -> Events:
        from workbench.jobs.merge import merge_params

        model = self.request.getfixturevalue("tiny_model_dir")
        first, second = shutil.copytree(model, self.tmp / "a"), shutil.copytree(model, self.tmp / "b")
        return run_foreground(self.engine, "merge", merge_params([first, second], [1, 1], self.tmp / "merged"))

    def eval(self) -> Events:
        from workbench.jobs.evaluate import EvalParams

        params = EvalParams(judge="baseline:shorter", bench_dir=str(_bench(self.tmp / "bench")), chunk_size=2)
        return run_foreground(self.engine, "eval", params)

    def pipeline(self) -> Events:
        import yaml

        from workbench.jobs.pipeline import PipelineParams

        _pairs(self.engine)
        recipe = self.tmp / "never-reached.yaml"
        recipe.write_text(yaml.safe_dump({"name": "tiny", "base_model": str(self.tmp), "datasets": [str(self.tmp)]}))
        pipeline = self.tmp / "p.yaml"
        pipeline.write_text(yaml.safe_dump({"name": "p", "train": [str(recipe)],
                                            "export": {"out": str(self.tmp / "export")}}))
        return run_foreground(self.engine, "pipeline", PipelineParams(file=str(pipeline)))

    def llm_serve(self) -> Events:
        from workbench.jobs.llm_servers import ServeParams

        script = self.tmp / "vllm"
        script.write_text(f"#!{sys.executable}\nimport sys, runpy\nargs = sys.argv[1:]\n"
                          "sys.argv = ['llm_server', '--port', args[args.index('--port') + 1]]\n"
                          "runpy.run_module('tests.llm_server', run_name='__main__')\n", encoding="utf-8")
        script.chmod(0o755)
        self.monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
        params = ServeParams(model="m", port=_free_port(), log_dir=str(self.tmp / "logs"), executable=str(script),
                             timeout_s=60)
        return run_foreground(self.engine, "llm-serve", params)

    def mutate(self) -> Events:
        from workbench.jobs.mutate import MutationConfig

        add_commits(self.engine, commit_messages(120))  # three batches of 50 records
        return run_foreground(self.engine, "mutate", MutationConfig())

    def commit_signal(self) -> Events:
        from workbench.jobs.mutate import CommitSignalParams

        add_commits(self.engine, commit_messages(120))
        return run_foreground(self.engine, "commit-signal", CommitSignalParams())

    def _arena(self, *, answers: bool) -> str:
        from typer.testing import CliRunner

        from tests.arena_fixtures import arena_responder, write_answers, write_set
        from workbench.cli import app

        runner, db = CliRunner(), self.engine.url.render_as_string(hide_password=False)
        assert runner.invoke(app, ["--db", db, "arena", "import", str(write_set(self.tmp / "set.jsonl")),
                                   "--name", "s"]).exit_code == 0
        if answers:
            path = write_answers(self.tmp / "cand.jsonl", {i: f"CANDIDATE answer {i}" for i in range(40)})
            assert runner.invoke(app, ["--db", db, "arena", "import-answers", "s", str(path), "--model", "cand"]
                                 ).exit_code == 0
        server = LoopbackLLM(arena_responder, delay_s=0.1).start()
        self.stack.append(server.stop)
        return server.base_url

    def arena_answer(self) -> Events:
        from workbench.jobs.arena import AnswerConfig

        url = self._arena(answers=False)
        return run_foreground(self.engine, "arena-answer", AnswerConfig("s", f"openai:cand@{url}", concurrency=2))

    def arena_judge(self) -> Events:
        from workbench.jobs.arena import JudgeConfig

        url = self._arena(answers=True)
        return run_foreground(self.engine, "arena-judge", JudgeConfig("s", "cand", f"openai:judge@{url}", concurrency=2))


    def codeopt_sample(self) -> Events:
        from stores.execution.problems import add_problems
        from tests.codeopt_fixtures import PolicyStandIn, demo_problems
        from workbench.jobs.codeopt import SamplingRun

        add_problems(self.engine, demo_problems(6))
        server = LoopbackLLM(PolicyStandIn(), delay_s=0.1).start()
        self.stack.append(server.stop)
        return run_foreground(self.engine, "codeopt-sample", SamplingRun(
            model=f"openai:policy@{server.base_url}", samples_per_problem=10, concurrency=2))

    def codeopt_execute(self) -> Events:
        from core.execution.sandbox import SandboxLimits, TimingPolicy
        from tests.codeopt_fixtures import demo_problems, seed_samples
        from workbench.jobs.codeopt import ExecutionRun

        seed_samples(self.engine, demo_problems(3), 10)
        return run_foreground(self.engine, "codeopt-execute", ExecutionRun(
            workers=1, limits=SandboxLimits(timeout_s=5.0), timing=TimingPolicy(budget_s=0.5)))

    def codeopt_pairs(self) -> Events:
        from tests.codeopt_fixtures import seed_codeopt
        from workbench.jobs.codeopt import PairsParams

        seed_codeopt(self.engine)
        return run_foreground(self.engine, "codeopt-pairs", PairsParams())

    def codeopt_eval(self) -> Events:
        from core.execution.sandbox import SandboxLimits, TimingPolicy
        from stores.execution.problems import add_problems
        from tests.codeopt_fixtures import PolicyStandIn, demo_problems
        from workbench.jobs.codeopt import ExecutionRun, PolicyEvalRun, SamplingRun

        add_problems(self.engine, demo_problems(4))
        server = LoopbackLLM(PolicyStandIn(), delay_s=0.1).start()
        self.stack.append(server.stop)
        sampling = SamplingRun(model=f"openai:policy@{server.base_url}", samples_per_problem=4, concurrency=2)
        execution = ExecutionRun(workers=1, limits=SandboxLimits(timeout_s=5.0), timing=TimingPolicy(budget_s=0.5))
        return run_foreground(self.engine, "codeopt-eval", PolicyEvalRun(sampling, ks=(1,), execution=execution))


NEEDS_TORCH = {"train", "merge"}
# Every kind on SQLite; on PostgreSQL the kinds whose runners write the most (the lifecycle itself
# is the same code on both).
ON_POSTGRESQL = ("mine", "synth", "analyse", "eval", "pipeline", "codeopt-execute")
CASES = [pytest.param(kind, "sqlite", id=kind) for kind in KINDS] + [
    pytest.param(kind, "postgresql", id=f"{kind}-postgresql", marks=pytest.mark.postgres) for kind in ON_POSTGRESQL]


@pytest.fixture
def store_engine(request: pytest.FixtureRequest, db_path: Path) -> Iterator[Engine]:
    url = str(db_path) if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))
    engine = make_engine(url)
    yield engine
    engine.dispose()


@pytest.fixture
def scenarios(store_engine: Engine, tmp_path: Path, request: pytest.FixtureRequest,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[Scenarios]:
    stack: list[Callable[[], None]] = []
    yield Scenarios(store_engine, tmp_path, request, monkeypatch, stack)
    for cleanup in reversed(stack):
        cleanup()


def _first_runner_event(events: Events) -> int:
    """Start the job; return its id once its runner has yielded its first event."""
    started = next(events)
    assert isinstance(started, JobStarted)
    next(events)
    return started.job_id


def _finish(events: Events) -> None:
    for _event in events:
        pass


@pytest.mark.parametrize("ending", ["cancel", "ctrl-c", "error"])
@pytest.mark.parametrize(("kind", "store_engine"), CASES, indirect=["store_engine"])
def test_cancel_ctrl_c_and_an_error_end_every_kind_the_same_way(
    kind: str, ending: str, scenarios: Scenarios, store_engine: Engine
) -> None:
    engine = store_engine
    if kind in NEEDS_TORCH:
        pytest.importorskip("torch")
    events = scenarios.start(kind)
    job_id = _first_runner_event(events)
    if ending == "cancel":
        request_cancel(engine, job_id)
        time.sleep(1.1)  # a runner reads the flag at most once a second
        _finish(events)
    elif ending == "ctrl-c":
        with pytest.raises(KeyboardInterrupt):
            events.throw(KeyboardInterrupt())
    else:
        with pytest.raises(Exception) as raised:
            events.throw(OSError("disk full"))
        assert "disk full" in str(raised.value)
    job = get_job(engine, job_id)
    hint = job_kind(kind).resume_hint.format_map({**job.summary, "job_id": job_id})
    if ending == "cancel":
        assert (job.state, job.error) == ("cancelled", f"cancelled; {hint}")
    elif ending == "ctrl-c":
        assert (job.state, job.error) == ("cancelled", f"interrupted; {hint}")
    else:
        assert job.state == "failed" and "OSError: disk full" in (job.error or "")
        assert "\n" not in (job.error or "")
    assert job_kind(kind).load_summary(job.summary) is not None  # the counters it reported are kept
    assert "stop_reason" not in job.summary or len(job.summary) > 1
    assert list_jobs(engine, active_only=True) == []  # children of a pipeline included
