"""Training runner: resolve a recipe's datasets, queue the run, and supervise its trainer in a worker."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Generator
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.engine import Engine

from core.errors import RecipeError, WorkbenchError
from core.training.recipes import TrainRecipe, check_base_model
from core.training.revision import model_revision
from core.training.runs import (
    ACCELERATE_CONFIG,
    DEEPSPEED_CONFIG,
    EVENTS_FILE,
    LOG_FILE,
    STOP_FILE,
    TrainRunInfo,
    launch_files,
    trainer_command,
)
from stores.jobs import create_job
from stores.training.exports import export_folder
from stores.training.runs import create_train_run, get_train_run, list_train_runs, record_exit, sync_events
from workbench.jobs.registry import JobKind, register
from workbench.jobs.runner import JobContext

POLL_SECONDS = 0.5
KILL_GRACE_SECONDS = 120.0
CANCELLED_EXIT = 3  # the trainer's status after saving a checkpoint on SIGTERM


def project_root() -> Path:
    """The folder holding the `core` and `stores` packages, put on the subprocesses' PYTHONPATH."""
    return Path(__file__).resolve().parents[2]


def subprocess_env() -> dict[str, str]:
    """This environment with the project root first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project_root()), env.get("PYTHONPATH")]))
    return env


def dies_with_parent(command: list[str]) -> list[str]:
    """`command` wrapped so that the kernel sends it SIGTERM when the process that started it dies.

    A worker killed with SIGKILL must not leave a trainer or a server running: another worker will
    take the job over and start its own.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *command] if setpriv else command


@dataclass(frozen=True, slots=True)
class TrainParams:
    """A queued training run: its folder (recipe.json in it), the launcher command, and the GPU layout."""

    name: str
    run_dir: str
    recipe: str
    command: str
    gpus: int = 0
    nodes: int = 1
    launch_files: tuple[str, ...] = ()
    base_model: str | None = None  # lineage: the base model and its revision (core.training.revision)
    base_revision: str | None = None
    base_revision_kind: str | None = None


@dataclass(frozen=True, slots=True)
class TrainSummary:
    """The latest figures of a run, as its events report them."""

    step: int | None = None
    total_steps: int | None = None
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    samples_per_s: float | None = None
    eta_s: float | None = None
    gpu_mem_gb: float | None = None
    gpu_util: float | None = None
    model_tflops_per_s: float | None = None
    mfu: float | None = None
    checkpoint: str | None = None
    phase: str | None = None
    info: str | None = None
    error: str | None = None
    exit_code: int | None = None
    gpu_mem_used_gb: float | None = None
    tokens: int | None = None
    epoch: float | None = None
    token_accuracy: float | None = None
    reward_accuracy: float | None = None
    reward_margin: float | None = None
    pair_draw_epochs: int | None = None
    base_model: str | None = None
    base_revision: str | None = None
    base_revision_kind: str | None = None
    method: str | None = None


class TrainerFailed(WorkbenchError):
    """The trainer exited with an error."""


def resolve_datasets(engine: Engine, recipe: TrainRecipe) -> TrainRecipe:
    """Replace export ids by their folders (from the export stage's table) and check every path exists."""
    specs = []
    for spec in recipe.datasets:
        if spec.export_id is not None:
            spec = replace(spec, path=_export_path(engine, spec.export_id, recipe))
        path = Path(str(spec.path)).expanduser().resolve()
        if not path.exists():
            raise RecipeError(f"{recipe.source_path}: dataset {spec.label}: {path} does not exist; export it first")
        specs.append(replace(spec, path=str(path)))
    return replace(recipe, datasets=tuple(specs))


def _export_path(engine: Engine, export_id: int, recipe: TrainRecipe) -> str:
    folder = export_folder(engine, export_id)
    if folder is None:
        raise RecipeError(f"{recipe.source_path}: export {export_id} does not exist (see the exports list)")
    return folder


