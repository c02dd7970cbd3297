from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from core.curation.rules import parse_filter
from core.pipeline import load_pipeline
from stores.curation.pairs import list_pairs
from stores.evaluation.runs import get_run
from stores.jobs import list_jobs
from stores.training.runs import list_checkpoints
from tests.conftest import GitRepo
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
    assert result.stderr.strip() == (f"error: {bad}:2:18: merge.weights: one positive number per training recipe (2), "
                                     "not 1")


def test_pipeline_export_folder_that_is_not_an_export_is_refused_before_any_stage(tmp_path: Path) -> None:
    """D2: the export stage replaces only an earlier export; a folder of other files is refused up front."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    pipeline = tmp_path / "p.yaml"
    (tmp_path / "model").mkdir()
    recipe = write_recipe(tmp_path / "r.yaml", tmp_path / "model", out / "classification", tmp_path / "run")
    pipeline.write_text(yaml.safe_dump({"name": "x", "train": [str(recipe)], "export": {"out": str(out)}}))
    result = CliRunner().invoke(app, ["--db", str(tmp_path / "wb.db"), "pipeline", str(pipeline)])
    assert result.exit_code == 1 and "export.out" in result.stderr and "is not a workbench export" in result.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and not (tmp_path / "wb.db").exists()


def test_shipped_pipelines_load() -> None:
    root = Path(__file__).resolve().parents[2]
    specs = [load_pipeline(path) for path in sorted((root / "recipes" / "pipeline").glob("*.yaml"))]
    assert len(specs) == len(list((root / "recipes" / "pipeline").glob("*.yaml"))) >= 10
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


_FUNCTIONS = '''def first_index(items, target):
    """Return the index of target in items, or -1."""
    for index in range(len(items)):
        if items[index] == target:
            return index
    return -1


def unique(values):
    """Return the values without repeats, in order."""
    seen = set()
    out = []
    for value in values:
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out


def f(xs):
    total = 0
    for x in xs:
        if x > 0:
            total += x
    return total
'''


def _bench_with(folder: Path, code: str) -> Path:
    """A four-objective benchmark whose tasks' first choice is `code`."""
    import gzip

    from core.evaluation.bench import OBJECTIVES, objective_file

    folder.mkdir()
    for objective in OBJECTIVES:
        records = [{"task_id": f"{objective}/{n}", "instruction": "Sum the positive values",
                    "choices": [code, f"def f(xs):\n    return {n}\n"], "gt_choice": 0} for n in range(2)]
        (folder / objective_file(objective)).write_bytes(gzip.compress("".join(json.dumps(r) + "\n"
                                                                               for r in records).encode()))
    return folder


def test_pipeline_makes_offline_pairs_curates_and_keeps_contaminated_pairs_out_of_the_export(
    make_repo: Callable[[str], GitRepo], tiny_model_dir: Path, tmp_path: Path, engine: Engine, db_path: Path
) -> None:
    """sources -> curate -> export -> train -> eval in one pipeline (#18): a pair whose code is a benchmark
    task's (`f` is the benchmark's first choice) is flagged and never reaches the training set."""
    pytest.importorskip("torch")
    repo = make_repo("src")
    repo.commit("start", {"lib.py": "def placeholder():\n    return 0\n"})
    repo.commit("functions", {"lib.py": _FUNCTIONS})
    export_dir = tmp_path / "export"
    recipe = write_recipe(tmp_path / "r.yaml", tiny_model_dir, export_dir / "classification", tmp_path / "run",
                          max_steps=2)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(yaml.safe_dump({
        "name": "quality", "train": [str(recipe)],
        "sources": {"mine": [{"path": str(repo.path)}], "mutation": {"objectives": ["correctness", "efficiency"]},
                    "commit_signal": {}},
        "curate": {"dedupe": True, "decontaminate": True, "contamination_threshold": 80},
        "export": {"out": str(export_dir), "formats": ["classification"]},
        "eval": {"benchmark": str(_bench_with(tmp_path / "bench", _FUNCTIONS.split("\n\n\n")[-1])), "limit": 1,
                 "objectives": ["security"]},
    }))
    steps = list(run_pipeline(engine, load_pipeline(pipeline), db_url=str(db_path)))
    assert [s.stage for s in steps] == ["mine", "mutation", "commit-signal", "analyse", "dedupe", "decontaminate",
                                        "export", "train", "train", "eval", "eval"]
    lineage = list_jobs(engine, kind="pipeline")[0].summary  # the pipeline job's summary is its lineage
    made = lineage["sources"]["mutation"]["stored"]
    flagged = lineage["curate"]["flagged"]
    assert made >= 3 and flagged >= 1  # `f` is the benchmark's code: its pairs are flagged
    rows = [json.loads(line) for split in ("train", "validation")
            for line in (export_dir / "classification" / f"{split}.jsonl").read_text().splitlines() if line]
    exported = {row["pair_id"] for row in rows}
    flagged_ids = {pair.id for pair in list_pairs(engine, parse_filter("status=flagged"))}
    assert flagged_ids and not exported & flagged_ids
    assert len(exported) == made - flagged - lineage["curate"]["duplicates"]
    run = get_run(engine, lineage["eval_run"])
    assert run.orders == "both" and run.objectives == ("security",) and run.done == run.total == 2
    assert set(lineage["eval_consistency"]) == {"security"}
