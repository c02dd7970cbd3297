"""Pipeline files: which training recipes to run, how to merge their results, what to evaluate."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, Strict, TypeAdapter
from pydantic.dataclasses import dataclass as config_dataclass

from core.config import FieldProblem, KeyPath, read_yaml, validate_document
from core.errors import OptionError, RecipeError
from core.training.recipes import load_train_recipe

_CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)
Text = Annotated[str, Strict(), Field(min_length=1)]
ExportFormat = Literal["classification", "generation", "dpo", "chat"]


@dataclass(frozen=True, slots=True)
class PipelineSpec:
    """A chain: export pairs, train each recipe, merge the final checkpoints with weights, then evaluate."""

    name: str
    train: tuple[str, ...]
    merge_weights: tuple[float, ...] | None
    merge_out: str | None
    eval_benchmark: str | None
    source_path: str
    eval_limit: int | None = None
    export_out: str | None = None
    export_formats: tuple[str, ...] = ("classification",)
    export_where: str | None = None


@config_dataclass(frozen=True, config=_CONFIG)
class MergeSection:
    """`merge:` the folder for the merged model and one positive weight per training recipe."""

    out: Text
    weights: tuple[Annotated[float, Strict(), Field(gt=0)], ...] | None = None


@config_dataclass(frozen=True, config=_CONFIG)
class EvalSection:
    """`eval:` the CodePrefBench folder and an optional number of tasks per objective."""

    benchmark: Text | None = None
    limit: Annotated[int, Strict(), Field(ge=1)] | None = None


@config_dataclass(frozen=True, config=_CONFIG)
class ExportSection:
    """`export:` the folder the recipes read their datasets from, the formats and the pair filter."""

    out: Text
    formats: Annotated[tuple[ExportFormat, ...], Field(min_length=1)] = ("classification",)
    where: Annotated[str, Strict()] | None = None

    def __post_init__(self) -> None:
        from core.curation.rules import parse_filter

        try:
            parse_filter(self.where)
        except OptionError as exc:
            raise FieldProblem("where", str(exc)) from None


@config_dataclass(frozen=True, config=_CONFIG)
class PipelineFile:
    """A pipeline file as written."""

    train: Annotated[tuple[Text, ...], Field(min_length=1)]
    name: Text | None = None
    merge: MergeSection | None = None
    eval: EvalSection | None = None
    export: ExportSection | None = None

    def __post_init__(self) -> None:
        if self.merge is None:
            return
        if len(self.train) < 2:
            raise FieldProblem("merge", "merging needs at least two training recipes")
        if self.merge.weights is not None and len(self.merge.weights) != len(self.train):
            raise FieldProblem("merge.weights", f"one positive number per training recipe ({len(self.train)}), "
                                                f"not {len(self.merge.weights)}")


_PIPELINE = TypeAdapter(PipelineFile)
_HINTS = {
    "train": "list the training recipes to run",
    "train[]": "a recipe path",
    "merge.out": "the folder for the merged model",
    "merge.weights": "one positive number per training recipe",
    "eval": "a mapping with 'benchmark' (a folder) and optional 'limit'",
    "eval.benchmark": "the CodePrefBench folder, as a path",
    "eval.limit": "a positive number of tasks per objective",
    "export.out": "the folder the recipes read their datasets from",
    "export.formats": "a list such as [classification, generation]",
    "export.where": "filter conditions as one string",
}
_SECTIONS = {"merge": MergeSection, "eval": EvalSection, "export": ExportSection}


def _known_keys(path: KeyPath) -> tuple[str, ...]:
    if not path:
        return tuple(f.name for f in fields(PipelineFile))
    section = _SECTIONS.get(str(path[0]))
    return tuple(f.name for f in fields(section)) if section else ()


def load_pipeline(path: str | Path) -> PipelineSpec:
    """Read a pipeline file (a mapping with a `train` list), or wrap a single training recipe.

    Raises OptionError for a missing file and RecipeError, with file:line:column and key, for one
    that is not valid (a recipe file is validated as a recipe).
    """
    pipeline_path = Path(path)
    document = read_yaml(pipeline_path, what="pipeline or recipe")
    data: Any = document.data
    if isinstance(data, dict) and "base_model" in data:  # a training recipe: train, then evaluate
        load_train_recipe(pipeline_path)
        return PipelineSpec(pipeline_path.stem, (str(pipeline_path),), None, None, None, str(pipeline_path))
    if not isinstance(data, dict):
        raise RecipeError(f"{document.where(())}: a pipeline is a YAML mapping with a 'train' list of recipes")
    spec = validate_document(_PIPELINE, document, known_keys=_known_keys, hints=_HINTS)
    base = pipeline_path.parent
    train = tuple(str(_relative(base, item)) for item in spec.train)
    merge, evaluation, export = spec.merge, spec.eval or EvalSection(), spec.export
    weights = None
    if merge is not None:
        weights = tuple(float(w) for w in merge.weights) if merge.weights else (1.0,) * len(train)
    return PipelineSpec(
        spec.name or pipeline_path.stem, train, weights, merge.out if merge else None, evaluation.benchmark,
        str(pipeline_path), evaluation.limit, export.out if export else None,
        tuple(export.formats) if export else ("classification",), export.where if export else None,
    )


def check_pipeline(spec: PipelineSpec) -> None:
    """Check what a pipeline needs before any stage starts: every recipe valid, the benchmark folder present.

    Raises OptionError or RecipeError; nothing is written.
    """
    for recipe_path in spec.train:
        try:
            load_train_recipe(recipe_path)
        except OptionError as exc:
            raise RecipeError(f"{spec.source_path}: train: {exc}") from None
    if spec.eval_benchmark is not None and not Path(spec.eval_benchmark).expanduser().is_dir():
        raise RecipeError(f"{spec.source_path}: eval.benchmark: {spec.eval_benchmark} is not a folder "
                          "(the CodePrefBench folder)")


def _relative(base: Path, item: str) -> Path:
    path = Path(item)
    return path if path.is_absolute() or path.exists() else base / path