def queue_training(
    engine: Engine,
    recipe: TrainRecipe,
    *,
    gpus: int = 0,
    nodes: int = 1,
    hostfile: Path | None = None,
    owner: str | None = None,
) -> TrainRunInfo:
    """Record a training run and queue its job for a worker (or give it to worker `owner` at once, for a
    pipeline that runs it itself); refuse a folder another run still trains in.

    The base model and datasets are checked first: a recipe that cannot run queues nothing and
    leaves no folder or job row.
    """
    check_base_model(recipe)
    recipe = resolve_datasets(engine, recipe)
    run_dir = Path(recipe.output_dir).expanduser().resolve()
    busy = [run.job_id for run in list_train_runs(engine, limit=1000) if run.is_active and run.run_dir == str(run_dir)]
    if busy:
        raise WorkbenchError(f"run {busy[0]} is still training in {run_dir}; cancel it or change output_dir")
    command = trainer_command(recipe, run_dir, gpus=gpus, nodes=nodes, hostfile=hostfile)
    files = launch_files(recipe, run_dir, gpus=gpus, nodes=nodes, hostfile=hostfile)
    revision = model_revision(recipe.base_model, recipe.gguf_file)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / STOP_FILE).unlink(missing_ok=True)  # a cancelled run's request must not stop its resumption
        (run_dir / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2), encoding="utf-8")
        for name in (ACCELERATE_CONFIG, DEEPSPEED_CONFIG):  # an earlier run's launch files must not mislead
            (run_dir / name).unlink(missing_ok=True)
        for name, text in files.items():
            (run_dir / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"{recipe.source_path}: output_dir: cannot write {run_dir}: {exc.strerror or exc}") from None
    lineage = revision.to_lineage()
    params = TrainParams(name=recipe.name, run_dir=str(run_dir), recipe=str(recipe.source_path), command=" ".join(command),
                         gpus=gpus, nodes=nodes, launch_files=tuple(sorted(files)), **lineage)
    job_id = create_job(engine, TRAIN.name, TRAIN.title(params), TRAIN.dump_params(params),
                        state="running" if owner else "queued", worker_id=owner,
                        log_path=str(run_dir / LOG_FILE), run_key=f"train:{run_dir}")
    events = run_dir / EVENTS_FILE
    # A resumed folder already holds the earlier run's events; this run's rows start after them.
    offset = events.stat().st_size if events.is_file() else 0
    create_train_run(engine, job_id, name=recipe.name, recipe_path=str(recipe.source_path), run_dir=str(run_dir),
                     recipe=recipe.to_dict(), command=command, events_offset=offset)
    return get_train_run(engine, job_id)


def start_training(
    engine: Engine,
    recipe: TrainRecipe,
    *,
    gpus: int = 0,
    nodes: int = 1,
    hostfile: Path | None = None,
) -> TrainRunInfo:
    """Queue a training run and make sure a worker runs it (starting one, detached, if none does)."""
    from workbench.jobs.worker import ensure_worker

    run = queue_training(engine, recipe, gpus=gpus, nodes=nodes, hostfile=hostfile)
    ensure_worker(engine, TRAIN.name)
    return run


@dataclass(frozen=True, slots=True)
class TrainerStarted:
    """The trainer process runs (its events reach the store twice a second from now on)."""

    pid: int
    command: tuple[str, ...]


def run_train(ctx: JobContext, _params: TrainParams) -> Generator[TrainerStarted | TrainSummary, None, TrainSummary]:
    """Run the trainer in its own process group, copy its events into the store twice a second, turn a
    stop into SIGTERM (SIGKILL after a grace period), and end the job from its exit status."""
    engine = ctx.engine
    run = get_train_run(engine, ctx.job_id)
    run_dir = Path(run.run_dir)
    try:
        with (run_dir / LOG_FILE).open("ab") as log:
            trainer = subprocess.Popen(
                dies_with_parent(list(run.command)), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=subprocess_env(), start_new_session=True,
            )
    except OSError as exc:
        raise TrainerFailed(f"cannot start the trainer: {exc}") from None
    ctx.progress(summary=TrainSummary(), force=True)
    # A stop becomes the run folder's stop file, which every rank reads after each optimizer step
    # (launchers such as torchrun kill their workers too soon after a SIGTERM for a checkpoint);
    # SIGTERM follows after a grace period, SIGKILL after a second one.
    requested_at = 0.0
    next_signal = [signal.SIGTERM, signal.SIGKILL]
    stopping = False
    try:
        yield TrainerStarted(trainer.pid, tuple(run.command))
        while trainer.poll() is None:
            time.sleep(POLL_SECONDS)
            sync_events(engine, ctx.job_id)
            if not stopping and ctx.should_stop():
                stopping, requested_at = True, time.monotonic()
                (run_dir / STOP_FILE).touch()
            elif stopping and next_signal and time.monotonic() - requested_at > KILL_GRACE_SECONDS:
                _signal_group(trainer.pid, next_signal.pop(0))
                requested_at = time.monotonic()
    except BaseException:  # Ctrl-C in a foreground run, or an error here: the trainer must not outlive it
        _signal_group(trainer.pid, signal.SIGTERM)
        trainer.wait()
        raise
    latest = record_exit(engine, ctx.job_id, trainer.returncode)
    summary = TRAIN.load_summary(latest) or TrainSummary()
    ctx.summary, ctx.done, ctx.total = summary, summary.step or 0, summary.total_steps
    yield summary
    if trainer.returncode == 0 and latest.get("phase") == "done":
        return summary
    # A launcher reports its ranks' exit 3 (stopped with a checkpoint) as its own failure; the
    # trainer's last status says what happened.
    if stopping or trainer.returncode == CANCELLED_EXIT or latest.get("phase") == "cancelled":
        raise ctx.stop_exception()
    raise TrainerFailed(latest.get("error") or f"trainer exited with status {trainer.returncode}; "
                        f"see {run_dir / LOG_FILE}")


def _signal_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:
        pass


TRAIN = register(JobKind(
    name="train", params_type=TrainParams, summary_type=TrainSummary, run=run_train,
    title=lambda params: f"train {params.name}",
    resume_hint="its last checkpoint is in the run folder: train the same recipe again to resume",
))
