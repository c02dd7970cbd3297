"""Training runs as plain data, and how the trainer is launched: plain python on one device, otherwise
accelerate's launcher with an accelerate config (DDP, or DeepSpeed ZeRO-2/3 from a DeepSpeed config,
across nodes from a hostfile), both written into the run folder so `train show` can name them.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.errors import OptionError
from core.training.recipes import TrainRecipe, deepspeed_config

TRAINER_MODULE = "core.training.train_main"
LAUNCHER_MODULE = "accelerate.commands.launch"
LOG_FILE = "train.log"
EVENTS_FILE = "events.jsonl"
CHECKPOINTS_DIR = "checkpoints"
# Written by the watcher to ask every rank to stop at its next optimizer step, on any node that shares the folder.
STOP_FILE = "stop-requested"
ACCELERATE_CONFIG = "accelerate.yaml"
DEEPSPEED_CONFIG = "deepspeed.json"


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
    lineage: dict[str, Any] = field(default_factory=dict)

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


def _check_launch(recipe: TrainRecipe, gpus: int, nodes: int, hostfile: Path | None) -> None:
    if gpus < 0 or nodes < 1:
        raise OptionError("--gpus must be 0 or more and --nodes 1 or more")
    if nodes > 1 and recipe.deepspeed.stage == 0:
        raise OptionError(
            f"{recipe.source_path}: key 'deepspeed.stage': {nodes} nodes are launched by DeepSpeed's launcher; "
            "set deepspeed.stage to 2 or 3 (stage 0 trains on the GPUs of one node)"
        )
    if nodes > 1 and hostfile is None:
        raise OptionError(f"{nodes} nodes need --hostfile (one 'host slots=N' line per node)")
    if hostfile is not None and not hostfile.expanduser().is_file():
        raise OptionError(f"--hostfile {hostfile}: no such file")
    hyper, processes = recipe.hyperparameters, max(1, gpus) * nodes
    if hyper.batch_size % (hyper.micro_batch_size * processes):
        raise OptionError(
            f"{recipe.source_path}: key 'hyperparameters.batch_size': {hyper.batch_size} is not a multiple of "
            f"micro_batch_size {hyper.micro_batch_size} x {processes} processes; change one of them or --gpus"
        )
    if recipe.deepspeed.stage and importlib.util.find_spec("deepspeed") is None:
        raise OptionError(
            f"{recipe.source_path}: deepspeed.stage is {recipe.deepspeed.stage} but DeepSpeed is not installed; "
            "pip install deepspeed (the gpu extra), or set deepspeed.stage to 0"
        )


def uses_launcher(recipe: TrainRecipe, gpus: int, nodes: int) -> bool:
    """True when the run needs accelerate's launcher: several processes, or DeepSpeed."""
    return gpus > 1 or nodes > 1 or recipe.deepspeed.stage > 0


def launch_files(
    recipe: TrainRecipe, run_dir: Path, *, gpus: int = 0, nodes: int = 1, hostfile: Path | None = None
) -> dict[str, str]:
    """The launcher's files for a run, by file name in `run_dir`: accelerate.yaml, and deepspeed.json for ZeRO.

    None for a single-process run without DeepSpeed. Multi-node runs use DeepSpeed's pdsh launcher over
    the hostfile, so the run folder must be on storage every node shares.
    """
    _check_launch(recipe, gpus, nodes, hostfile)
    if not uses_launcher(recipe, gpus, nodes):
        return {}
    processes = max(1, gpus) * nodes
    config: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE", "num_machines": nodes, "num_processes": processes,
        "machine_rank": 0, "main_training_function": "main", "use_cpu": False, "rdzv_backend": "static",
        "same_network": True,
    }
    files: dict[str, str] = {}
    ds_config = deepspeed_config(recipe)
    if ds_config is None:
        config["distributed_type"] = "MULTI_GPU"
        config["mixed_precision"] = "bf16" if recipe.hyperparameters.bf16 else "no"
    else:
        config["distributed_type"] = "DEEPSPEED"
        deepspeed: dict[str, Any] = {"deepspeed_config_file": str(run_dir / DEEPSPEED_CONFIG),
                                     "zero3_init_flag": recipe.deepspeed.stage == 3}
        if nodes > 1:
            deepspeed.update(deepspeed_multinode_launcher="pdsh",
                             deepspeed_hostfile=str(Path(str(hostfile)).expanduser().resolve()))
        config["deepspeed_config"] = deepspeed
        files[DEEPSPEED_CONFIG] = json.dumps(ds_config, indent=2) + "\n"
    # JSON is valid YAML, and needs no YAML writer here.
    files[ACCELERATE_CONFIG] = json.dumps(config, indent=2) + "\n"
    return files


def trainer_command(
    recipe: TrainRecipe,
    run_dir: Path,
    *,
    gpus: int = 0,
    nodes: int = 1,
    hostfile: Path | None = None,
    python: str = sys.executable,
) -> list[str]:
    """The command that starts the trainer: plain python for one process, else accelerate's launcher.

    The launcher reads `run_dir/accelerate.yaml` (see `launch_files`), so the command and the files
    together say exactly how the run is distributed.
    """
    _check_launch(recipe, gpus, nodes, hostfile)
    if not uses_launcher(recipe, gpus, nodes):
        return [python, "-m", TRAINER_MODULE, str(run_dir)]
    return [python, "-m", LAUNCHER_MODULE, "--config_file", str(run_dir / ACCELERATE_CONFIG),
            "--module", TRAINER_MODULE, str(run_dir)]
