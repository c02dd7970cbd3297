"""The training loop that runs in the detached subprocess: pack, train, checkpoint, verify, resume.

It needs only torch and transformers (DeepSpeed when the recipe asks for it) and reports through
`events.jsonl` in the run folder, one JSON object a line, which the workbench copies into the store.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.errors import RecipeError
from core.training.packing import Encoded, encode, micro_batches, summed_target_loss
from core.training.recipes import TrainRecipe, deepspeed_config
from core.training.train_data import mix, read_examples

EVENTS_FILE = "events.jsonl"
STATE_FILE = "trainer_state.json"


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    """How a run ended: done, cancelled or failed, with the last verified checkpoint."""

    state: str
    step: int
    total_steps: int
    checkpoint: str | None
    error: str | None = None


class EventLog:
    """Appends one JSON object a line to the run's events file, flushed at once."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.path = run_dir / EVENTS_FILE
        self.enabled = enabled

    def write(self, kind: str, **fields: Any) -> None:
        """Record one event with a wall-clock time."""
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"type": kind, "time": time.time(), **fields}, default=str) + "\n")


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint folder (one with a trainer state) of a run, if any."""
    folder = run_dir / "checkpoints"
    steps = []
    for path in folder.glob("step-*") if folder.is_dir() else []:
        if (path / STATE_FILE).is_file() and path.name.removeprefix("step-").isdigit():
            steps.append((int(path.name.removeprefix("step-")), path))
    return max(steps)[1] if steps else None


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def _load_model(source: str, gguf_file: str | None, dtype: torch.dtype) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(source, **extra)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **extra)
    if gguf_file:
        # GGUF weights are de-quantized on load; without this the model refuses to save_pretrained.
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


def _encode_all(recipe: TrainRecipe, tokenizer: Any, events: EventLog) -> list[Encoded]:
    datasets = []
    for spec in recipe.datasets:
        if spec.path is None:
            raise RecipeError(f"dataset {spec.label}: export ids must be resolved to paths before training")
        datasets.append((read_examples(Path(spec.path), recipe.modeling), spec.weight))
    examples = mix(datasets, recipe.seed)
    limit = recipe.hyperparameters.sequence_length
    encoded = [encode(tokenizer, example, recipe.modeling) for example in examples]
    kept = [item for item in encoded if len(item.input_ids) <= limit]
    events.write("info", message=f"{len(kept)} examples, {len(encoded) - len(kept)} longer than {limit} tokens dropped")
    if not kept:
        raise RecipeError(f"every example is longer than sequence_length {limit}; raise it")
    return kept


def _step_indices(example_count: int, batch_size: int, step: int, seed: int) -> list[int]:
    """The examples of optimizer step `step`: epochs are seeded shuffles, so a resume sees the same order."""
    per_epoch = max(1, example_count // batch_size)
    epoch, index = divmod(step, per_epoch)
    order = list(range(example_count))
    random.Random(seed + epoch).shuffle(order)
    return order[index * batch_size:(index + 1) * batch_size]


def _gpu_stats(device: torch.device) -> dict[str, float]:
    if device.type != "cuda":
        return {}
    stats = {"gpu_mem_gb": torch.cuda.max_memory_allocated(device) / 2**30}
    try:
        stats["gpu_util"] = float(torch.cuda.utilization(device))
    except Exception:  # needs pynvml; the panel shows memory alone without it
        pass
    return stats


def train(
    recipe: TrainRecipe,
    run_dir: str | Path,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    resume: bool = True,
) -> TrainOutcome:
    """Train a pairwise model as the recipe says, saving verified checkpoints under `run_dir`."""
    from transformers import get_scheduler

    from core.training.verify import verify_checkpoint

    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    events = EventLog(run, enabled=rank == 0)
    hyper = recipe.hyperparameters
    ds_config = deepspeed_config(recipe, world)
    if world > 1 and ds_config is None:
        raise RecipeError(f"{recipe.source_path}: key 'deepspeed.stage': multi-GPU runs need stage 2 or 3")
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu")
    use_bf16 = hyper.bf16 and device.type == "cuda"
    _seed_everything(recipe.seed)

    resume_from = latest_checkpoint(run) if resume else None
    source = str(resume_from) if resume_from else recipe.base_model
    gguf = None if resume_from else recipe.gguf_file
    events.write("status", state="loading", source=source, device=str(device), world_size=world)
    tokenizer, model = _load_model(source, gguf, torch.bfloat16 if use_bf16 else torch.float32)
    if hyper.gradient_checkpointing:
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.config.use_cache = False
    items = _encode_all(recipe, tokenizer, events)
    per_epoch = max(1, len(items) // hyper.batch_size)
    total_steps = hyper.max_steps or max(1, math.ceil(per_epoch * hyper.epochs))

    optimizer = torch.optim.AdamW(model.parameters(), lr=hyper.learning_rate, weight_decay=hyper.weight_decay)
    scheduler = get_scheduler(
        hyper.schedule if hyper.schedule != "constant" else "constant_with_warmup",
        optimizer=optimizer, num_warmup_steps=hyper.warmup_steps, num_training_steps=total_steps,
    )
    # Model FLOPs per token of a training step (forward + backward, attention left out): 6 x parameters.
    # Counted before DeepSpeed, whose ZeRO-3 partitioning leaves empty parameters on each rank.
    flops_per_token = 6 * sum(p.numel() for p in model.parameters())
    engine = None
    if ds_config is not None:
        import deepspeed

        engine, optimizer, _, scheduler = deepspeed.initialize(
            model=model, optimizer=optimizer, lr_scheduler=scheduler, config=ds_config
        )
    else:
        model.to(device)

    start_step = 0
    if resume_from is not None:
        start_step = _restore_state(resume_from, optimizer, scheduler, engine)
        events.write("status", state="resumed", step=start_step, checkpoint=str(resume_from))
    events.write("status", state="running", step=start_step, total_steps=total_steps,
                 examples=len(items), packing=hyper.packing)

    trained = engine.module if engine is not None else model
    trained.train()
    peak_tflops = float(os.environ.get("WORKBENCH_PEAK_TFLOPS", "0") or 0)

    def save(at_step: int) -> str:
        return _save(run, at_step, trained, tokenizer, optimizer, scheduler, engine, recipe, events,
                     verify_checkpoint, device)

    started, tokens_seen, last_checkpoint = time.monotonic(), 0, None
    step = start_step
    while step < total_steps:
        if should_stop():
            last_checkpoint = save(step)
            events.write("status", state="cancelled", step=step)
            return TrainOutcome("cancelled", step, total_steps, last_checkpoint)
        step_started = time.monotonic()
        chosen = [items[i] for i in _step_indices(len(items), hyper.batch_size, step, recipe.seed)]
        shard = chosen[rank::world]
        target_total = sum(item.target_count for item in chosen)
        batches = micro_batches(shard, packing=hyper.packing, capacity=hyper.sequence_length,
                                rows_per_batch=hyper.micro_batch_size, pad_id=tokenizer.pad_token_id)
        loss_sum = 0.0
        for index, batch in enumerate(batches):
            batch = {key: value.to(device) for key, value in batch.items()}
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss = summed_target_loss(trained if engine is None else engine, batch)
            # Normalise by the whole step's answer tokens so packing, padding and sharding agree.
            scaled = loss * world / target_total
            if engine is not None:
                engine.set_gradient_accumulation_boundary(index == len(batches) - 1)
                engine.backward(scaled, scale_wrt_gas=False)
                engine.step()
            else:
                scaled.backward()
            loss_sum += float(loss.detach())
        if engine is None:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), hyper.max_grad_norm))
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
        else:
            grad_norm = float(engine.get_global_grad_norm() or 0.0)
        step += 1
        step_tokens = sum(len(item.input_ids) for item in chosen)
        tokens_seen += step_tokens
        elapsed = time.monotonic() - started
        step_seconds = time.monotonic() - step_started
        if step % hyper.log_every == 0 or step == total_steps:
            events.write(
                "metric", step=step, total_steps=total_steps, loss=loss_sum * world / target_total,  # rank 0's share
                lr=scheduler.get_last_lr()[0], grad_norm=grad_norm,
                tokens_per_s=step_tokens / step_seconds, samples_per_s=len(chosen) / step_seconds,
                eta_s=(total_steps - step) * elapsed / max(1, step - start_step), **_gpu_stats(device),
                model_tflops_per_s=flops_per_token * step_tokens / step_seconds / 1e12,
                **({"mfu": flops_per_token * step_tokens / step_seconds / 1e12 / peak_tflops} if peak_tflops else {}),
            )
        if hyper.save_every and step % hyper.save_every == 0 and step < total_steps:
            last_checkpoint = save(step)
    last_checkpoint = save(step)
    events.write("status", state="done", step=step, checkpoint=last_checkpoint, tokens=tokens_seen)
    return TrainOutcome("done", step, total_steps, last_checkpoint)


def _save(
    run: Path, step: int, model: Any, tokenizer: Any, optimizer: Any, scheduler: Any, engine: Any,
    recipe: TrainRecipe, events: EventLog, verify: Callable[..., Any], device: torch.device,
) -> str:
    target = run / "checkpoints" / f"step-{step}"
    partial = target.with_name(target.name + ".partial")
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
    if engine is not None and recipe.deepspeed.stage == 3:
        # ZeRO-3 shards every weight across ranks: gather them, or the save holds empty tensors.
        state_dict = engine._zero3_consolidated_16bit_state_dict()
    else:
        state_dict = None
    if engine is not None:
        engine.save_checkpoint(str(partial / "deepspeed"), tag="state")
    if rank != 0:
        return str(target)
    model.save_pretrained(partial, state_dict=state_dict, safe_serialization=True)
    tokenizer.save_pretrained(partial)
    if engine is None:
        torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": torch.get_rng_state()}, partial / "optimizer.pt")
    report = verify(partial, device=str(device) if device.type == "cuda" else "cpu")
    (partial / STATE_FILE).write_text(json.dumps({"step": step, "recipe": recipe.name}), encoding="utf-8")
    if not report.ok:
        events.write("checkpoint", step=step, path=str(partial), verified=False, problems=list(report.problems))
        raise RuntimeError(f"checkpoint at step {step} failed verification: {report.problems[0]}")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    events.write("checkpoint", step=step, path=str(target), verified=True,
                 logit_a=report.logit_a, logit_b=report.logit_b, tensors=report.tensor_count)
    return str(target)


def _restore_state(checkpoint: Path, optimizer: Any, scheduler: Any, engine: Any) -> int:
    state = json.loads((checkpoint / STATE_FILE).read_text(encoding="utf-8"))
    if engine is not None:
        engine.load_checkpoint(str(checkpoint / "deepspeed"), tag="state", load_module_strict=False)
    elif (checkpoint / "optimizer.pt").is_file():
        saved = torch.load(checkpoint / "optimizer.pt", weights_only=False)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
    return int(state["step"])
