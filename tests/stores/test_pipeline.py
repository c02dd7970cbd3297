from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from core.pipeline import load_pipeline
from stores.evaluation.runs import get_run
from stores.jobs import list_jobs
from stores.training.runs import list_checkpoints
from tests.train_fixtures import write_export, write_recipe
from tests.workbench.test_evaluation_screen import _bench
from workbench.cli import app
from workbench.jobs.pipeline import run_pipeline


def test_pipeline_trains_two_recipes_merges_and_stores_lineage(
    tiny_model_dir: Path, tmp_path: Path, engine: Engine, db_path: Path
) -> None:
    pytest.importorskip("torch")
    data = write_export(tmp_path / "train.jsonl", copies=1)
    recipes = [write_recipe(tmp_path / f"{name}.yaml", tiny_model_dir, data, tmp_path / name, max_steps=2)
               for name in ("commit", "critic")]
    pipeline = tmp_path / "p.yaml"
    bench = _bench(tmp_path / "bench")
    pipeline.write_text(yaml.safe_dump({"name": "chain", "train": [str(r) for r in recipes],
                                        "merge": {"weights": [0.5, 0.5], "out": str(tmp_path / "merged")},
                                        "eval": {"benchmark": str(bench), "limit": 2}}))
    steps = list(run_pipeline(engine, load_pipeline(pipeline)))
    assert [step.stage for step in steps] == ["train", "train", "train", "train", "merge", "eval", "eval"]
    job = list_jobs(engine, kind="pipeline")[0]
    assert job.state == "done"
    lineage = job.summary  # the summary is the lineage
    assert len(lineage["train_runs"]) == 2 and lineage["model"] == str(tmp_path / "merged")
    run = get_run(engine, lineage["eval_run"])
    assert run.state == "done" and run.done == run.total == 4 * 2 * 2  # objectives x tasks x orders
    assert run.judge_spec == f"pair-rm:{tmp_path / 'merged'}"
    assert run.lineage["checkpoints"] == lineage["checkpoints"]
    assert set(lineage["eval_scores"]) == {"correctness", "efficiency", "security", "human-preference"}
    merged = [c for c in list_checkpoints(engine) if c.kind == "merge"]
    assert merged[0].verified and merged[0].lineage["inputs"] == lineage["checkpoints"]


def test_pipeline_file_errors_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("train: [a.yaml, b.yaml]\nmerge: {weights: [1], out: x}\n")
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "wb.db"), "pipeline", str(bad)])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {bad}: key 'merge.weights': one positive number per training recipe"


def test_shipped_pipelines_load() -> None:
    root = Path(__file__).resolve().parents[2]
    specs = [load_pipeline(path) for path in sorted((root / "recipes" / "pipeline").glob("*.yaml"))]
    assert len(specs) == 10
    assert all(Path(recipe).is_file() for spec in specs for recipe in spec.train)


def test_pipeline_exports_the_pairs_its_recipes_train_on(tiny_model_dir: Path, tmp_path: Path, engine: Engine,
                                                          db_path: Path) -> None:
    pytest.importorskip("torch")
    from core.curation.pairs import NewPair
    from stores.curation.pairs import import_pairs

    import_pairs(engine, [
        NewPair(f"Sum the list {i}", "efficiency", f"def f(xs):\n    return sum(xs) + {i}\n",
                f"def f(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total + {i}\n")
        for i in range(6)
    ])
    export_dir = tmp_path / "export"
    recipe = write_recipe(tmp_path / "r.yaml", tiny_model_dir, export_dir / "classification", tmp_path / "run",
                          max_steps=2)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(yaml.safe_dump({"name": "from-export", "train": [str(recipe)],
                                        "export": {"out": str(export_dir), "formats": ["classification"]}}))
    steps = list(run_pipeline(engine, load_pipeline(pipeline)))
    assert [step.stage for step in steps] == ["export", "train", "train", "eval"]
    lineage = list_jobs(engine, kind="pipeline")[0].summary  # the summary is the lineage
    assert lineage["export"]["out"] == str(export_dir) and len(lineage["train_runs"]) == 1
    assert (export_dir / "classification" / "train.jsonl").is_file()
