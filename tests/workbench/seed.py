"""Seeded stores for screen tests: fixed dates and texts, hostile text included."""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import insert, text
from sqlalchemy.engine import Engine

from stores.db import make_engine
from stores.jobs import create_job, finish_job
from stores.mining.tables import BlobRow, CommitRow, RepositoryRow
from tests.fixtures import HOSTILE_ALL, HOSTILE_TEXT


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def seed_commits(db_path: Path, count: int, *, with_job: bool = True, hostile: str = HOSTILE_TEXT) -> Engine:
    """A store with one repository and `count` commit records (record 1 carries `hostile` text in its
    message, author and path, and both file sides)."""
    HOSTILE_TEXT = hostile
    engine = make_engine(db_path)
    moment = datetime(2024, 5, 6, 7, 8, tzinfo=timezone.utc)
    old_text = f"def total(xs):\n    s = 0\n    for x in xs:\n        s += x\n    return s  # {HOSTILE_TEXT}\n"
    new_text = f"def total(xs):\n    return sum(xs)  # {HOSTILE_TEXT}\n"
    with engine.begin() as connection:
        connection.execute(insert(RepositoryRow.__table__), [{
            "path": "/repos/demo", "name": "demo", "license": "MIT", "head_sha": _sha("head"), "created_at": moment}])
        connection.execute(insert(BlobRow.__table__), [
            {"sha": _sha(old_text), "size": len(old_text), "text": old_text},
            {"sha": _sha(new_text), "size": len(new_text), "text": new_text},
        ])
        rows = []
        for index in range(count):
            message = f"Use sum() {HOSTILE_TEXT}\n\nBody [red]not markup[/red]\n" if index == 0 else f"change {index}\n"
            rows.append({
                "repository_id": 1, "job_id": None, "sha": _sha(f"commit {index}"),
                "parent_sha": _sha(f"commit {index - 1}"),
                "author": f"Ada {HOSTILE_TEXT}" if index == 0 else "Ada [b]Tester[/b]",
                "author_email": "ada@example.com", "authored_at": moment, "message": message,
                "path": f"src/{HOSTILE_TEXT}.py" if index == 0 else f"src/pkg/module_{index % 97}.py",
                "old_path": f"src/{HOSTILE_TEXT}.py" if index == 0 else f"src/pkg/module_{index % 97}.py",
                "old_blob": _sha(old_text), "new_blob": _sha(new_text),
                "content_key": _sha(f"key {index}"), "lines_added": 1, "lines_removed": 4, "language": "python",
            })
            if len(rows) == 5000:
                connection.execute(insert(CommitRow.__table__), rows)
                rows = []
        if rows:
            connection.execute(insert(CommitRow.__table__), rows)
    if with_job:
        job_id = create_job(engine, "mine", f"mine /repos/demo {HOSTILE_TEXT}", pid=0)
        finish_job(engine, job_id, "done", summary={"records_kept": count}, done=count)
    return engine


def big_pair(lines: int = 5000) -> tuple[str, str]:
    """(rejected, chosen) of `lines` lines each, differing every 50 lines: a pair too long to render whole."""
    rejected = [f"def f_{i}(xs):  # step {i}" if i % 10 == 0 else f"    total_{i} = sum(x * {i} for x in xs)"
                for i in range(lines)]
    chosen = [line.replace("sum(", "math.fsum(") if i % 50 == 25 else line for i, line in enumerate(rejected)]
    return "\n".join(rejected) + "\n", "\n".join(chosen) + "\n"


def seed_pairs(engine: Engine, hostile: str = HOSTILE_ALL, *, big: bool = False) -> None:
    """Six pairs (hostile text in every field of the first two), analysed; optionally a 5,000-line pair."""
    from core.curation.pairs import NewPair
    from stores.curation.pairs import import_pairs
    from workbench.jobs.curate import analyse_store

    pairs = [
        NewPair(f"Sum a list {hostile}", f"efficiency: prefer builtins {hostile}",
                f'def total(xs):\n    """Sum."""\n    return sum(xs)  # {hostile}\n',
                f"import os\n\ndef total(xs):\n    t = 0\n    for x in xs:\n        t += x\n"
                f"    os.system('echo')  # {hostile}\n    return t\n",
                feedback=hostile, source="commit-instruct"),
        NewPair(f"Read a file {hostile}", "security", "with open(p) as f:\n    data = f.read()\n",
                "data = open(p).read()\n", feedback=f"closes the file {hostile}", source="critic-evol"),
        *(NewPair(f"task {i}", "readability", f"x = {i}\n", f"x = int({i})\n", source="import") for i in range(4)),
    ]
    if big:
        rejected, chosen = big_pair()
        pairs.append(NewPair("A long module", "efficiency", chosen, rejected, source="import"))
    import_pairs(engine, pairs)
    list(analyse_store(engine, workers=1))


def seed_synthesis(engine: Engine, hostile: str = HOSTILE_ALL) -> None:
    """A finished Commit-Instruct job with two exchanges whose messages, answers and reasons are hostile."""
    import json

    from sqlmodel import Session

    from stores.synthesis.tables import ConversationRow, SynthItemRow

    job_id = create_job(engine, "synth", f"commit-instruct with critic {hostile}", pid=0)
    with Session(engine) as session:
        item = SynthItemRow(method="commit-instruct", config_key="k", subject_id=1, state="filtered",
                            reason=f"not a real improvement {hostile}", job_id=job_id)
        session.add(item)
        session.flush()
        for step in ("explain", "criteria"):
            session.add(ConversationRow(
                item_id=item.id, job_id=job_id, method="commit-instruct", step=step, role="critic",
                model=f"critic {hostile}", prompt_version="v1", cache_key=step,
                messages_json=json.dumps([{"role": "user", "content": f"Explain {hostile}"}]),
                response=f"[CRITERIA] {hostile}", outcome="filtered" if step == "criteria" else ""))
        session.commit()
    finish_job(engine, job_id, "done", done=1, summary={"done": 1, "pairs": 0, "filtered": 1, "failed": 0,
                                                         "requests": 2, "tokens": 1234})


