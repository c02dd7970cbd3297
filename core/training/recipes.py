"""Training recipes: load YAML, validate into frozen models, and derive the DeepSpeed config.

A recipe trains by supervised fine-tuning (`method: sft`: pairwise preference models as in CodeFavor,
arXiv 2410.03837 section 3, or a policy on chosen solutions) or by DPO (`method: dpo`: a policy on
(chosen, rejected) pairs, Rafailov et al. 2023, with Code-Optimise's dynamic pair selection, arXiv
2406.12502 section 3.3).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import RecipeError

METHODS = ("sft", "dpo")
MODELINGS = ("classification", "generation", "policy")
PAIR_SELECTIONS = ("dynamic", "all")
DPO_LOSSES = ("sigmoid", "ipo", "hinge", "robust")
SCHEDULES = ("cosine", "linear", "constant")
OFFLOADS = ("none", "optimizer", "all")
DEEPSPEED_STAGES = (0, 2, 3)


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """One training set: an export id or a path (JSONL file or folder), and its mixture weight."""

    path: str | None = None
    export_id: int | None = None
    weight: float = 1.0

    @property
    def label(self) -> str:
        """How the dataset is named in logs and lineage."""
        return f"export:{self.export_id}" if self.export_id is not None else str(self.path)


@dataclass(frozen=True, slots=True)
class Hyperparameters:
    """Optimisation settings; the defaults are the paper's.

    `batch_size` and `micro_batch_size` count training sequences per optimizer step and per forward pass
    on one device. With `packing` (SFT only) a sequence is a row of up to `sequence_length` tokens holding
    several examples, each attending only to itself; without it, a sequence is one example. Rows are what
    the CodeFavor reference counts too: it trains with axolotl's sample packing, micro_batch_size 4 on
    8 GPUs for its batch of 32, sequence_len 2048 (amazon-science/llm-code-preference,
    scripts/axolotl/recipe/).
    """

    batch_size: int = 32
    micro_batch_size: int = 4
    sequence_length: int = 2048
    packing: bool = True
    learning_rate: float = 5e-6
    schedule: str = "cosine"
    warmup_steps: int = 40
    epochs: float = 1.0
    max_steps: int | None = None
    bf16: bool = True
    gradient_checkpointing: bool = True
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    save_every: int = 0
    log_every: int = 1


@dataclass(frozen=True, slots=True)
class DeepSpeedSpec:
    """ZeRO stage (0 means no DeepSpeed) and what to offload to the CPU."""

    stage: int = 0
    offload: str = "none"


@dataclass(frozen=True, slots=True)
class DpoSpec:
    """DPO settings: the KL weight beta, the loss, and how pairs are drawn each epoch.

    `pair_selection: dynamic` draws one new (chosen, rejected) pair per problem (`group`) at every epoch,
    seeded (Code-Optimise, arXiv 2406.12502 section 3.3); `all` trains on every pair every epoch.
    """

    beta: float = 0.1
    loss_type: str = "sigmoid"
    pair_selection: str = "dynamic"


@dataclass(frozen=True, slots=True)
class TrainRecipe:
    """Everything a training run needs, validated."""

    name: str
    base_model: str
    modeling: str
    datasets: tuple[DatasetSpec, ...]
    output_dir: str
    hyperparameters: Hyperparameters = field(default_factory=Hyperparameters)
    deepspeed: DeepSpeedSpec = field(default_factory=DeepSpeedSpec)
    seed: int = 42
    gguf_file: str | None = None
    source_path: str | None = None
    method: str = "sft"
    dpo: DpoSpec = field(default_factory=DpoSpec)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (what the trainer subprocess reads)."""
        return asdict(self)


