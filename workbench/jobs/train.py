"""Training runner: resolve a recipe's datasets and start the detached watcher that runs the trainer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from sqlalchemy.engine import Engine

from core.errors import RecipeError, WorkbenchError
from core.training.recipes import TrainRecipe, check_base_model
from core.training.revision import model_revision
from core.training.runs import (
    ACCELERATE_CONFIG,
    DEEPSPEED_CONFIG,
    EVENTS_FILE,
    LOG_FILE,
    STOP_FILE,
    TrainRunInfo,
    launch_files,
    trainer_command,
)
from stores.jobs import create_job, update_job
from stores.training.exports import export_folder
from stores.training.runs import WATCH_LOG, create_train_run, get_train_run, list_train_runs


def project_root() -> Path:
    """The folder holding the `core` and `stores` packages, put on the subprocesses' PYTHONPATH."""
    return Path(__file__).resolve().parents[2]


def resolve_datasets(engine: Engine, recipe: TrainRecipe) -> TrainRecipe:
    """Replace export ids by their folders (from the export stage's table) and check every path exists."""
    specs = []
    for spec in recipe.datasets:
        if spec.export_id is not None:
            spec = replace(spec, path=_export_path(engine, spec.export_id, recipe))
        path = Path(str(spec.path)).expanduser().resolve()
        if not path.exists():
            raise RecipeError(f"{recipe.source_path}: dataset {spec.label}: {path} does not exist; export it first")
        specs.append(replace(spec, path=str(path)))
    return replace(recipe, datasets=tuple(specs))


def _export_path(engine: Engine, export_id: int, recipe: TrainRecipe) -> str:
    folder = export_folder(engine, export_id)
    if folder is None:
        raise RecipeError(f"{recipe.source_path}: export {export_id} does not exist (see the exports list)")
    return folder


def start_training(
    engine: Engine,
    recipe: TrainRecipe,
    *,
    db_url: str,
    gpus: int = 0,
    nodes: int = 1,
    hostfile: Path | None = None,
) -> TrainRunInfo:
    """Start a detached watcher that runs the trainer and copies its events into the store.

    The base model and datasets are checked first: a recipe that cannot run starts nothing and
    leaves no folder or job row.
    """
    check_base_model(recipe)
    recipe = resolve_datasets(engine, recipe)
    run_dir = Path(recipe.output_dir).expanduser().resolve()
    busy = [run.job_id for run in list_train_runs(engine, limit=1000) if run.is_active and run.run_dir == str(run_dir)]
    if busy:
        raise WorkbenchError(f"run {busy[0]} is still training in {run_dir}; cancel it or change output_dir")
    command = trainer_command(recipe, run_dir, gpus=gpus, nodes=nodes, hostfile=hostfile)
    files = launch_files(recipe, run_dir, gpus=gpus, nodes=nodes, hostfile=hostfile)
    revision = model_revision(recipe.base_model, recipe.gguf_file)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / STOP_FILE).unlink(missing_ok=True)  # a cancelled run's request must not stop its resumption
        (run_dir / "recipe.json").write_text(json.dumps(recipe.to_dict(), indent=2), encoding="utf-8")
        for name in (ACCELERATE_CONFIG, DEEPSPEED_CONFIG):  # an earlier run's launch files must not mislead
            (run_dir / name).unlink(missing_ok=True)
        for name, text in files.items():
            (run_dir / name).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise RecipeError(f"{recipe.source_path}: output_dir: cannot write {run_dir}: {exc.strerror or exc}") from None
    params = {"recipe": recipe.source_path, "run_dir": str(run_dir), "gpus": gpus, "nodes": nodes,
              "command": " ".join(command), "launch_files": sorted(files), **revision.to_lineage()}
    job_id = create_job(engine, "train", f"train {recipe.name}", params, log_path=str(run_dir / LOG_FILE))
    events = run_dir / EVENTS_FILE
    # A resumed folder already holds the earlier run's events; this run's rows start after them.
    offset = events.stat().st_size if events.is_file() else 0
    create_train_run(engine, job_id, name=recipe.name, recipe_path=str(recipe.source_path), run_dir=str(run_dir),
                     recipe=recipe.to_dict(), command=command, events_offset=offset)
    with (run_dir / WATCH_LOG).open("ab") as log:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "workbench.jobs.train_watch", "--db", db_url, str(job_id)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd(),
            env=subprocess_env(), start_new_session=True,  # outlives the terminal that started it
        )
    update_job(engine, job_id, pid=watcher.pid)
    return get_train_run(engine, job_id)


def subprocess_env() -> dict[str, str]:
    """This environment with the project root first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(project_root()), env.get("PYTHONPATH")]))
    return env
