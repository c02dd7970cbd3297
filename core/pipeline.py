"""Pipeline files: which training recipes to run, how to merge their results, what to evaluate."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import RecipeError


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


def load_pipeline(path: str | Path) -> PipelineSpec:
    """Read a pipeline file (a mapping with a `train` list), or wrap a single training recipe."""
    import yaml

    pipeline_path = Path(path)
    try:
        data: Any = yaml.safe_load(pipeline_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise RecipeError(f"{pipeline_path}: no such pipeline or recipe file") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RecipeError(f"{pipeline_path}: not valid YAML") from exc
    if isinstance(data, dict) and "base_model" in data:  # a training recipe: train, then evaluate
        return PipelineSpec(pipeline_path.stem, (str(pipeline_path),), None, None, None, str(pipeline_path))
    if not isinstance(data, dict) or not isinstance(data.get("train"), list) or not data["train"]:
        raise RecipeError(f"{pipeline_path}: key 'train': list the training recipes to run")
    base = pipeline_path.parent
    train = tuple(str(_relative(base, item, pipeline_path)) for item in data["train"])
    weights, out = None, None
    merge = data.get("merge")
    if merge is not None:
        if not isinstance(merge, dict) or not isinstance(merge.get("out"), str):
            raise RecipeError(f"{pipeline_path}: key 'merge.out': give the folder for the merged model")
        raw = merge.get("weights") or [1.0] * len(train)
        if (not isinstance(raw, list) or len(raw) != len(train)
                or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 for w in raw)):
            raise RecipeError(f"{pipeline_path}: key 'merge.weights': one positive number per training recipe")
        if len(train) < 2:
            raise RecipeError(f"{pipeline_path}: key 'merge': merging needs at least two training recipes")
        weights, out = tuple(float(w) for w in raw), merge["out"]
    evaluation = data.get("eval")
    if evaluation is not None and not isinstance(evaluation, dict):
        raise RecipeError(f"{pipeline_path}: key 'eval': a mapping with 'benchmark' (a folder) and optional 'limit'")
    benchmark = (evaluation or {}).get("benchmark")
    limit = (evaluation or {}).get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise RecipeError(f"{pipeline_path}: key 'eval.limit': a positive number of tasks per objective")
    if benchmark is not None and not isinstance(benchmark, str):
        raise RecipeError(f"{pipeline_path}: key 'eval.benchmark': the CodePrefBench folder, as a path")
    export = data.get("export")
    if export is not None and (not isinstance(export, dict) or not isinstance(export.get("out"), str)):
        raise RecipeError(f"{pipeline_path}: key 'export.out': the folder the recipes read their datasets from")
    formats = (export or {}).get("formats", ["classification"])
    if not isinstance(formats, list) or not formats or not all(isinstance(f, str) for f in formats):
        raise RecipeError(f"{pipeline_path}: key 'export.formats': a list such as [classification, generation]")
    where = (export or {}).get("where")
    if where is not None and not isinstance(where, str):
        raise RecipeError(f"{pipeline_path}: key 'export.where': filter conditions as one string")
    return PipelineSpec(str(data.get("name") or pipeline_path.stem), train, weights, out, benchmark,
                        str(pipeline_path), limit, (export or {}).get("out"), tuple(formats), where)


def _relative(base: Path, item: Any, source: Path) -> Path:
    if not isinstance(item, str):
        raise RecipeError(f"{source}: key 'train': each entry is a recipe path")
    path = Path(item)
    return path if path.is_absolute() or path.exists() else base / path
