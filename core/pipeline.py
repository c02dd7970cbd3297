"""Pipeline files: where pairs come from, how they are curated and exported, which training recipes to
run, how to merge their results, and what to evaluate.

Every section but `train` is optional; stages run in the order sources, curate, export, train, merge,
eval, each as the job the matching CLI command would start.
"""

from __future__ import annotations

import os
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
Objective = Literal["correctness", "efficiency", "security", "human-preference"]
MutationObjective = Literal["correctness", "security", "efficiency"]
Positive = Annotated[int, Strict(), Field(ge=1)]
Similarity = Annotated[float, Field(ge=1, le=100)]


@dataclass(frozen=True, slots=True)
class MineSource:
    """One git repository to mine (a path on this machine), with an optional rev and commit cap."""

    path: str
    rev: str | None = None
    max_commits: int | None = None


@dataclass(frozen=True, slots=True)
class SourcesSpec:
    """The offline pair sources: repositories to mine, then mutation and commit-signal pairs from them."""

    mine: tuple[MineSource, ...] = ()
    mutation_objectives: tuple[str, ...] | None = None  # None: no mutation pairs
    mutation_limit: int | None = None
    mutation_seed: int = 0
    commit_signal: bool = False
    commit_signal_limit: int | None = None


@dataclass(frozen=True, slots=True)
class CurateSpec:
    """Curation before export: analysis, exact and near dedupe, decontamination against the benchmark."""

    dedupe: bool = True
    near_threshold: float | None = 90.0
    decontaminate: bool = True
    contamination_threshold: float = 80.0


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
    sources: SourcesSpec | None = None
    curate: CurateSpec | None = None
    eval_objectives: tuple[str, ...] | None = None
    eval_orders: str = "both"


@config_dataclass(frozen=True, config=_CONFIG)
class MineEntry:
    """`sources.mine[]`: a repository path, and optionally `rev` and `max_commits`."""

    path: Text
    rev: Text | None = None
    max_commits: Positive | None = None


@config_dataclass(frozen=True, config=_CONFIG)
class MutationEntry:
    """`sources.mutation`: rule-based evolution of the mined functions (objectives, record limit, seed)."""

    objectives: Annotated[tuple[MutationObjective, ...], Field(min_length=1)] = ("correctness", "security", "efficiency")
    limit: Positive | None = None
    seed: Annotated[int, Strict(), Field(ge=0)] = 0


@config_dataclass(frozen=True, config=_CONFIG)
class CommitSignalEntry:
    """`sources.commit_signal`: pairs from commits that removed a bandit finding (record limit)."""

    limit: Positive | None = None


@config_dataclass(frozen=True, config=_CONFIG)
class SourcesSection:
    """`sources:` repositories to mine and the offline pair makers to run over them."""

    mine: tuple[MineEntry, ...] = ()
    mutation: MutationEntry | None = None
    commit_signal: CommitSignalEntry | None = None


@config_dataclass(frozen=True, config=_CONFIG)
class CurateSection:
    """`curate:` dedupe (exact, and near at `near_threshold`) and decontamination at `contamination_threshold`."""

    dedupe: Annotated[bool, Strict()] = True
    near_threshold: Similarity | None = 90.0
    decontaminate: Annotated[bool, Strict()] = True
    contamination_threshold: Similarity = 80.0


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
    objectives: Annotated[tuple[Objective, ...], Field(min_length=1)] | None = None
    orders: Literal["both", "given"] = "both"


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
    sources: SourcesSection | None = None
    curate: CurateSection | None = None

    def __post_init__(self) -> None:
        if self.curate is not None and self.curate.decontaminate and (self.eval is None or not self.eval.benchmark):
            raise FieldProblem("curate.decontaminate", "decontamination reads the benchmark named by eval.benchmark; "
                                                       "name it, or set decontaminate: false")
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
    "sources.mine": "a list of mappings with 'path' (a git repository) and optional 'rev', 'max_commits'",
    "sources.mutation.objectives": "a list such as [correctness, security, efficiency]",
    "eval.objectives": "a list such as [correctness, efficiency, security, human-preference]",
    "eval.orders": "both (the paper's protocol plus order consistency) or given",
}
_SECTIONS: dict[str, Any] = {"merge": MergeSection, "eval": EvalSection, "export": ExportSection,
                             "sources": SourcesSection, "curate": CurateSection}
_SUBSECTIONS: dict[tuple[str, str], Any] = {("sources", "mine"): MineEntry, ("sources", "mutation"): MutationEntry,
                                            ("sources", "commit_signal"): CommitSignalEntry}


def _known_keys(path: KeyPath) -> tuple[str, ...]:
    if not path:
        return tuple(f.name for f in fields(PipelineFile))
    if len(path) >= 2:
        sub = _SUBSECTIONS.get((str(path[0]), str(path[1])))
        return tuple(f.name for f in fields(sub)) if sub else ()
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
    sources = None
    if spec.sources is not None:
        mutation, signal = spec.sources.mutation, spec.sources.commit_signal
        sources = SourcesSpec(
            mine=tuple(MineSource(str(_relative(base, entry.path)), entry.rev, entry.max_commits)
                       for entry in spec.sources.mine),
            mutation_objectives=tuple(mutation.objectives) if mutation else None,
            mutation_limit=mutation.limit if mutation else None, mutation_seed=mutation.seed if mutation else 0,
            commit_signal=signal is not None, commit_signal_limit=signal.limit if signal else None,
        )
    curate = None
    if spec.curate is not None:
        curate = CurateSpec(spec.curate.dedupe, spec.curate.near_threshold, spec.curate.decontaminate,
                            spec.curate.contamination_threshold)
    return PipelineSpec(
        spec.name or pipeline_path.stem, train, weights, merge.out if merge else None,
        str(_relative(base, evaluation.benchmark)) if evaluation.benchmark else None,
        str(pipeline_path), evaluation.limit, export.out if export else None,
        tuple(export.formats) if export else ("classification",), export.where if export else None,
        sources, curate, tuple(evaluation.objectives) if evaluation.objectives else None, evaluation.orders,
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
    for source in spec.sources.mine if spec.sources else ():
        if not Path(source.path).expanduser().exists():
            raise RecipeError(f"{spec.source_path}: sources.mine: {source.path} does not exist (a git repository)")
    if spec.export_out:
        from core.training.export import check_export_folder

        try:  # the export stage replaces an earlier export there, and never a folder that is not one
            check_export_folder(spec.export_out, replace=True, what="export.out")
        except OptionError as exc:
            raise RecipeError(f"{spec.source_path}: {exc}") from None


def _relative(base: Path, item: str) -> Path:
    """`item` as written when it is absolute or exists from here, else relative to the pipeline file's folder."""
    path = Path(item)
    return path if path.is_absolute() or path.exists() else Path(os.path.normpath(base / path))
