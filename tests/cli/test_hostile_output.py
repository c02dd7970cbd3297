"""Every list and show command, on a store whose every text field holds escape sequences, C1
controls, NUL and bidirectional overrides: stdout carries none of them as raw bytes, in tables,
`show` text and `--json` alike, and error lines that quote such text are sanitized too."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import Session, SQLModel
from typer.testing import CliRunner

from core.curation.pairs import NewPair
from core.evaluation.bench import OBJECTIVES, load_benchmark, objective_file
from core.evaluation.judges import make_judge
from core.execution.metrics import policy_metrics
from core.execution.pairs import PairOptions
from core.synthesis.records import InstructionRecord
from stores.curation.pairs import import_pairs, set_status
from stores.db import make_engine
from stores.evaluation.runs import create_run
from stores.execution.evals import create_policy_eval, finish_policy_eval, problem_outcomes
from stores.jobs import create_job, finish_job
from stores.synthesis.runs import add_instructions
from stores.synthesis.tables import ConversationRow, LlmServerRow, ResponseCacheRow, SynthItemRow
from stores.tables import JobWorkerRow, WorkerRow, WorkItemRow
from stores.training.runs import create_train_run, record_checkpoint
from stores.training.tables import ExportRow, TrainMetricRow, TrainPairDrawRow
from tests.codeopt_fixtures import seed_codeopt
from tests.conftest import GIT_ENV
from tests.fixtures import HOSTILE_ALL
from workbench.cli import app
from workbench.jobs.codeopt import build_pairs
from workbench.jobs.curate import analyse_store
from workbench.jobs.evaluate import run_evaluation

runner = CliRunner()
# Raw bytes no terminal may receive from data: ESC, NUL, any C0 control but LF and TAB, DEL, C1
# controls (UTF-8 \xc2\x80-\xc2\x9f), the bidirectional overrides and isolates.
_C0 = {bytes([code]) for code in range(0x20) if code not in (0x09, 0x0A)} | {b"\x7f"}
_C1 = {chr(code).encode() for code in range(0x80, 0xA0)}
_BIDI = {chr(code).encode() for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F)}

# Columns whose values the code interprets (states, keys, joins); every other text column turns hostile.
_KEEP = {
    "state", "status", "content_hash", "sha", "old_blob", "new_blob", "content_key", "config_key", "key",
    "cache_key", "method", "objective", "task_order", "gt", "decision", "orders", "before_json", "action",
    "judge_kind", "pair_ids_hash", "chosen_norm_hash", "rejected_norm_hash", "outcome", "log_path",
    "run_dir",
    # Code-Optimise: sampling and execution states, and JSON lists of numbers the code reads back.
    "exec_state", "finish_reason", "code_hash", "samples_json", "ks_json", "problem_ids_json", "pass_at_json",
    "metrics_json",
}
_LIST_JSON = {"objectives_json", "command_json", "filter_json"}


def _unsafe(data: bytes) -> list[bytes]:
    return sorted(token for token in _C0 | _C1 | _BIDI if token in data)


def _hostile_json(column: str) -> str:
    if column in _LIST_JSON:
        return json.dumps([HOSTILE_ALL])
    if column == "messages_json":
        return json.dumps([{"role": "user", "content": HOSTILE_ALL}])
    if column == "findings_json":
        finding = {"test_id": HOSTILE_ALL, "severity": HOSTILE_ALL, "confidence": HOSTILE_ALL, "line": 1}
        return json.dumps({"chosen": [finding], "rejected": [finding]})
    if column == "objective_totals_json":
        return json.dumps({objective: 2 for objective in OBJECTIVES})
    return json.dumps({"hostile": HOSTILE_ALL, HOSTILE_ALL: HOSTILE_ALL})


def _bench(folder: Path) -> Path:
    folder.mkdir()
    for objective in OBJECTIVES:
        records = [{"task_id": f"t/{n}", "instruction": "Add.", "gt_choice": 0,
                    "choices": [f"def f():\n    return {n}\n", f"def f():\n    return -{n}\n"]} for n in range(2)]
        data = "".join(json.dumps(record) + "\n" for record in records).encode()
        (folder / objective_file(objective)).write_bytes(gzip.compress(data))
    return folder


def _seed(root: Path) -> Path:
    """A store with at least one row in every table, then every text field made hostile."""
    db = root / "wb.db"
    repo = root / "repo"
    repo.mkdir()
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, env=env, check=True)
    for index in range(3):  # no NUL in the file, which would make it binary and skipped; the overwrite adds it
        (repo / "a.py").write_text(f"x = {index}  # {HOSTILE_ALL.replace(chr(0), '')}\n", encoding="utf-8")
        subprocess.run(["git", "add", "-A"], cwd=repo, env=env, check=True)
        subprocess.run(["git", "commit", "-q", "-m", f"change {index} \x1b[31mred \u202eevil"], cwd=repo, env=env, check=True)
    assert runner.invoke(app, ["--db", str(db), "mine", str(repo)]).exit_code == 0

    engine = make_engine(db)
    import_pairs(engine, [NewPair(HOSTILE_ALL, HOSTILE_ALL, "def f():\n    return 1\n", "def f():\n    return 2\n",
                                  feedback=HOSTILE_ALL)])
    list(analyse_store(engine, workers=1))
    set_status(engine, [1], "flag", session_id="tui-session")  # a TUI session's step: review_sessions too
    add_instructions(engine, [InstructionRecord(HOSTILE_ALL)], source=HOSTILE_ALL)
    benchmark = load_benchmark(_bench(root / "bench"))
    judge = make_judge("baseline:always-a")
    run_id = create_run(engine, judge_spec="baseline:always-a", judge_kind="baseline", benchmark=benchmark,
                        objectives=OBJECTIVES, lineage=judge.lineage)
    list(run_evaluation(engine, run_id, judge, benchmark))
    run_dir = root / "run \x1b[31mred \u202eevil"  # a folder name can hold anything but NUL and '/'
    run_dir.mkdir()
    (run_dir / "train.log").write_text(f"step 1\n{HOSTILE_ALL}\n", encoding="utf-8")
    train_job = create_job(engine, "train", HOSTILE_ALL, {"recipe": HOSTILE_ALL}, log_path=str(run_dir / "train.log"))
    create_train_run(engine, train_job, name=HOSTILE_ALL, recipe_path=HOSTILE_ALL, run_dir=str(run_dir),
                     recipe={"name": HOSTILE_ALL}, command=[HOSTILE_ALL], events_offset=0)
    finish_job(engine, train_job, "failed", error=HOSTILE_ALL)
    record_checkpoint(engine, HOSTILE_ALL, "train", verified=False, job_id=train_job, problems=HOSTILE_ALL,
                      lineage={"from": HOSTILE_ALL})
    with Session(engine) as session:
        session.add(TrainMetricRow(job_id=train_job, step=1, time=1.0, loss=0.5, lr=1e-5))
        session.add(TrainPairDrawRow(job_id=train_job, epoch=0, group_key=HOSTILE_ALL, row=0, pair_id=1))
        item = SynthItemRow(method="commit-instruct", config_key="k", subject_id=1, state="failed", reason=HOSTILE_ALL)
        session.add(item)
        session.commit()
        assert item.id is not None
        session.add(ConversationRow(item_id=item.id, method="commit-instruct", step="explain", role="critic",
                                    model=HOSTILE_ALL, prompt_version="v1", cache_key="c", messages_json="[]",
                                    response=HOSTILE_ALL, outcome="failed"))
        session.add(ResponseCacheRow(key="c", model=HOSTILE_ALL, prompt_version="v1", text=HOSTILE_ALL))
        session.add(LlmServerRow(model=HOSTILE_ALL, base_url=HOSTILE_ALL, port=8000, state="stopped"))
        session.add(ExportRow(out_dir=HOSTILE_ALL, formats="dpo", pair_ids_hash="h", pair_count=1))
        session.add(WorkerRow(id="w-hostile", label=HOSTILE_ALL, kinds=HOSTILE_ALL))
        session.add(WorkItemRow(scope="eval:1", item_key=HOSTILE_ALL, worker_id="w-hostile"))
        session.add(JobWorkerRow(job_id=train_job, worker_id="w-hostile", counters_json="{}"))
        session.commit()

    engine.dispose()
    records = [{"id": f"q{i}", "question": f"Q{i}: {HOSTILE_ALL}", "category": HOSTILE_ALL, "language": "python",
                "baseline_answer": f"base {i}"} for i in range(2)]
    (root / "arena.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (root / "answers.jsonl").write_text("".join(json.dumps({"id": r["id"], "answer": f"candidate answer {r['id']}"})
                                                + "\n" for r in records), encoding="utf-8")
    for args in (["arena", "import", str(root / "arena.jsonl"), "--name", "hostile"],
                 ["arena", "import-answers", "hostile", str(root / "answers.jsonl"), "--model", "cand"],
                 ["arena", "judge", "hostile", "--candidate", "cand", "--judge", "baseline:longer"]):
        assert runner.invoke(app, ["--db", str(db), *args]).exit_code == 0, args
    engine = make_engine(db)
    problem_ids = seed_codeopt(engine, hostile=HOSTILE_ALL.replace("\x00", ""))
    assert build_pairs(engine, PairOptions()).added > 0
    eval_id = create_policy_eval(engine, job_id=None, model=HOSTILE_ALL, config_key="seedconfig",
                                 samples_per_problem=10, ks=(1, 10), problem_ids=problem_ids, selection=HOSTILE_ALL)
    outcomes = problem_outcomes(engine, "seedconfig", problem_ids)
    finish_policy_eval(engine, eval_id, "done", metrics=policy_metrics(outcomes, (1, 10)), outcomes=outcomes,
                       ks=(1, 10))

    with engine.begin() as connection:
        for table in SQLModel.metadata.sorted_tables:
            texts = [column.name for column in table.columns  # SQLModel's AutoString wraps a String
                     if isinstance(getattr(column.type, "impl", column.type), sa.String)
                     and column.name not in _KEEP and not column.primary_key]
            if not texts:
                continue
            # A per-row suffix keeps unique constraints (task ids, paths) satisfied.
            hostile = sa.literal(HOSTILE_ALL + " #") + sa.cast(sa.literal_column("rowid"), sa.String)
            values = {name: _hostile_json(name) if name.endswith("_json") else hostile for name in texts}
            connection.execute(table.update().values(**values))
        empty = [table.name for table in SQLModel.metadata.sorted_tables
                 if connection.execute(sa.select(sa.func.count()).select_from(table)).scalar_one() == 0]
    assert empty == [], f"tables without a row to make hostile: {empty}"
    engine.dispose()
    return db


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _seed(tmp_path_factory.mktemp("hostile"))


COMMANDS = [
    ["commits", "list"], ["commits", "list", "--json"], ["commits", "repos"], ["commits", "repos", "--json"],
    ["commits", "show", "1"], ["commits", "show", "1", "--side", "old"], ["commits", "show", "1", "--side", "new"],
    ["commits", "show", "1", "--json"],
    ["pairs", "list"], ["pairs", "list", "--json"], ["pairs", "show", "1"], ["pairs", "show", "1", "--json"],
    ["pairs", "stats"], ["pairs", "stats", "--json"],
    ["instructions", "list"], ["instructions", "list", "--json"],
    ["synth", "conversations"], ["synth", "conversations", "--json"],
    ["jobs", "list"], ["jobs", "list", "--json"], ["jobs", "show", "1"], ["jobs", "show", "1", "--json"],
    ["jobs", "workers", "--all"], ["jobs", "workers", "--all", "--json"],
    ["eval", "list"], ["eval", "list", "--json"], ["eval", "show", "1", "--results"],
    ["eval", "show", "1", "--results", "--json"], ["eval", "leaderboard"], ["eval", "leaderboard", "--json"],
    ["eval", "export", "--format", "md"], ["eval", "export", "--format", "csv"], ["eval", "export", "--format", "json"],
    ["eval", "export", "1", "--format", "csv"], ["eval", "export", "1", "--format", "json"],
    ["train", "list"], ["train", "list", "--json"], ["train", "checkpoints"], ["train", "checkpoints", "--json"],
    ["llm", "list"], ["llm", "list", "--json"],
    ["arena", "sets"], ["arena", "sets", "--json"], ["arena", "show", "1", "--questions"],
    ["arena", "runs"], ["arena", "scores", "1", "--judgements"], ["arena", "scores", "1", "--judgements", "--json"],
    ["arena", "leaderboard"], ["arena", "export", "1", "-f", "csv"], ["arena", "export", "1", "-f", "json"],
    ["arena", "export", "1", "--judgements", "-f", "md"],
    ["problems", "list"], ["problems", "list", "--json"], ["problems", "show", "1"], ["problems", "show", "1", "--json"],
    ["codeopt", "solutions"], ["codeopt", "solutions", "--json"], ["codeopt", "evals"], ["codeopt", "evals", "--json"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_no_control_byte_reaches_stdout(hostile_db: Path, args: list[str]) -> None:
    result = runner.invoke(app, ["--db", str(hostile_db), *args])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes.strip(), "the command printed nothing: the test would prove nothing"
    assert _unsafe(result.stdout_bytes) == []
    assert _unsafe(result.stderr_bytes) == []
    if "--json" in args:
        json.loads(result.stdout)  # still valid JSON, with the hostile text escaped, not lost
        assert "\\u001b[2J" in result.stdout


def test_train_show_and_logs_are_sanitized(hostile_db: Path) -> None:
    from stores.training.runs import list_train_runs

    run_id = list_train_runs(make_engine(hostile_db))[0].job_id
    for args in (["train", "show", str(run_id)], ["train", "show", str(run_id), "--json"],
                 ["train", "logs", str(run_id)]):
        result = runner.invoke(app, ["--db", str(hostile_db), *args])
        assert result.exit_code == 0, result.output
        assert _unsafe(result.stdout_bytes) == []
        assert ("␛[2J" in result.stdout) or ("\\u001b[2J" in result.stdout)


def test_visible_stand_ins_keep_the_text_readable(hostile_db: Path) -> None:
    shown = runner.invoke(app, ["--db", str(hostile_db), "pairs", "show", "1"]).stdout
    assert "␛[2J␛[H" in shown and "⟨U+202E⟩evil" in shown and "nul␀" in shown and "\\x9b2J" in shown
    assert "[bold]x[/bold]" in shown  # markup stays literal text


def test_error_lines_quoting_hostile_text_are_sanitized(tmp_path: Path) -> None:
    hostile_path = tmp_path / "pairs \x1b[31mred\x1b]52;c;aGk=\x07 \u202eevil.jsonl"
    result = runner.invoke(app, ["--db", str(tmp_path / "wb.db"), "pairs", "import", str(hostile_path)])
    assert result.exit_code == 2 and result.stderr.startswith("error: ")
    assert _unsafe(result.stderr_bytes) == [] and "␛[31mred" in result.stderr
    result = runner.invoke(app, ["--db", str(tmp_path / "wb.db"), "mine", str(tmp_path / "\x1b[2Jrepo\x9b")])
    assert result.exit_code == 2 and _unsafe(result.stderr_bytes) == []
    result = runner.invoke(app, ["--db", str(tmp_path / "wb.db"), "eval", "run", "--judge", "baseline:\x1b[2J"])
    assert result.exit_code == 2 and _unsafe(result.stderr_bytes) == []


# Characters str.splitlines() breaks at besides LF: shown (␍, ␋, ␌, \x85, ⟨U+2028⟩...), never a line break.
_BREAKS = {"CR": "\r", "VT": "\x0b", "FF": "\x0c", "NEL": "\x85", "LS": "\u2028", "PS": "\u2029", "FS": "\x1c"}


def _rewrite_texts(source: Path, target: Path, value: str) -> Path:
    """A copy of the store at `source` with every text column (but those the code reads) set to `value`."""
    import shutil

    target.mkdir()
    for path in source.parent.glob(f"{source.name}*"):
        shutil.copy(path, target / path.name)
    for path in source.parent.glob(f"{source.stem}.texts.db*"):
        shutil.copy(path, target / path.name)
    engine = make_engine(target / source.name)
    with engine.begin() as connection:
        for table in SQLModel.metadata.sorted_tables:
            texts = [column.name for column in table.columns
                     if isinstance(getattr(column.type, "impl", column.type), sa.String)
                     and column.name not in _KEEP and not column.primary_key and not column.name.endswith("_json")]
            if texts:
                marked = sa.literal(value + " #") + sa.cast(sa.literal_column("rowid"), sa.String)
                connection.execute(table.update().values(**{name: marked for name in texts}))
    engine.dispose()
    return target / source.name


SHOW_COMMANDS = [["commits", "show", "1"], ["commits", "show", "1", "--side", "old"],
                 ["commits", "show", "1", "--side", "new"], ["pairs", "show", "1"], ["jobs", "show", "{train}"],
                 ["eval", "show", "1", "--results"], ["train", "show", "{train}"], ["problems", "show", "1"],
                 ["arena", "show", "1", "--questions"], ["pairs", "list"]]


def _show(db: Path, args: list[str]) -> str:
    from stores.training.runs import list_train_runs

    engine = make_engine(db)
    train = str(list_train_runs(engine)[0].job_id)
    engine.dispose()
    result = runner.invoke(app, ["--db", str(db), *(arg.replace("{train}", train) for arg in args)])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_show_commands_never_break_a_line_at_a_cr_or_other_line_separator(hostile_db: Path, tmp_path: Path) -> None:
    """D4: `commits show` (and every other show) shows a CR as ␍, as `commits list` and the TUI do."""
    db = _rewrite_texts(hostile_db, tmp_path / "breaks", "v" + "".join(f"{char}{name}" for name, char in _BREAKS.items()))
    for args in SHOW_COMMANDS:
        shown = _show(db, args)
        starts = [line.lstrip() for line in shown.split("\n")]
        assert [line for line in starts if line.startswith(tuple(_BREAKS))] == [], args
        assert not set(shown) & set(_BREAKS.values()), args
        assert "␍CR" in shown or args == ["pairs", "list"], args  # the CR is visible, not dropped


def test_one_line_fields_of_show_commands_keep_their_line_feeds_visible(hostile_db: Path, tmp_path: Path) -> None:
    """A title, name, path, spec or error holding a line feed cannot print a line of its own (a fake `state: done`)."""
    db = _rewrite_texts(hostile_db, tmp_path / "lf", "v\nstate: done")
    for args in (["jobs", "show", "{train}"], ["train", "show", "{train}"], ["eval", "show", "1"]):
        shown = _show(db, args)
        assert not [line for line in shown.split("\n") if line.startswith("state: done")], args
        assert "␊state: done" in shown, args
    assert "␊state: done" in _show(db, ["problems", "show", "1"]).split("\n")[0]  # the header line