_TOP_KEYS = {
    "name", "base_model", "gguf_file", "method", "modeling", "datasets", "hyperparameters", "deepspeed", "dpo",
    "seed", "output_dir",
}
_HYPER_TYPES: dict[str, type] = {
    "batch_size": int, "micro_batch_size": int, "sequence_length": int, "packing": bool,
    "learning_rate": float, "schedule": str, "warmup_steps": int, "epochs": float, "max_steps": int,
    "bf16": bool, "gradient_checkpointing": bool, "weight_decay": float, "max_grad_norm": float,
    "save_every": int, "log_every": int,
}


def load_train_recipe(path: str | Path) -> TrainRecipe:
    """Read and validate a training recipe; every error names the file, the key and the fix."""
    import yaml

    recipe_path = Path(path)
    if not recipe_path.is_file():
        raise RecipeError(f"{recipe_path}: no such recipe file (pass a YAML file, e.g. recipes/train/*.yaml)")
    try:
        data = yaml.safe_load(recipe_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RecipeError(f"{recipe_path}: not valid YAML ({first})") from exc
    return parse_train_recipe(data, source=str(recipe_path))


def parse_train_recipe(data: Any, *, source: str = "<recipe>") -> TrainRecipe:
    """Validate already-parsed recipe data (a mapping) into a TrainRecipe."""
    def err(key: str, fix: str) -> RecipeError:
        return RecipeError(f"{source}: key '{key}': {fix}")

    if not isinstance(data, dict):
        raise RecipeError(f"{source}: a recipe is a YAML mapping of keys (name, base_model, modeling, ...)")
    unknown = sorted(set(map(str, data)) - _TOP_KEYS)
    if unknown:
        raise err(unknown[0], f"unknown key; allowed keys are {', '.join(sorted(_TOP_KEYS))}")
    base_model = data.get("base_model")
    if not isinstance(base_model, str) or not base_model.strip():
        raise err("base_model", "set it to a model folder or a hub id such as mistralai/Mistral-7B-Instruct-v0.2")
    method = data.get("method", "sft")
    if method not in METHODS:
        raise err("method", f"must be one of {', '.join(METHODS)}, not {method!r}")
    modeling = data.get("modeling", "policy" if method == "dpo" else "classification")
    if modeling not in MODELINGS:
        raise err("modeling", f"must be one of {', '.join(MODELINGS)}, not {modeling!r}")
    if method == "dpo" and modeling != "policy":
        raise err("modeling", "DPO trains a policy: set modeling to policy (or leave it out)")
    if data.get("dpo") is not None and method != "dpo":
        raise err("dpo", "DPO settings need method: dpo")
    datasets = _parse_datasets(data.get("datasets"), err)
    name = data.get("name") or Path(source).stem
    if not isinstance(name, str):
        raise err("name", "must be a string")
    output_dir = data.get("output_dir", f"runs/{name}")
    if not isinstance(output_dir, str) or not output_dir.strip():
        raise err("output_dir", "must be a folder path such as runs/my-run")
    gguf_file = data.get("gguf_file")
    if gguf_file is not None and not isinstance(gguf_file, str):
        raise err("gguf_file", "must be the file name of a .gguf inside base_model")
    seed = data.get("seed", 42)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise err("seed", "must be an integer")
    hyper_data = data.get("hyperparameters") or {}
    hyperparameters = _parse_hyper(hyper_data, err)
    if method == "dpo":
        if isinstance(hyper_data, dict) and hyper_data.get("packing") is True:
            raise err("hyperparameters.packing", "DPO batches whole pairs and cannot pack; set packing: false")
        hyperparameters = replace(hyperparameters, packing=False)
    return TrainRecipe(
        name=name,
        base_model=base_model,
        modeling=modeling,
        datasets=datasets,
        output_dir=output_dir,
        hyperparameters=hyperparameters,
        deepspeed=_parse_deepspeed(data.get("deepspeed") or {}, err),
        seed=seed,
        gguf_file=gguf_file,
        source_path=source,
        method=method,
        dpo=_parse_dpo(data.get("dpo") or {}, err),
    )


def _parse_datasets(value: Any, err: Any) -> tuple[DatasetSpec, ...]:
    if not isinstance(value, list) or not value:
        raise err("datasets", "list at least one dataset, e.g. '- path: exports/commit-instruct/train.jsonl'")
    specs = []
    for index, item in enumerate(value):
        key = f"datasets[{index}]"
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, dict):
            raise err(key, "each dataset is a mapping with 'path' or 'export', and optional 'weight'")
        extra = sorted(set(map(str, item)) - {"path", "export", "weight"})
        if extra:
            raise err(f"{key}.{extra[0]}", "unknown key; use path, export and weight")
        path, export_id = item.get("path"), item.get("export")
        if (path is None) == (export_id is None):
            raise err(key, "give exactly one of 'path' (JSONL file or folder) or 'export' (an export id)")
        if path is not None and (not isinstance(path, str) or not path.strip()):
            raise err(f"{key}.path", "must be a file or folder path")
        if export_id is not None and (not isinstance(export_id, int) or isinstance(export_id, bool)):
            raise err(f"{key}.export", "must be an integer export id (see `workbench export list`)")
        weight = item.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0 or not math.isfinite(weight):
            raise err(f"{key}.weight", "must be a positive number (mixture weights are relative)")
        specs.append(DatasetSpec(path=path, export_id=export_id, weight=float(weight)))
    return tuple(specs)


