"""Training in the detached subprocess, on TRL over the transformers Trainer and accelerate.

`train` builds an SFTTrainer (pairwise preference models as in CodeFavor, arXiv 2410.03837 section 3,
with the loss on the answer tokens only; or a policy on chosen solutions) or a DPOTrainer (a policy on
preference pairs, with Code-Optimise's dynamic pair selection), then runs it with the callbacks of
core/training/callbacks.py. Multi-GPU, multi-node and DeepSpeed ZeRO come from the accelerate launcher
and config that `core.training.runs` builds; this module never calls DeepSpeed itself. Everything it
reports goes to `events.jsonl` in the run folder, which the workbench copies into the store.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from core.errors import RecipeError
from core.training.callbacks import EventLog, LiveMetrics, StopOnRequest, VerifiedCheckpoints, verified_checkpoints
from core.training.recipes import TrainRecipe
from core.training.revision import model_revision
from core.training.runs import CHECKPOINTS_DIR


@dataclass(frozen=True, slots=True)
class TrainOutcome:
    """How a run ended: done or cancelled, at which optimizer step, with the last verified checkpoint."""

    state: str
    step: int
    total_steps: int
    checkpoint: str | None


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest verified checkpoint folder of a run (`checkpoints/checkpoint-N` with verified.json), if any."""
    found = verified_checkpoints(run_dir / CHECKPOINTS_DIR)
    return found[-1][1] if found else None


