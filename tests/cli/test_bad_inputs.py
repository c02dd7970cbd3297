"""Bad input of every kind: one `error:` line on stderr, the right exit status (2 usage, 1 bad data),
nothing on stdout, the store unchanged (integrity, row counts, bytes, no job left running), and no
file or process left behind."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.curation.pairs import NewPair
from core.evaluation.bench import OBJECTIVES, objective_file
from stores.curation.pairs import import_pairs
from stores.db import make_engine
from stores.synthesis.runs import add_instructions
from tests.conftest import GIT_ENV
from workbench.cli import app

runner = CliRunner()
UNSET = "WORKBENCH_TEST_UNSET_VARIABLE"
LOCAL = "openai:m@http://127.0.0.1:9/v1"


def _git(path: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=path, env={**os.environ, **GIT_ENV}, check=True, capture_output=True)


def _repo(path: Path, commits: int = 2) -> Path:
    path.mkdir(parents=True)
    _git(path, "init", "-q", "-b", "main")
    for index in range(commits):
        (path / "a.py").write_text(f"def f():\n    return {index}\n", encoding="utf-8")
        _git(path, "add", "-A")
        _git(path, "commit", "-q", "-m", f"change {index}")
    return path


def _bench(folder: Path, *, duplicate: bool = False) -> Path:
    folder.mkdir(parents=True)
    for objective in OBJECTIVES:
        records = [{"task_id": f"t/{n}", "instruction": "Add.", "gt_choice": 0,
                    "choices": [f"def f(a, b):\n    return a + b + {n}\n", f"def f(a, b):\n    return a - b - {n}\n"]}
                   for n in range(2)]
        if duplicate:
            records.append(records[0])
        data = "".join(json.dumps(record) + "\n" for record in records).encode()
        (folder / objective_file(objective)).write_bytes(gzip.compress(data))
    return folder


def _recipe(path: Path, model: Path, data: Path, extra: str = "") -> Path:
    path.write_text(f"name: r\nbase_model: {model}\nmodeling: classification\ndatasets:\n  - path: {data}\n"
                    f"hyperparameters:\n  batch_size: 8\n  micro_batch_size: 4\n  learning_rate: 5e-6\n{extra}"
                    f"output_dir: {path.parent / 'runs' / 'r'}\n", encoding="utf-8")
    return path


PAIR = {"instruction": "Sum", "criteria": "efficiency", "chosen": "def s(xs):\n    return sum(xs)\n",
        "rejected": "def s(xs):\n    t = 0\n    for x in xs:\n        t += x\n    return t\n"}


def _build_template(root: Path) -> None:
    """A seeded store and every input file the cases name, built once and copied per case."""
    repo = _repo(root / "repo")
    engine = make_engine(root / "wb.db")
    assert runner.invoke(app, ["--db", str(root / "wb.db"), "mine", str(repo)]).exit_code == 0
    import_pairs(engine, [NewPair(PAIR["instruction"], PAIR["criteria"], PAIR["chosen"], PAIR["rejected"]),
                          NewPair("Run", "security", "def r(c):\n    return c\n", "import os\nos.system('x')\n")])
    from core.synthesis.records import InstructionRecord

    add_instructions(engine, [InstructionRecord("Write a sum function.")], source="seed")
    engine.dispose()

    (root / "file.txt").write_text("x", encoding="utf-8")
    (root / "plain").mkdir()
    _repo(root / "empty-repo", commits=0)
    corrupt = _repo(root / "corrupt-repo", commits=3)
    first = subprocess.run(["git", "rev-list", "--max-parents=0", "HEAD"], cwd=corrupt, capture_output=True,
                           text=True, check=True).stdout.strip()
    (corrupt / ".git" / "objects" / first[:2] / first[2:]).unlink()
    refused = _repo(root / "refused-repo")
    _git(refused, "config", "core.repositoryformatversion", "99")

    inputs = root / "in"
    inputs.mkdir()
    (inputs / "empty.jsonl").write_bytes(b"")
    (inputs / "blank.jsonl").write_bytes(b"\n  \n\t\n")
    (inputs / "latin1.jsonl").write_bytes(json.dumps(PAIR).encode() + b"\n" + b'{"instruction": "caf\xe9"}\n')
    (inputs / "surrogate.jsonl").write_text('{"instruction": "x\\ud83d", "criteria": "c", "chosen": "a = 1", '
                                            '"rejected": "a = 2"}\n', encoding="utf-8")
    (inputs / "badjson.jsonl").write_text(json.dumps(PAIR) + "\n{not json\n", encoding="utf-8")
    same = {**PAIR, "rejected": PAIR["chosen"].replace("    ", "  ").rstrip("\n") + "\n\n"}
    (inputs / "same.jsonl").write_text(json.dumps(PAIR) + "\n" + json.dumps(same) + "\n", encoding="utf-8")
    (inputs / "missing-field.jsonl").write_text(json.dumps({"instruction": "x", "chosen": "a"}) + "\n", encoding="utf-8")
    (inputs / "array.jsonl").write_text("[1, 2]\n", encoding="utf-8")
    (inputs / "notes.txt").write_text("Write a sum function.\n", encoding="utf-8")
    (inputs / "nofield.csv").write_text("title\nhello\n", encoding="utf-8")
    (inputs / "instr-latin1.jsonl").write_bytes(b'{"instruction": "ok"}\n{"instruction": "caf\xe9"}\n')
    (inputs / "instr-surrogate.jsonl").write_text('{"instruction": "\\udc80 x"}\n', encoding="utf-8")
    (inputs / "instr-empty-text.jsonl").write_text('{"instruction": "ok"}\n{"instruction": "   "}\n', encoding="utf-8")

    rules = root / "rules"
    rules.mkdir()
    (rules / "tab.yaml").write_text("rules:\n  - where: cc_delta<0\n\t  action: flag\n", encoding="utf-8")
    (rules / "unknown-key.yaml").write_text("rules:\n  - name: x\n    where: cc_delta<0\n    action: flag\n"
                                            "    actoin: reject\n", encoding="utf-8")
    (rules / "action.yaml").write_text("rules:\n  - where: cc_delta<0\n    action: delete\n", encoding="utf-8")
    (rules / "field.yaml").write_text("rules:\n  - where: cc_delt<0\n    action: flag\n", encoding="utf-8")
    (rules / "empty.yaml").write_text("", encoding="utf-8")

    _bench(root / "bench")
    _bench(root / "dup-bench", duplicate=True)
    (root / "full").mkdir()
    (root / "full" / "keep.txt").write_text("keep", encoding="utf-8")

    model = root / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"model_type": "llama", "max_position_embeddings": 4096}))
    data = inputs / "train.jsonl"
    data.write_text(json.dumps({"prompt": "p", "completion": "A"}) + "\n", encoding="utf-8")
    recipes = root / "recipes"
    recipes.mkdir()
    _recipe(recipes / "ok.yaml", model, data)
    _recipe(recipes / "huge-seq.yaml", model, data, "  sequence_length: 1000000000000\n")
    _recipe(recipes / "long-seq.yaml", model, data, "  sequence_length: 8192\n")
    _recipe(recipes / "tab.yaml", model, data, "\tepochs: 1\n")
    _recipe(recipes / "typo.yaml", model, data, "  learnig_rate: 1.0e-5\n")
    _recipe(recipes / "duplicate.yaml", model, data, "  learning_rate: 1.0e-5\n")
    _recipe(recipes / "no-model.yaml", root / "models" / "missing", data)
    _recipe(recipes / "hub-name.yaml", Path("org/not-downloaded"), data)
    _recipe(recipes / "bad-number.yaml", model, data, "  epochs: fast\n")
    (recipes / "pipeline-weights.yaml").write_text(
        f"train: [{recipes / 'ok.yaml'}, {recipes / 'ok.yaml'}]\nmerge: {{weights: [1], out: {root / 'merged'}}}\n")
    (recipes / "pipeline-missing.yaml").write_text(
        f"train: [{recipes / 'ok.yaml'}, {recipes / 'nope.yaml'}]\nmerge: {{out: {root / 'merged'}}}\n")
    for name in ("ckpt-a", "ckpt-b"):
        (root / name).mkdir()

    foreign = sqlite3.connect(root / "foreign.db")
    foreign.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    foreign.execute("INSERT INTO notes (body) VALUES ('mine, not the workbench''s')")
    foreign.commit()
    foreign.close()
    (root / "garbage.db").write_bytes(b"this is not a database" * 50)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad-inputs-template")
    _build_template(root)
    return root


@dataclass(frozen=True)
class Case:
    """One bad input: the arguments (`{ws}` is the workspace), the exit status and a part of the message."""

    args: str
    code: int
    message: str
    db: str = "{ws}/wb.db"


CASES: dict[str, Case] = {
    # mine
    "mine-missing-path": Case("mine {ws}/nope", 2, "no such file or directory"),
    "mine-a-file": Case("mine {ws}/file.txt", 2, "is a file, not a git repository"),
    "mine-not-a-repo": Case("mine {ws}/plain", 2, "not a git repository"),
    "mine-no-commits": Case("mine {ws}/empty-repo", 1, "the repository has no commits yet"),
    "mine-unknown-rev": Case("mine {ws}/repo --rev no-such-branch", 2, "unknown revision 'no-such-branch'"),
    "mine-unknown-language": Case("mine {ws}/repo --language cobol", 2, "unsupported language cobol"),
    "mine-license": Case("mine {ws}/repo --license GPL-3.0", 1, "not in the allow-list"),
    "mine-corrupt-history": Case("mine {ws}/corrupt-repo", 1, "the history cannot be read: Could not read"),
    "mine-git-refuses": Case("mine {ws}/refused-repo", 1, "git refuses it: Expected git repo version <= 1"),
    "mine-zero-commits": Case("mine {ws}/repo --max-commits 0", 2, "--max-commits"),
    # synth
    "synth-spec-kind": Case("synth commit-instruct --critic gpt-4o", 2, "model spec 'gpt-4o'"),
    "synth-spec-at": Case("synth commit-instruct --critic openai:@", 2, "after '@' comes the server's URL"),
    "synth-spec-port": Case("synth commit-instruct --critic openai:m@http://127.0.0.1:99999/v1", 2,
                            "is not a number from 1 to 65535"),
    "synth-key-env-unset": Case(f"synth commit-instruct --critic {LOCAL}?key_env={UNSET}", 2,
                                f"${UNSET} (named by key_env) is not set"),
    "synth-hosted-no-key": Case("synth commit-instruct --critic openai:gpt-4o", 2, "the hosted OpenAI API needs a key"),
    "synth-hf-not-local": Case("synth commit-instruct --critic hf:/nonexistent/model", 2,
                               "is not a local folder or .gguf file, and hub downloads are unavailable"),
    "synth-budget-negative": Case(f"synth commit-instruct --critic {LOCAL} --budget -1", 2, "budget '-1'"),
    "synth-budget-zero": Case(f"synth commit-instruct --critic {LOCAL} --budget 0", 2, "must be more than zero"),
    "synth-budget-words": Case(f"synth commit-instruct --critic {LOCAL} --budget lots", 2, "budget 'lots'"),
    "synth-limit-zero": Case(f"synth commit-instruct --critic {LOCAL} --limit 0", 2, "--limit"),
    "synth-concurrency-zero": Case(f"synth commit-instruct --critic {LOCAL} --concurrency 0", 2, "--concurrency"),
    "synth-language": Case(f"synth commit-instruct --critic {LOCAL} --language cobol", 2, "unsupported language"),
    "synth-spec-option": Case(f"synth commit-instruct --critic {LOCAL}?concurrency=many", 2, "concurrency must be a whole"),
    "synth-spec-timeout": Case(f"synth commit-instruct --critic {LOCAL}?timeout=-1", 2, "timeout must be a positive"),
    "synth-no-draft": Case(f"synth critic-evol --critic {LOCAL}", 2, "--draft"),
    "synth-draft-spec": Case(f"synth critic-evol --critic {LOCAL} --draft gpt", 2, "model spec 'gpt'"),
    "synth-empty-instructions": Case(f"synth critic-evol --critic {LOCAL} --draft {LOCAL} "
                                     "--instructions {ws}/in/empty.jsonl", 1, "no instructions"),
    # instructions import
    "instructions-missing": Case("instructions import {ws}/in/nope.jsonl", 2, "no such file"),
    "instructions-empty": Case("instructions import {ws}/in/empty.jsonl", 1, "no instructions: the file is empty"),
    "instructions-blank": Case("instructions import {ws}/in/blank.jsonl", 1, "no instructions: the file is empty"),
    "instructions-latin1": Case("instructions import {ws}/in/instr-latin1.jsonl", 1,
                                "instr-latin1.jsonl:2:21: not UTF-8 text (byte 0xe9)"),
    "instructions-surrogate": Case("instructions import {ws}/in/instr-surrogate.jsonl", 1,
                                   "instr-surrogate.jsonl:1: field instruction holds a lone surrogate"),
    "instructions-bad-json": Case("instructions import {ws}/in/badjson.jsonl", 1, "badjson.jsonl:2:2: not valid JSON"),
    "instructions-kind": Case("instructions import {ws}/in/notes.txt", 2, "expected a .jsonl, .json or .csv file"),
    "instructions-no-field": Case("instructions import {ws}/in/nofield.csv", 1, "nofield.csv:2: no instruction"),
    "instructions-empty-text": Case("instructions import {ws}/in/instr-empty-text.jsonl", 1,
                                    "instr-empty-text.jsonl:2: field instruction is empty"),
    # pairs import
    "pairs-missing": Case("pairs import {ws}/in/nope.jsonl", 2, "no such file"),
    "pairs-empty": Case("pairs import {ws}/in/empty.jsonl", 1, "no pairs: the file is empty"),
    "pairs-blank": Case("pairs import {ws}/in/blank.jsonl", 1, "no pairs: the file is empty"),
    "pairs-latin1": Case("pairs import {ws}/in/latin1.jsonl", 1, "latin1.jsonl:2:21: not UTF-8 text (byte 0xe9)"),
    "pairs-surrogate": Case("pairs import {ws}/in/surrogate.jsonl", 1,
                            "surrogate.jsonl:1: field instruction holds a lone surrogate escape (\\ud83d)"),
    "pairs-same-code": Case("pairs import {ws}/in/same.jsonl", 1,
                            "same.jsonl:2: chosen and rejected are the same code"),
    "pairs-missing-field": Case("pairs import {ws}/in/missing-field.jsonl", 1, "missing or non-text field(s): criteria"),
    "pairs-not-object": Case("pairs import {ws}/in/array.jsonl", 1, "array.jsonl:1: expected a JSON object, found an array"),
    "pairs-list-filter": Case("pairs list --where cc_delta<x", 2, "cc_delta needs a number"),
    "pairs-list-filter-field": Case("pairs list --where cc_delt<0", 2, "did you mean cc_delta?"),
    # curate
    "curate-missing-rules": Case("curate apply {ws}/rules/nope.yaml", 2, "no such rule file"),
    "curate-tab": Case("curate apply {ws}/rules/tab.yaml", 1, "tab.yaml:3:1: not valid YAML"),
    "curate-unknown-key": Case("curate apply {ws}/rules/unknown-key.yaml", 1,
                               "unknown-key.yaml:5:5: rules[0].actoin: unknown key; did you mean action?"),
    "curate-action": Case("curate apply {ws}/rules/action.yaml", 1, "action.yaml:3:13: rules[0].action"),
    "curate-field": Case("curate apply {ws}/rules/field.yaml", 1, "field.yaml:2:12: rules[0].where: unknown filter field"),
    "curate-empty": Case("curate apply {ws}/rules/empty.yaml", 1, "expected a mapping with a non-empty list under 'rules'"),
    "curate-near": Case("curate dedupe --near 101", 2, "--near"),
    "curate-workers": Case("curate analyse --workers 0", 2, "--workers"),
    # decontaminate
    "decon-missing-bench": Case("decontaminate --bench {ws}/nobench", 2, "does not exist"),
    "decon-cdf-suffix": Case("decontaminate --bench {ws}/bench --cdf-out {ws}/cdf.png", 2, "use a .csv or .svg file name"),
    "decon-cdf-folder": Case("decontaminate --bench {ws}/bench --cdf-out {ws}/nodir/cdf.csv", 2, "does not exist"),
    "decon-threshold": Case("decontaminate --bench {ws}/bench --threshold 0", 2, "--threshold"),
    "decon-duplicate-task": Case("decontaminate --bench {ws}/dup-bench", 1, "task t/0 repeats line 1"),
    # export
    "export-format": Case("export --out {ws}/out --format xlsx", 2, "unknown export format(s) xlsx"),
    "export-non-empty": Case("export --out {ws}/full", 2, "the folder is not empty and is not a workbench export"),
    "export-non-empty-force": Case("export --out {ws}/full --force", 2, "is not a workbench export"),
    "export-proc": Case("export --out /proc/workbench-export", 2, "is not a writable folder"),
    "export-a-file": Case("export --out {ws}/file.txt", 2, "is a file, not a folder"),
    "export-no-pairs": Case("export --out {ws}/out --where status=accepted", 1, "no pairs match status=accepted"),
    "export-filter": Case("export --out {ws}/out --where bogus=1", 2, "unknown filter field 'bogus'"),
    "export-validation": Case("export --out {ws}/out --validation 1.5", 2, "--validation"),
    "export-tokenizer": Case("export --out {ws}/out --tokenizer org/not-downloaded", 2,
                             "--tokenizer: org/not-downloaded is not a local folder"),
    # eval
    "eval-baseline-typo": Case("eval run --judge baseline:alwys-a --bench {ws}/bench", 2, "unknown baseline 'alwys-a'"),
    "eval-judge-kind": Case("eval run --judge pairrm:x --bench {ws}/bench", 2, "unknown judge kind 'pairrm' (did you mean pair-rm:?)"),
    "eval-hf-not-local": Case("eval run --judge hf:/nonexistent --bench {ws}/nobench", 2,
                              "model spec 'hf:/nonexistent': /nonexistent is not a local folder"),
    "eval-pair-rm-missing": Case("eval run --judge pair-rm:{ws}/nomodel --bench {ws}/bench", 2, "is not a local folder"),
    "eval-objective": Case("eval run --judge baseline:always-a --bench {ws}/bench --objectives speed", 2,
                           "unknown objective 'speed'"),
    "eval-orders": Case("eval run --judge baseline:always-a --bench {ws}/bench --orders sideways", 2, "--orders"),
    "eval-duplicate-task": Case("eval run --judge baseline:always-a --bench {ws}/dup-bench", 1, "task t/0 repeats line 1"),
    "eval-no-bench": Case("eval run --judge baseline:always-a", 2, "no benchmark folder"),
    "eval-hosted-no-key": Case("eval run --judge openai:gpt-4o --bench {ws}/bench", 2, "the hosted OpenAI API needs a key"),
    "eval-export-format": Case("eval export --format xlsx", 2, "unknown export format 'xlsx'"),
    "eval-show-missing": Case("eval show 999", 1, "999"),
    # train and pipeline
    "train-missing-recipe": Case("train {ws}/recipes/nope.yaml", 2, "no such recipe file"),
    "train-huge-sequence": Case("train {ws}/recipes/huge-seq.yaml", 1,
                                "huge-seq.yaml:10:20: hyperparameters.sequence_length: input should be less than"),
    "train-sequence-over-context": Case("train {ws}/recipes/long-seq.yaml", 1, "longer than the base model's context (4096"),
    "train-tab": Case("train {ws}/recipes/tab.yaml", 1, "tab.yaml:10:1: not valid YAML"),
    "train-typo": Case("train {ws}/recipes/typo.yaml", 1, "hyperparameters.learnig_rate: unknown key; did you mean learning_rate?"),
    "train-missing-model": Case("train {ws}/recipes/no-model.yaml", 1, "models/missing is not a local folder, and hub downloads are unavailable"),
    "train-hub-name": Case("train {ws}/recipes/hub-name.yaml", 1, "hub downloads are unavailable"),
    "train-bad-number": Case("train {ws}/recipes/bad-number.yaml", 1, "hyperparameters.epochs: input should be a valid number"),
    "train-duplicate-key": Case("train {ws}/recipes/duplicate.yaml", 1, "duplicate.yaml:10:3: hyperparameters.learning_rate: key given twice (first at line 9)"),
    "train-nodes": Case("train {ws}/recipes/ok.yaml --gpus 2 --nodes 2", 2, "deepspeed.stage"),
    "pipeline-weights": Case("pipeline {ws}/recipes/pipeline-weights.yaml", 1, "merge.weights: one positive number per"),
    "pipeline-missing-recipe": Case("pipeline {ws}/recipes/pipeline-missing.yaml", 1, "no such recipe file"),
    # merge
    "merge-inf": Case("merge {ws}/ckpt-a {ws}/ckpt-b --weights inf 1 --no-verify --out {ws}/m", 2,
                      "merge weight 'inf' is not a finite number"),
    "merge-words": Case("merge {ws}/ckpt-a {ws}/ckpt-b --weights a b --out {ws}/m", 2, "merge weight 'a' is not a number"),
    "merge-negative": Case("merge {ws}/ckpt-a {ws}/ckpt-b --weights -1 2 --out {ws}/m", 2, "must be positive numbers, not '-1'"),
    "merge-zero-sum": Case("merge {ws}/ckpt-a {ws}/ckpt-b --weights 0 0 --out {ws}/m", 2, "must be positive numbers, not '0'"),
    "merge-count": Case("merge {ws}/ckpt-a {ws}/ckpt-b --weights 1 --out {ws}/m", 2, "2 checkpoints but 1 weights"),
    "merge-one-checkpoint": Case("merge {ws}/ckpt-a --out {ws}/m", 2, "merging needs at least two checkpoints"),
    "merge-out-non-empty": Case("merge {ws}/ckpt-a {ws}/ckpt-b --out {ws}/full", 2, "the folder is not empty"),
    "merge-out-proc": Case("merge {ws}/ckpt-a {ws}/ckpt-b --out /proc/workbench-merge", 2, "is not a writable folder"),
    # the store
    "store-foreign-read": Case("pairs list", 1, "is not a workbench store (it holds other tables: notes)", db="{ws}/foreign.db"),
    "store-foreign-write": Case("mine {ws}/repo", 1, "is not a workbench store", db="{ws}/foreign.db"),
    "store-foreign-url": Case("jobs list", 1, "is not a workbench store (it holds other tables: notes)",
                              db="sqlite:///file:{ws}/foreign.db?mode=ro&uri=true"),
    "store-garbage": Case("jobs list", 1, "is not a workbench store (not a SQLite database)", db="{ws}/garbage.db"),
    "store-missing-pairs": Case("pairs list", 1, "no workbench store at", db="{ws}/typo.db"),
    "store-missing-jobs": Case("jobs list", 1, "no workbench store at", db="{ws}/typo.db"),
    "store-missing-show": Case("commits show 1", 1, "no workbench store at", db="{ws}/typo.db"),
    "root-option": Case("--bogus", 2, "No such option: --bogus"),
}


def _files(root: Path) -> dict[str, str]:
    """Every file under root with a hash of its bytes (SQLite's own journal files left out)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.endswith(("-wal", "-shm", "-journal")):
            found[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def _store_state(root: Path) -> dict[str, object]:
    state: dict[str, object] = {}
    for name in ("wb.db", "wb.texts.db"):
        connection = sqlite3.connect(f"file:{root / name}?mode=ro", uri=True)
        try:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                state[f"{name}:{table}"] = connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
            if name == "wb.db":
                state["active jobs"] = connection.execute(
                    "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()[0]
        finally:
            connection.close()
    return state


def _children() -> set[int]:
    """Processes whose parent is this one (Linux /proc)."""
    mine = os.getpid()
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == mine:
            children.add(int(stat.parent.name))
    return children


@pytest.fixture
def workspace(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(template, ws, symlinks=True)
    for name in ("OPENAI_API_KEY", UNSET, "WORKBENCH_DB", "WORKBENCH_BENCH", "WORKBENCH_HUB_DOWNLOADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(ws)
    return ws


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_with_its_status_and_changes_nothing(workspace: Path, name: str) -> None:
    case = CASES[name]
    args = ["--db", case.db.format(ws=workspace), *case.args.format(ws=workspace).split()]
    files, store, children = _files(workspace), _store_state(workspace), _children()

    result = runner.invoke(app, args)

    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert case.message.format(ws=workspace) in lines[0], lines[0]
    assert result.exit_code == case.code, lines[0]
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert _store_state(workspace) == store
    assert _files(workspace) == files  # the store byte for byte, inputs untouched, no new file or folder
    assert not Path("/proc/workbench-export").exists() and not Path("/proc/workbench-merge").exists()
    assert _children() <= children


def test_there_are_enough_cases_for_every_command() -> None:
    assert len(CASES) >= 60
    commands = {case.args.split()[0] for case in CASES.values()}
    assert {"mine", "synth", "instructions", "pairs", "curate", "decontaminate", "export", "eval", "train",
            "merge"} <= commands


def test_a_repository_with_another_owner_is_reported_in_gits_words(workspace: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("making a repository another user's needs root")
    repo = workspace / "repo"
    for path in [repo, *repo.rglob("*")]:
        os.chown(path, 65534, 65534, follow_symlinks=False)
    store = _store_state(workspace)
    result = runner.invoke(app, ["--db", str(workspace / "wb.db"), "mine", str(repo)])
    assert result.exit_code == 1
    assert result.stderr.strip() == (f"error: {repo}: git refuses it: detected dubious ownership in repository at "
                                      f"'{repo}' (to allow it: git config --global --add safe.directory {repo})")
    assert "no commits yet" not in result.stderr and _store_state(workspace) == store


def test_a_traceback_only_with_debug(workspace: Path) -> None:
    from core.errors import DataError

    args = ["--db", str(workspace / "wb.db"), "pairs", "import", str(workspace / "in" / "same.jsonl")]
    assert "Traceback" not in runner.invoke(app, args).output
    debugged = runner.invoke(app, ["--debug", *args])
    assert isinstance(debugged.exception, DataError)  # raised, so Python prints its traceback


def test_the_foreign_database_is_left_as_it_was(workspace: Path) -> None:
    foreign = workspace / "foreign.db"
    before = foreign.read_bytes()
    for args in (["pairs", "list"], ["mine", str(workspace / "repo")], ["export", "--out", str(workspace / "o")]):
        result = runner.invoke(app, ["--db", str(foreign), *args])
        assert result.exit_code == 1 and "not a workbench store" in result.stderr
    assert foreign.read_bytes() == before
    assert not (workspace / "foreign.texts.db").exists()
    rows = sqlite3.connect(foreign).execute("SELECT name FROM sqlite_master").fetchall()
    assert rows == [("notes",)]


def test_exponent_without_a_dot_and_force_are_accepted(workspace: Path) -> None:
    """The other side of two refusals: `5e-6` is a number, and --force replaces an earlier export
    (never a folder that is not one: `full` keeps its file)."""
    from core.training.recipes import load_train_recipe

    assert load_train_recipe(workspace / "recipes" / "ok.yaml").hyperparameters.learning_rate == 5e-6
    export = ["--db", str(workspace / "wb.db"), "export", "--out", str(workspace / "ex")]
    assert runner.invoke(app, [*export, "--format", "chat"]).exit_code == 0
    result = runner.invoke(app, [*export, "--force", "--format", "dpo"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (workspace / "ex").iterdir()) == ["dpo", "manifest.json"]
    assert [p.name for p in (workspace / "full").iterdir()] == ["keep.txt"]