def seed_training(engine: Engine, run_dir: Path, hostile: str = HOSTILE_ALL) -> int:
    """A cancelled training run that left only an unfinished checkpoint, with hostile name and log."""
    import json

    from sqlmodel import Session

    from stores.training.tables import TrainMetricRow, TrainRunRow

    (run_dir / "checkpoints" / "checkpoint-2").mkdir(parents=True)  # never verified: not resumable
    (run_dir / "train.log").write_text(f"step 1\n{hostile}\nstep 2\n", encoding="utf-8")
    job_id = create_job(engine, "train", f"train {hostile}", pid=0, log_path=str(run_dir / "train.log"))
    latest = {"loss": 5.0, "lr": 2e-5, "tokens_per_s": 1234.0, "gpu_mem_gb": 3.5, "phase": "running"}
    with Session(engine) as session:
        session.add(TrainRunRow(job_id=job_id, name=f"smoke {hostile}", recipe_path="r.yaml", recipe_json="{}",
                                run_dir=str(run_dir), step=2, total_steps=20, latest_json=json.dumps(latest)))
        session.commit()
        for step in (1, 2):
            session.add(TrainMetricRow(job_id=job_id, step=step, time=float(step), loss=6.0 - step, lr=2e-5))
        session.commit()
    finish_job(engine, job_id, "cancelled", done=2, summary=latest)
    return job_id


def write_bench(folder: Path, hostile: str = HOSTILE_ALL) -> Path:
    """A three-task CodePrefBench stand-in per objective, with hostile task ids, instructions and code."""
    import gzip
    import json

    from core.evaluation.bench import OBJECTIVES, objective_file

    folder.mkdir(parents=True)
    for objective in OBJECTIVES:
        records = [
            {"task_id": f"{objective}/{n} {hostile}", "instruction": f"Sum {hostile}",
             "choices": [f"def f(xs):\n    return sum(xs)  # {hostile}\n",
                         "def f(xs):\n    total = 0\n    return total * len(xs)\n"],
             "gt_choice": 0}
            for n in range(3)
        ]
        data = "".join(json.dumps(r) + "\n" for r in records).encode()
        (folder / objective_file(objective)).write_bytes(gzip.compress(data))
    return folder


def seed_evaluation(engine: Engine, bench: Path) -> None:
    """Two finished baseline runs on the benchmark at `bench`."""
    from core.evaluation.bench import OBJECTIVES, load_benchmark
    from core.evaluation.judges import make_judge
    from stores.evaluation.runs import create_run
    from workbench.jobs.evaluate import run_evaluation

    benchmark = load_benchmark(bench)
    for spec in ("baseline:shorter", "baseline:always-a"):
        judge = make_judge(spec)
        run_id = create_run(engine, judge_spec=spec, judge_kind="baseline", benchmark=benchmark,
                            objectives=OBJECTIVES, lineage=judge.lineage)
        list(run_evaluation(engine, run_id, judge, benchmark))
        judge.close()


def seed_everything(folder: Path, hostile: str = HOSTILE_ALL) -> Engine:
    """A store with hostile text in every field every screen shows: commits, pairs, conversations, jobs,
    a training run and evaluation runs."""
    engine = seed_commits(folder / "wb.db", 30, hostile=hostile)
    seed_pairs(engine, hostile)
    seed_synthesis(engine, hostile)
    seed_training(engine, folder / "run", hostile)
    failed = create_job(engine, "export", f"export to {hostile}", pid=0)
    finish_job(engine, failed, "failed", error=f"cannot write {hostile}")
    seed_evaluation(engine, write_bench(folder / "bench", hostile))
    seed_arena(engine, folder / "arena.jsonl", hostile)
    # Jobs run in the foreground got random worker ids; one fixed id keeps the snapshots stable.
    with engine.begin() as connection:
        connection.execute(text("UPDATE jobs SET worker_id = 'w-seed' WHERE worker_id IS NOT NULL"))
    return engine


def seed_arena(engine: Engine, path: Path, hostile: str) -> None:
    """An arena set whose names, categories and languages are hostile, answered by a hostile model
    and judged by a baseline judge (the Evaluation screen's arena tab)."""
    import asyncio
    import json

    from core.evaluation.arena import ImportedAnswer, read_arena_questions
    from stores.evaluation.arena import add_arena_set, import_answers
    from workbench.jobs.arena import JudgeConfig, run_judge_job

    path.write_text("".join(json.dumps({
        "id": f"q{i}", "question": f"Q{i}: {hostile}", "category": f"{hostile} {i % 2}",
        "language": f"{hostile} lang", "baseline_answer": f"base {i}"}) + "\n" for i in range(4)), encoding="utf-8")
    set_id, _ = add_arena_set(engine, f"arena {hostile}", str(path), read_arena_questions(path))
    import_answers(engine, set_id, f"model {hostile}", [ImportedAnswer(f"q{i}", "x" * (3 + i)) for i in range(4)],
                   source=f"answers {hostile}")

    async def judge() -> None:
        async for _event in run_judge_job(engine, JudgeConfig(str(set_id), f"model {hostile}", "baseline:longer")):
            pass

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # its own event loop: the seed may be called from a Pilot test's
        pool.submit(asyncio.run, judge()).result()