def load_model(source: str, gguf_file: str | None, dtype: torch.dtype, attention: str) -> tuple[Any, Any]:
    """Tokenizer (with a pad token) and causal LM from a folder or hub id, de-quantizing a GGUF file."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(source, **extra)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, attn_implementation=attention, **extra)
    quantizer: Any = getattr(model, "hf_quantizer", None)
    if gguf_file and quantizer is not None:
        # GGUF weights are de-quantized on load; still marked quantized, the model refuses to train and to save.
        quantizer.remove_quantization_config(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer, model


def accumulation_steps(recipe: TrainRecipe, world_size: int) -> int:
    """Micro batches per optimizer step on each rank: batch_size / (micro_batch_size x ranks), exactly."""
    hyper = recipe.hyperparameters
    per_pass = hyper.micro_batch_size * world_size
    if hyper.batch_size % per_pass:
        raise RecipeError(
            f"{recipe.source_path}: key 'hyperparameters.batch_size': {hyper.batch_size} is not a multiple of "
            f"micro_batch_size {hyper.micro_batch_size} x {world_size} processes; make it one"
        )
    return hyper.batch_size // per_pass


def trainer_arguments(recipe: TrainRecipe, run_dir: Path, world_size: int) -> dict[str, Any]:
    """TrainingArguments shared by SFT and DPO, from the recipe (built before the model, as ZeRO-3 needs)."""
    hyper = recipe.hyperparameters
    use_bf16 = hyper.bf16 and torch.cuda.is_available()
    schedule = "constant_with_warmup" if hyper.schedule == "constant" else hyper.schedule
    return {
        "output_dir": str(run_dir / CHECKPOINTS_DIR),
        "per_device_train_batch_size": hyper.micro_batch_size,
        "gradient_accumulation_steps": accumulation_steps(recipe, world_size),
        "learning_rate": hyper.learning_rate,
        "lr_scheduler_type": schedule,
        "warmup_steps": hyper.warmup_steps,
        "num_train_epochs": hyper.epochs,
        "max_steps": hyper.max_steps or -1,
        "weight_decay": hyper.weight_decay,
        "max_grad_norm": hyper.max_grad_norm,
        "bf16": use_bf16,
        # Without it a CPU process of a multi-process launch trains alone instead of as one rank of the group.
        "use_cpu": not torch.cuda.is_available(),
        **_checkpointing_arguments(hyper.gradient_checkpointing),
        "logging_strategy": "steps",
        "logging_steps": hyper.log_every,
        # Saving is driven by steps (and always at the last step, see VerifiedCheckpoints).
        "save_strategy": "steps",
        "save_steps": hyper.save_every or 10**9,
        "seed": recipe.seed,
        "data_seed": recipe.seed,
        "report_to": "none",
        "disable_tqdm": True,
        "include_num_input_tokens_seen": "non_padding",
        "dataloader_num_workers": 0,
        "ddp_find_unused_parameters": False,
    }


def _checkpointing_arguments(enabled: bool) -> dict[str, Any]:
    from dataclasses import fields

    from transformers import TrainingArguments

    # transformers 5 renamed gradient checkpointing to activation checkpointing; older releases know the first name.
    name = "activation" if "activation_checkpointing" in {f.name for f in fields(TrainingArguments)} else "gradient"
    return {f"{name}_checkpointing": enabled,
            f"{name}_checkpointing_kwargs": {"use_reentrant": False} if enabled else None}


def train(
    recipe: TrainRecipe,
    run_dir: str | Path,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    resume: bool = True,
) -> TrainOutcome:
    """Train as the recipe says, saving verified checkpoints under `run_dir/checkpoints`.

    Resumes from the newest verified checkpoint unless `resume` is False (weights, optimizer, scheduler,
    RNG and data position, through `resume_from_checkpoint`). `should_stop` is asked after every optimizer
    step; when it says stop, the run saves a checkpoint at that step and ends cancelled.
    """
    import datasets

    from core.training.verify import verify_checkpoint

    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    datasets.disable_progress_bars()  # carriage-return bars would flood train.log
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    events = EventLog(run, enabled=int(os.environ.get("RANK", "0")) == 0)
    hyper = recipe.hyperparameters
    arguments = trainer_arguments(recipe, run, world_size)
    resume_from = latest_checkpoint(run) if resume else None
    revision = model_revision(recipe.base_model, recipe.gguf_file)
    lineage = {**revision.to_lineage(), "recipe": recipe.name, "method": recipe.method}
    events.write("status", state="loading", source=recipe.base_model, world_size=world_size, **lineage)

    config_class, attention = _config_class(recipe)
    config = config_class(**arguments, **_method_arguments(recipe))
    if config.world_size != world_size:
        raise RuntimeError(f"the launcher started {world_size} processes but the Trainer sees {config.world_size}; "
                           "each would train alone")
    dtype = torch.bfloat16 if arguments["bf16"] and recipe.deepspeed.stage else torch.float32
    tokenizer, model = load_model(recipe.base_model, recipe.gguf_file, dtype, attention)
    stop = StopOnRequest(should_stop)
    verified = VerifiedCheckpoints(events, lambda folder: verify_checkpoint(folder, device=_verify_device()), lineage)
    callbacks = [LiveMetrics(events, peak_tflops=float(os.environ.get("WORKBENCH_PEAK_TFLOPS", "0") or 0)), stop,
                 verified]
    if recipe.method == "dpo":
        trainer = _dpo_trainer(recipe, config, tokenizer, model, callbacks, events, dtype, attention)
    else:
        trainer = _sft_trainer(recipe, config, tokenizer, model, callbacks, events)

    if resume_from is not None:
        step = int(resume_from.name.removeprefix("checkpoint-"))
        events.write("status", state="resumed", step=step, checkpoint=str(resume_from))
    events.write("status", state="running", step=trainer.state.global_step, sequences=len(trainer.train_dataset),
                 packing=hyper.packing, method=recipe.method)
    trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    step, total = trainer.state.global_step, trainer.state.max_steps
    checkpoint = str(verified.last_verified) if verified.last_verified else None
    if stop.stopped_at is not None:
        events.write("status", state="cancelled", step=step, checkpoint=checkpoint)
        return TrainOutcome("cancelled", step, total, checkpoint)
    events.write("status", state="done", step=step, checkpoint=checkpoint, tokens=trainer.state.num_input_tokens_seen)
    return TrainOutcome("done", step, total, checkpoint)


def _verify_device() -> str:
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"


def _config_class(recipe: TrainRecipe) -> tuple[type, str]:
    from trl import DPOConfig, SFTConfig

    from core.training.attention import packed_attention_implementation

    if recipe.method == "dpo":
        return DPOConfig, "sdpa"
    return SFTConfig, packed_attention_implementation() if recipe.hyperparameters.packing else "sdpa"


def _method_arguments(recipe: TrainRecipe) -> dict[str, Any]:
    hyper = recipe.hyperparameters
    if recipe.method == "dpo":
        # Pairs longer than sequence_length are dropped before training (never truncated), so no max_length here.
        return {"beta": recipe.dpo.beta, "loss_type": [recipe.dpo.loss_type], "max_length": None}
    # Pre-tokenized rows with a completion mask: TRL's completion-only loss. Packing is TRL's best-fit-decreasing
    # packing into padding-free rows of sequence_length tokens; over-long examples are dropped before.
    return {"completion_only_loss": True, "packing": hyper.packing, "packing_strategy": "bfd",
            "max_length": hyper.sequence_length if hyper.packing else None}


def _sft_trainer(recipe: TrainRecipe, config: Any, tokenizer: Any, model: Any, callbacks: list[Any],
                 events: EventLog) -> Any:
    from datasets import Dataset
    from trl import SFTTrainer

    from core.training.packing import completion_columns, encode
    from core.training.train_data import mix, read_examples

    datasets = []
    for spec in recipe.datasets:
        if spec.path is None:
            raise RecipeError(f"dataset {spec.label}: export ids must be resolved to paths before training")
        datasets.append((read_examples(Path(spec.path), recipe.modeling), spec.weight))
    limit = recipe.hyperparameters.sequence_length
    encoded = [encode(tokenizer, example, recipe.modeling) for example in mix(datasets, recipe.seed)]
    kept = [item for item in encoded if len(item.input_ids) <= limit]
    events.write("info", message=f"{len(kept)} examples, {len(encoded) - len(kept)} longer than {limit} tokens dropped")
    if not kept:
        raise RecipeError(f"every example is longer than sequence_length {limit}; raise it")
    return SFTTrainer(model=model, args=config, train_dataset=Dataset.from_dict(completion_columns(kept)),
                      processing_class=tokenizer, callbacks=callbacks)


def _dpo_trainer(recipe: TrainRecipe, config: Any, tokenizer: Any, model: Any, callbacks: list[Any],
                 events: EventLog, dtype: torch.dtype, attention: str) -> Any:
    from datasets import Dataset
    from trl import DPOTrainer

    from core.training.dpo import DynamicPairSampler, dynamic_dpo_trainer_class, preference_rows
    from core.training.preference import group_members, read_preference_records

    records = []
    for spec in recipe.datasets:
        if spec.path is None:
            raise RecipeError(f"dataset {spec.label}: export ids must be resolved to paths before training")
        records.extend(read_preference_records(Path(spec.path)))
    dynamic = recipe.dpo.pair_selection == "dynamic"
    trainer_class = dynamic_dpo_trainer_class() if dynamic else DPOTrainer
    # The reference model is the base model, loaded the same way (GGUF folders cannot be reloaded by name).
    _, reference = load_model(recipe.base_model, recipe.gguf_file, dtype, attention)
    trainer = trainer_class(model=model, ref_model=reference, args=config,
                            train_dataset=Dataset.from_dict(preference_rows(records, tokenizer)),
                            processing_class=tokenizer, callbacks=callbacks)
    limit = recipe.hyperparameters.sequence_length
    prepared = trainer.train_dataset
    fits = [index for index, length in enumerate(_pair_lengths(prepared)) if length <= limit]
    if not fits:
        raise RecipeError(f"every pair is longer than sequence_length {limit}; raise it")
    trainer.train_dataset = prepared.select(fits) if len(fits) < len(prepared) else prepared
    groups = list(trainer.train_dataset["group"])
    events.write("info", message=f"{len(fits)} pairs in {len(set(groups))} groups, "
                                 f"{len(prepared) - len(fits)} longer than {limit} tokens dropped")
    if dynamic:
        pair_ids = list(trainer.train_dataset["pair_id"])

        def log_draw(epoch: int, rows: list[int]) -> None:
            pairs = [{"group": groups[row], "row": row, "pair_id": None if pair_ids[row] < 0 else pair_ids[row]}
                     for row in rows]
            events.write("pair_draw", epoch=epoch, pairs=pairs)

        trainer.pair_sampler = DynamicPairSampler(group_members(groups), recipe.seed, log_draw)
    return trainer


def _pair_lengths(prepared: Any) -> list[int]:
    prompts, chosen, rejected = prepared["prompt_ids"], prepared["chosen_ids"], prepared["rejected_ids"]
    return [len(p) + max(len(c), len(r)) for p, c, r in zip(prompts, chosen, rejected)]

