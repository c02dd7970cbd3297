"""TrainerCallbacks that report a run and keep it safe: live metrics, stop with a checkpoint, verified saves.

Every callback is rank-safe under accelerate / DeepSpeed: only the main process writes the events file
(`events.jsonl` in the run folder, which the workbench copies into the store), the stop decision is
agreed by every rank at the same optimizer step, and a checkpoint is verified once, between barriers,
with a failure raised on every rank.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from core.training.runs import EVENTS_FILE

VERIFIED_FILE = "verified.json"
CHECKPOINT_PREFIX = "checkpoint-"
# Logged TRL metrics kept beside loss and lr, under the workbench's names.
EXTRA_METRICS = {
    "mean_token_accuracy": "token_accuracy",
    "rewards/accuracies": "reward_accuracy",
    "rewards/margins": "reward_margin",
    "epoch": "epoch",
}


class CheckpointVerificationError(RuntimeError):
    """A saved checkpoint failed verification; raised on every rank."""


class EventLog:
    """Appends one JSON object a line to the run's events file, flushed at once; a no-op off the main process."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.path = run_dir / EVENTS_FILE
        self.enabled = enabled

    def write(self, kind: str, **fields: Any) -> None:
        """Record one event with a wall-clock time."""
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"type": kind, "time": time.time(), **fields}, default=str) + "\n")


def distributed() -> bool:
    """True when this process is one rank of a torch.distributed group."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def barrier() -> None:
    """Wait for every rank (nothing to wait for in a single process)."""
    if distributed():
        torch.distributed.barrier()


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is true on at least one (an all-reduce of one number)."""
    if not distributed():
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    torch.distributed.all_reduce(value, op=torch.distributed.ReduceOp.MAX)
    return bool(value.item())


def from_main(payload: Any) -> Any:
    """The main process's `payload` on every rank."""
    if not distributed():
        return payload
    box = [payload]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def verified_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint under `folder` that was saved completely and verified, oldest first."""
    found = []
    for path in folder.glob(f"{CHECKPOINT_PREFIX}*") if folder.is_dir() else []:
        step = path.name.removeprefix(CHECKPOINT_PREFIX)
        if step.isdigit() and (path / VERIFIED_FILE).is_file() and (path / "trainer_state.json").is_file():
            found.append((int(step), path))
    return sorted(found)


class GpuProbe:
    """GPU memory and utilisation of this process's device, through NVML when nvidia-ml-py is installed."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.handle: Any = None
        if device.type != "cuda":
            return
        try:
            import pynvml

            pynvml.nvmlInit()
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(self._physical_index())
        except Exception:  # no NVML (library or driver): torch's allocator figures alone
            self.handle = None

    def _physical_index(self) -> int:
        # NVML numbers every GPU of the machine; CUDA_VISIBLE_DEVICES renumbers the visible ones from 0.
        index = self.device.index or 0
        visible = [entry for entry in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if entry.strip()]
        return int(visible[index]) if index < len(visible) and visible[index].strip().isdigit() else index

    def read(self) -> dict[str, float]:
        """gpu_mem_gb (peak allocated by torch, GiB), and with NVML gpu_util (%) and gpu_mem_used_gb."""
        if self.device.type != "cuda":
            return {}
        figures = {"gpu_mem_gb": torch.cuda.max_memory_allocated(self.device) / 2**30}
        if self.handle is not None:
            import pynvml

            try:
                figures["gpu_util"] = float(pynvml.nvmlDeviceGetUtilizationRates(self.handle).gpu)
                figures["gpu_mem_used_gb"] = pynvml.nvmlDeviceGetMemoryInfo(self.handle).used / 2**30
            except Exception:  # a transient NVML error costs one reading, not the run
                pass
        return figures


