"""Training runs as plain data, and the trainer command: plain python on one device, the deepspeed launcher for ZeRO."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import OptionError
from core.training.recipes import TrainRecipe

TRAINER_MODULE = "core.training.train_main"
LOG_FILE = "train.log"
EVENTS_FILE = "events.jsonl"


@dataclass(frozen=True, slots=True)
class TrainRunInfo:
    """A training run as stored: its job, recipe, folder, launcher command and latest figures."""

    job_id: int
    name: str
    state: str
    recipe_path: str
    run_dir: str
    command: tuple[str, ...]
    step: int
    total_steps: int | None
    exit_code: int | None
    error: str | None
    created_at: datetime
    latest: dict[str, Any] = field(default_factory=dict)
    datasets: tuple[str, ...] = ()

    @property
    def log_path(self) -> str:
        """Where the trainer's stdout and stderr go."""
        return str(Path(self.run_dir) / LOG_FILE)

    @property
    def is_active(self) -> bool:
        """True while the run's job is queued or running."""
        return self.state in ("queued", "running")


@dataclass(frozen=True, slots=True)
class MetricPoint:
    """One logged optimizer step."""

    step: int
    time: float
    loss: float
    lr: float
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    samples_per_s: float | None = None
    eta_s: float | None = None
    gpu_mem_gb: float | None = None
    gpu_util: float | None = None


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """A saved checkpoint (from a run or a merge), whether it verified, and where it came from."""

    id: int
    path: str
    kind: str
    job_id: int | None
    step: int | None
    verified: bool
    problems: str
    lineage: dict[str, Any]
    created_at: datetime


def trainer_command(
    recipe: TrainRecipe,
    run_dir: Path,
    *,
    gpus: int = 0,
    nodes: int = 1,
    hostfile: Path | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The command that starts the trainer: plain python, or the deepspeed launcher for ZeRO runs."""
    if gpus < 0 or nodes < 1:
        raise OptionError("--gpus must be 0 or more and --nodes 1 or more")
    if recipe.deepspeed.stage == 0:
        if gpus > 1 or nodes > 1:
            raise OptionError(
                f"{recipe.source_path}: key 'deepspeed.stage': {gpus} GPUs on {nodes} node(s) need "
                "DeepSpeed; set deepspeed.stage to 2 or 3 (stage 0 trains on one device)"
            )
        return [python, "-m", TRAINER_MODULE, str(run_dir)]
    launcher = shutil.which("deepspeed")
    if launcher is None:
        raise OptionError(
            f"{recipe.source_path}: deepspeed.stage is {recipe.deepspeed.stage} but the deepspeed "
            "launcher is not installed; pip install deepspeed, or set deepspeed.stage to 0"
        )
    command = [launcher]
    if hostfile is not None:
        command += ["--hostfile", str(hostfile)]
    if nodes > 1:
        command += ["--num_nodes", str(nodes)]
    command += ["--num_gpus", str(max(1, gpus)), "--module", TRAINER_MODULE, str(run_dir)]
    return command
