"""Training recipes: load YAML, validate into frozen pydantic dataclasses, and derive the DeepSpeed config.

A recipe trains by supervised fine-tuning (`method: sft`: pairwise preference models as in CodeFavor,
arXiv 2410.03837 section 3, or a policy on chosen solutions) or by DPO (`method: dpo`: a policy on
(chosen, rejected) pairs, Rafailov et al. 2023, with Code-Optimise's dynamic pair selection, arXiv
2406.12502 section 3.3).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Field, Strict, TypeAdapter
from pydantic.dataclasses import dataclass

from core.config import FieldProblem, KeyPath, YamlDocument, read_yaml, validate_document
from core.errors import OptionError, RecipeError

METHODS = ("sft", "dpo")
MODELINGS = ("classification", "generation", "policy")
PAIR_SELECTIONS = ("dynamic", "all")
DPO_LOSSES = ("sigmoid", "ipo", "hinge", "robust")
SCHEDULES = ("cosine", "linear", "constant")
OFFLOADS = ("none", "optimizer", "all")
DEEPSPEED_STAGES = (0, 2, 3)
# Far above any model's context (2^20 tokens); a longer value is a typo, refused before a launch.
MAX_SEQUENCE_LENGTH = 1_048_576

_CONFIG = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True, allow_inf_nan=False)
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Text = Annotated[str, Strict(), Field(min_length=1)]
PositiveInt = Annotated[int, Strict(), Field(gt=0)]
NonNegativeInt = Annotated[int, Strict(), Field(ge=0)]
PositiveFloat = Annotated[float, Strict(), Field(gt=0)]
NonNegativeFloat = Annotated[float, Strict(), Field(ge=0)]


def _empty_as_default(value: Any) -> Any:
    """`hyperparameters:` or `deepspeed:` with nothing under it means the defaults."""
    return {} if value is None else value


def _path_shorthand(value: Any) -> Any:
    """A dataset given as a plain string is its path."""
    return {"path": value} if isinstance(value, str) else value


@dataclass(frozen=True, slots=True, config=_CONFIG)
class DatasetSpec:
    """One training set: an export id or a path (JSONL file or folder), and its mixture weight."""

    path: Text | None = None
    export_id: Annotated[int, Strict(), Field(ge=1)] | None = Field(default=None, alias="export")
    weight: PositiveFloat = 1.0

    def __post_init__(self) -> None:
        # A resolved recipe (what the trainer reads) keeps an export's id beside its folder.
        if self.path is None and self.export_id is None:
            raise ValueError("give exactly one of 'path' (JSONL file or folder) or 'export' (an export id)")

    @property
    def label(self) -> str:
        """How the dataset is named in logs and lineage."""
        return f"export:{self.export_id}" if self.export_id is not None else str(self.path)


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Hyperparameters:
    """Optimisation settings; the defaults are the paper's.

    CodeFavor (Liu et al., arXiv 2410.03837, Appendix) trains with full fine-tuning for 2 epochs, a
    global batch of 32, sequences of 2048 tokens packed, cosine schedule after 40 warm-up steps,
    no weight decay, gradient clipping at 1.0, bf16 and gradient checkpointing, at learning rate
    5e-6 (2e-6 for Gemma-2-9B), as the reference's Axolotl recipes state
    (amazon-science/llm-code-preference, scripts/axolotl/recipe/*/*.yaml: num_epochs, learning_rate,
    micro_batch_size x gradient_accumulation_steps x 8 GPUs, sequence_len, warmup_steps, lr_scheduler,
    weight_decay, max_grad_norm). `micro_batch_size` is a per-device memory setting, not the paper's.

    `batch_size` and `micro_batch_size` count training sequences per optimizer step and per forward pass
    on one device. With `packing` (SFT only) a sequence is a row of up to `sequence_length` tokens holding
    several examples, each attending only to itself; without it, a sequence is one example. Rows are what
    the CodeFavor reference counts too: it trains with axolotl's sample packing, micro_batch_size 4 on
    8 GPUs for its batch of 32, sequence_len 2048 (amazon-science/llm-code-preference,
    scripts/axolotl/recipe/).
    """

    batch_size: Annotated[int, Strict(), Field(gt=0, le=MAX_SEQUENCE_LENGTH)] = 32
    micro_batch_size: PositiveInt = 4
    sequence_length: Annotated[int, Strict(), Field(ge=16, le=MAX_SEQUENCE_LENGTH)] = 2048
    packing: Bool = True
    learning_rate: Annotated[float, Strict(), Field(gt=0, le=1.0)] = 5e-6
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: NonNegativeInt = 40
    epochs: Annotated[float, Strict(), Field(gt=0, le=10_000)] = 2.0
    max_steps: PositiveInt | None = None
    bf16: Bool = True
    gradient_checkpointing: Bool = True
    weight_decay: NonNegativeFloat = 0.0
    max_grad_norm: NonNegativeFloat = 1.0
    save_every: NonNegativeInt = 0
    log_every: PositiveInt = 1

    def __post_init__(self) -> None:
        if self.batch_size % self.micro_batch_size:
            raise FieldProblem("micro_batch_size", f"must divide batch_size ({self.batch_size}), "
                                                   f"not {self.micro_batch_size}")


@dataclass(frozen=True, slots=True, config=_CONFIG)
class DeepSpeedSpec:
    """ZeRO stage (0 means no DeepSpeed) and what to offload to the CPU."""

    stage: Literal[0, 2, 3] = 0
    offload: Literal["none", "optimizer", "all"] = "none"

    def __post_init__(self) -> None:
        if self.offload != "none" and self.stage == 0:
            raise FieldProblem("offload", "offloading needs DeepSpeed: set deepspeed.stage to 2 or 3")
        if self.offload == "all" and self.stage != 3:
            raise FieldProblem("offload", "offloading parameters ('all') needs stage 3")


@dataclass(frozen=True, slots=True, config=_CONFIG)
class DpoSpec:
    """DPO settings: the KL weight beta, the loss, and how pairs are drawn each epoch.

    `pair_selection: dynamic` draws one new (chosen, rejected) pair per problem (`group`) at every epoch,
    seeded (Code-Optimise, arXiv 2406.12502 section 3.3); `all` trains on every pair every epoch.
    """

    beta: PositiveFloat = 0.1
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = "sigmoid"
    pair_selection: Literal["dynamic", "all"] = "dynamic"


@dataclass(frozen=True, slots=True, config=_CONFIG)
class TrainRecipe:
    """Everything a training run needs, validated."""

    name: Text
    base_model: Text
    modeling: Literal["classification", "generation", "policy"]
    datasets: Annotated[tuple[Annotated[DatasetSpec, BeforeValidator(_path_shorthand)], ...], Field(min_length=1)]
    output_dir: Text
    hyperparameters: Annotated[Hyperparameters, BeforeValidator(_empty_as_default)] = Field(
        default_factory=Hyperparameters)
    deepspeed: Annotated[DeepSpeedSpec, BeforeValidator(_empty_as_default)] = Field(default_factory=DeepSpeedSpec)
    seed: Int = 42
    gguf_file: Text | None = None
    source_path: str | None = None
    method: Literal["sft", "dpo"] = "sft"
    dpo: Annotated[DpoSpec, BeforeValidator(_empty_as_default)] = Field(default_factory=DpoSpec)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (what the trainer subprocess reads; `recipe_from_dict` reads it back)."""
        return asdict(self)


_RECIPE = TypeAdapter(TrainRecipe)
_FILE_KEYS = tuple(f.name for f in fields(TrainRecipe) if f.name != "source_path")
_HINTS = {
    "base_model": "a model folder, or a hub id such as mistralai/Mistral-7B-Instruct-v0.2",
    "datasets": "list at least one dataset, e.g. '- path: exports/commit-instruct/train.jsonl'",
    "datasets[]": "each dataset is a mapping with 'path' or 'export', and optional 'weight'",
    "datasets[].export": "an export id (see `workbench export`)",
    "datasets[].weight": "mixture weights are relative, e.g. 1.0",
    "output_dir": "a folder path such as runs/my-run",
    "gguf_file": "the file name of a .gguf inside base_model",
    "hyperparameters.learning_rate": "e.g. 5e-6",
    "hyperparameters.sequence_length": "tokens per example, at most the model's context length",
    "hyperparameters.max_steps": "a positive number of optimizer steps, or null",
}


def _known_keys(path: KeyPath) -> tuple[str, ...]:
    if not path:
        return _FILE_KEYS
    if path[0] == "datasets":
        return ("path", "export", "weight")
    if path[0] == "hyperparameters":
        return tuple(f.name for f in fields(Hyperparameters))
    if path[0] == "deepspeed":
        return ("stage", "offload")
    if path[0] == "dpo":
        return tuple(f.name for f in fields(DpoSpec))
    return ()


def load_train_recipe(path: str | Path) -> TrainRecipe:
    """Read and validate a training recipe; every error names the file, line and column, the key and the fix.

    Raises OptionError when the file does not exist, RecipeError when it is not valid.
    """
    return _validate(read_yaml(path, what="recipe"))


def parse_train_recipe(data: Any, *, source: str = "<recipe>") -> TrainRecipe:
    """Validate already-parsed recipe data (a mapping) into a TrainRecipe."""
    return _validate(YamlDocument(source, data))


def _validate(document: YamlDocument) -> TrainRecipe:
    data = document.data
    if not isinstance(data, dict):
        raise RecipeError(f"{document.where(())}: a recipe is a YAML mapping of keys "
                          "(name, base_model, modeling, datasets, ...)")
    values = {str(key): value for key, value in data.items()}
    if "source_path" in values:
        raise RecipeError(f"{document.where(('source_path',), key=True)}: source_path: unknown key; "
                          f"known keys: {', '.join(sorted(_FILE_KEYS))}")
    # The name defaults to the file's; the output folder to runs/NAME; the modeling to classification
    # (a policy for DPO).
    if values.get("name") is None:
        values["name"] = Path(document.source).stem
    if values.get("output_dir") is None and isinstance(values["name"], str):
        values["output_dir"] = f"runs/{values['name']}"
    dpo = values.get("method") == "dpo"
    values.setdefault("modeling", "policy" if dpo else "classification")
    values["source_path"] = document.source
    hyper = values.get("hyperparameters")
    if dpo and isinstance(hyper, dict) and hyper.get("packing") is True:
        raise RecipeError(f"{document.where(('hyperparameters', 'packing'))}: hyperparameters.packing: DPO batches "
                          "whole pairs and cannot pack; set packing: false")
    if dpo:  # pairs are never packed, so the default (packing on) does not apply
        values["hyperparameters"] = {**(hyper if isinstance(hyper, dict) else {}), "packing": False}
    recipe = validate_document(_RECIPE, document, values, known_keys=_known_keys, hints=_HINTS)
    if recipe.method == "dpo" and recipe.modeling != "policy":
        raise RecipeError(f"{document.where(('modeling',))}: modeling: DPO trains a policy: set modeling to "
                          "policy (or leave it out)")
    if "dpo" in values and values["dpo"] is not None and recipe.method != "dpo":
        raise RecipeError(f"{document.where(('dpo',), key=True)}: dpo: DPO settings need method: dpo")
    for index, spec in enumerate(recipe.datasets):
        if spec.path is not None and spec.export_id is not None:
            raise RecipeError(f"{document.where(('datasets', index))}: datasets[{index}]: give exactly one of "
                              "'path' (JSONL file or folder) or 'export' (an export id)")
    return recipe


def recipe_from_dict(data: dict[str, Any]) -> TrainRecipe:
    """Rebuild and re-validate a recipe from `TrainRecipe.to_dict()` output (the trainer's input file)."""
    source = str(data.get("source_path") or "recipe.json")
    return validate_document(_RECIPE, YamlDocument(source, data), known_keys=_known_keys, hints=_HINTS)


def check_base_model(recipe: TrainRecipe) -> None:
    """Check, before a run is launched, that the base model is on this machine and takes the
    recipe's sequence length; raise RecipeError naming the recipe and the key."""
    from core.localmodels import context_length, require_local_model

    source = recipe.source_path or "<recipe>"
    folder = Path(recipe.base_model).expanduser()
    if recipe.gguf_file is not None:
        if not (folder / recipe.gguf_file).is_file():
            raise RecipeError(f"{source}: gguf_file: {recipe.gguf_file} is not a file in the base_model folder "
                              f"{recipe.base_model}")
        return
    try:
        require_local_model(recipe.base_model, what=f"{source}: base_model")
    except OptionError as exc:
        raise RecipeError(str(exc)) from None
    limit = context_length(folder) if folder.is_dir() else None
    if limit is not None and recipe.hyperparameters.sequence_length > limit:
        raise RecipeError(f"{source}: hyperparameters.sequence_length: {recipe.hyperparameters.sequence_length} "
                          f"is longer than the base model's context ({limit} tokens in its config.json)")


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