def _parse_hyper(value: Any, err: Any) -> Hyperparameters:
    if not isinstance(value, dict):
        raise err("hyperparameters", "must be a mapping such as {batch_size: 32, learning_rate: 5.0e-6}")
    values: dict[str, Any] = {}
    for key, raw in value.items():
        full_key = f"hyperparameters.{key}"
        expected = _HYPER_TYPES.get(str(key))
        if expected is None:
            raise err(full_key, f"unknown hyperparameter; known ones: {', '.join(sorted(_HYPER_TYPES))}")
        if raw is None and key == "max_steps":
            values[key] = None
            continue
        if expected is bool:
            if not isinstance(raw, bool):
                raise err(full_key, "must be true or false")
        elif expected is int:
            if not isinstance(raw, int) or isinstance(raw, bool):
                raise err(full_key, "must be an integer")
        elif expected is float:
            if isinstance(raw, bool) or not isinstance(raw, (int, float)):
                raise err(full_key, "must be a number (write 5.0e-6, not 5e-6, so YAML reads a number)")
            raw = float(raw)
        elif not isinstance(raw, str):
            raise err(full_key, "must be a string")
        values[str(key)] = raw
    hyper = replace(Hyperparameters(), **values)
    positive = ("batch_size", "micro_batch_size", "sequence_length", "learning_rate", "epochs", "log_every")
    for key in positive:
        if not getattr(hyper, key) > 0:
            raise err(f"hyperparameters.{key}", "must be greater than zero")
    for key in ("warmup_steps", "save_every", "weight_decay", "max_grad_norm"):
        if getattr(hyper, key) < 0:
            raise err(f"hyperparameters.{key}", "must not be negative")
    if hyper.max_steps is not None and hyper.max_steps <= 0:
        raise err("hyperparameters.max_steps", "must be a positive number of optimizer steps, or null")
    if hyper.batch_size % hyper.micro_batch_size:
        raise err("hyperparameters.micro_batch_size", f"must divide batch_size ({hyper.batch_size})")
    if hyper.schedule not in SCHEDULES:
        raise err("hyperparameters.schedule", f"must be one of {', '.join(SCHEDULES)}")
    if hyper.sequence_length < 16:
        raise err("hyperparameters.sequence_length", "must be at least 16 tokens")
    return hyper