class LiveMetrics(TrainerCallback):
    """Writes a `metric` event per logged step: loss, lr, grad norm, tokens/s, sequences/s, ETA, GPU, MFU."""

    def __init__(self, events: EventLog, *, peak_tflops: float = 0.0) -> None:
        self.events = events
        self.peak_tflops = peak_tflops
        self.flops_per_token = 0.0
        self.started = 0.0
        self.start_step = 0
        self.last: tuple[float, int, int] = (0.0, 0, 0)  # time, step, tokens at the previous log
        self.gpu: GpuProbe | None = None

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       model: Any = None, **kwargs: Any) -> None:
        """Remember where this session starts, and the model's training FLOPs per token."""
        self.started = time.monotonic()
        self.start_step = state.global_step
        self.last = (self.started, state.global_step, state.num_input_tokens_seen)
        self.gpu = GpuProbe(args.device)
        if model is not None:
            # 6 x parameters per token (forward and backward, attention left out); ds_numel under ZeRO-3 partitioning.
            self.flops_per_token = 6.0 * sum(getattr(p, "ds_numel", p.numel()) for p in model.parameters())

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        """Turn a training log into a metric event (the end-of-training summary log is skipped)."""
        if not logs or "loss" not in logs or not state.is_world_process_zero:
            return
        now, step, tokens = time.monotonic(), state.global_step, state.num_input_tokens_seen
        seconds = max(now - self.last[0], 1e-9)
        tokens_per_s = (tokens - self.last[2]) / seconds
        sequences = (step - self.last[1]) * args.per_device_train_batch_size * args.gradient_accumulation_steps
        elapsed = now - self.started
        fields: dict[str, Any] = {
            "step": step, "total_steps": state.max_steps, "loss": float(logs["loss"]),
            "lr": float(logs.get("learning_rate", 0.0)), "grad_norm": logs.get("grad_norm"),
            "tokens_per_s": tokens_per_s, "samples_per_s": sequences * args.world_size / seconds,
            "eta_s": (state.max_steps - step) * elapsed / max(1, step - self.start_step), "tokens": tokens,
        }
        fields.update({name: float(logs[key]) for key, name in EXTRA_METRICS.items() if key in logs})
        if self.gpu is not None:
            fields.update(self.gpu.read())
        if self.flops_per_token:
            tflops = self.flops_per_token * tokens_per_s / 1e12
            fields["model_tflops_per_s"] = tflops
            if self.peak_tflops:
                fields["mfu"] = tflops / (self.peak_tflops * args.world_size)
        self.events.write("metric", **fields)
        self.last = (now, step, tokens)


class StopOnRequest(TrainerCallback):
    """Ends training with a checkpoint once any rank is asked to stop, every rank at the same step.

    `should_stop` is read on every rank after each optimizer step; the ranks agree by an all-reduce, so
    a signal that reached only some of them (one node of several) still stops all of them together.
    """

    def __init__(self, should_stop: Callable[[], bool]) -> None:
        self.should_stop = should_stop
        self.stopped_at: int | None = None

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        """Agree on stopping; when stopping, save this step and end the loop."""
        if any_rank(self.should_stop(), args.device):
            self.stopped_at = state.global_step
            control.should_save = True
            control.should_training_stop = True


class VerifiedCheckpoints(TrainerCallback):
    """Saves at the last step and verifies every checkpoint the Trainer writes.

    After a save, all ranks wait at a barrier; the main process verifies the folder (`verify(path)`
    returns an object with ok, problems, logit_a, logit_b, tensor_count), then either writes
    `verified.json` into it or moves it aside to `checkpoint-N.unverified`, so a resume only ever starts
    from a verified checkpoint. A second barrier follows the move; the result is broadcast and a failure
    raises CheckpointVerificationError on every rank.
    """

    def __init__(self, events: EventLog, verify: Callable[[Path], Any], lineage: dict[str, Any]) -> None:
        self.events = events
        self.verify = verify
        self.lineage = lineage
        self.last_verified: Path | None = None

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    **kwargs: Any) -> None:
        """The final step is always saved, whatever the save interval."""
        if state.global_step >= state.max_steps:
            control.should_save = True

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                **kwargs: Any) -> None:
        """Verify the checkpoint just written; mark it verified or move it aside."""
        folder = Path(str(args.output_dir)) / f"{CHECKPOINT_PREFIX}{state.global_step}"
        barrier()  # every rank's shards are on disk before the main process reads the folder
        outcome: dict[str, Any] = {}
        if state.is_world_process_zero:
            outcome = self._verify_and_mark(folder, state.global_step)
        barrier()  # the folder is marked or moved before any rank goes on
        outcome = from_main(outcome)
        if not outcome["ok"]:
            raise CheckpointVerificationError(
                f"checkpoint at step {state.global_step} failed verification: {outcome['problems'][0]}"
            )
        self.last_verified = folder

    def _verify_and_mark(self, folder: Path, step: int) -> dict[str, Any]:
        try:
            report = self.verify(folder)
            ok, problems = bool(report.ok), list(report.problems)
        except Exception as exc:  # a verifier that crashes fails the checkpoint like a bad one
            report, ok, problems = None, False, [f"verification crashed: {type(exc).__name__}: {exc}"]
        if ok and report is not None:
            marker = {"step": step, "logit_a": report.logit_a, "logit_b": report.logit_b,
                      "tensors": report.tensor_count, **self.lineage}
            (folder / VERIFIED_FILE).write_text(json.dumps(marker, indent=2), encoding="utf-8")
            self.events.write("checkpoint", step=step, path=str(folder), verified=True, logit_a=report.logit_a,
                              logit_b=report.logit_b, tensors=report.tensor_count, **self.lineage)
        else:
            aside = folder.with_name(folder.name + ".unverified")
            shutil.rmtree(aside, ignore_errors=True)
            folder.rename(aside)
            self.events.write("checkpoint", step=step, path=str(aside), verified=False,
                              problems=problems[:5] or ["unknown"], **self.lineage)
        return {"ok": ok, "problems": problems or ["unknown"]}