def _parse_deepspeed(value: Any, err: Any) -> DeepSpeedSpec:
    if not isinstance(value, dict):
        raise err("deepspeed", "must be a mapping such as {stage: 3, offload: none}")
    extra = sorted(set(map(str, value)) - {"stage", "offload"})
    if extra:
        raise err(f"deepspeed.{extra[0]}", "unknown key; use stage and offload")
    stage = value.get("stage", 0)
    if stage not in DEEPSPEED_STAGES or isinstance(stage, bool):
        raise err("deepspeed.stage", "must be 0 (no DeepSpeed), 2 or 3")
    offload = value.get("offload", "none")
    if offload not in OFFLOADS:
        raise err("deepspeed.offload", f"must be one of {', '.join(OFFLOADS)}")
    if offload != "none" and stage == 0:
        raise err("deepspeed.offload", "offloading needs DeepSpeed: set deepspeed.stage to 2 or 3")
    if offload == "all" and stage != 3:
        raise err("deepspeed.offload", "offloading parameters ('all') needs stage 3")
    return DeepSpeedSpec(stage=int(stage), offload=str(offload))


def _parse_dpo(value: Any, err: Any) -> DpoSpec:
    if not isinstance(value, dict):
        raise err("dpo", "must be a mapping such as {beta: 0.1, pair_selection: dynamic}")
    extra = sorted(set(map(str, value)) - {"beta", "loss_type", "pair_selection"})
    if extra:
        raise err(f"dpo.{extra[0]}", "unknown key; use beta, loss_type and pair_selection")
    beta = value.get("beta", 0.1)
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 < beta < math.inf:
        raise err("dpo.beta", "must be a positive number (0.1 is usual)")
    loss_type = value.get("loss_type", "sigmoid")
    if loss_type not in DPO_LOSSES:
        raise err("dpo.loss_type", f"must be one of {', '.join(DPO_LOSSES)}")
    selection = value.get("pair_selection", "dynamic")
    if selection not in PAIR_SELECTIONS:
        raise err("dpo.pair_selection", f"must be one of {', '.join(PAIR_SELECTIONS)}")
    return DpoSpec(beta=float(beta), loss_type=str(loss_type), pair_selection=str(selection))


def recipe_from_dict(data: dict[str, Any]) -> TrainRecipe:
    """Rebuild a recipe from `TrainRecipe.to_dict()` output (the trainer's input file)."""
    return TrainRecipe(
        name=data["name"],
        base_model=data["base_model"],
        modeling=data["modeling"],
        datasets=tuple(DatasetSpec(**spec) for spec in data["datasets"]),
        output_dir=data["output_dir"],
        hyperparameters=Hyperparameters(**data.get("hyperparameters", {})),
        deepspeed=DeepSpeedSpec(**data.get("deepspeed", {})),
        seed=data.get("seed", 42),
        gguf_file=data.get("gguf_file"),
        source_path=data.get("source_path"),
        method=data.get("method", "sft"),
        dpo=DpoSpec(**data.get("dpo", {})),
    )


def deepspeed_config(recipe: TrainRecipe) -> dict[str, Any] | None:
    """The DeepSpeed JSON config of a recipe, or None when the recipe trains without DeepSpeed.

    Only the ZeRO stage and offloading are set here; every "auto" value (batch sizes, accumulation,
    clipping, bf16, bucket sizes) is filled by the transformers Trainer from the same recipe, so the
    two can never disagree.
    """
    spec = recipe.deepspeed
    if spec.stage == 0:
        return None
    zero: dict[str, Any] = {"stage": spec.stage, "overlap_comm": True, "contiguous_gradients": True,
                            "reduce_bucket_size": "auto"}
    if spec.offload in ("optimizer", "all"):
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if spec.offload == "all":
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    if spec.stage == 3:
        # Without this a ZeRO-3 save writes empty placeholder tensors instead of the weights.
        zero["stage3_gather_16bit_weights_on_model_save"] = True
        zero["stage3_prefetch_bucket_size"] = "auto"
        zero["stage3_param_persistence_threshold"] = "auto"
    return {
        "train_micro_batch_size_per_gpu": "auto",
        "gradient_accumulation_steps": "auto",
        "train_batch_size": "auto",
        "gradient_clipping": "auto",
        "bf16": {"enabled": "auto"},
        "zero_optimization": zero,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }
