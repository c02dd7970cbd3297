"""The curation CLI end to end on a file store: import, analyse, rules, dedupe, decontaminate, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stores.db import make_engine
from tests.fixtures import BENCH_DIR as BENCH  # noqa: E402
from tests.fixtures import HOSTILE_TEXT
from workbench.cli import app

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def write_pairs(path: Path) -> Path:
    records = [
        {"instruction": HOSTILE_TEXT, "criteria": "efficiency", "chosen": "def s(xs):\n    return sum(xs)\n",
         "rejected": "def s(xs):\n    t = 0\n    for x in xs:\n        t += x\n    return t\n",
         "feedback": "The chosen code uses the builtin."},
        {"instruction": "Run a command", "criteria": "security", "chosen": "import os\ndef r(c):\n    return os.system(c)\n",
         "rejected": "def r(c):\n    return c\n"},
        {"instruction": "Broken", "criteria": "style", "chosen": "def f(:\n", "rejected": "x = 1\n"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def run(db: Path, *args: str) -> object:
    return CliRunner().invoke(app, ["--db", str(db), *args])


def test_import_analyse_list_show_stats(tmp_path: Path, db_path: Path) -> None:
    pairs_file = write_pairs(tmp_path / "p.jsonl")
    result = run(db_path, "pairs", "import", str(pairs_file))
    assert result.exit_code == 0 and "imported 3 pairs (0 already stored)" in result.stdout
    assert "imported 0 pairs (3 already stored)" in run(db_path, "pairs", "import", str(pairs_file)).stdout
    result = run(db_path, "curate", "analyse", "--workers", "1")
    assert result.exit_code == 0 and "analysed 3 pairs" in result.stdout
    listed = json.loads(run(db_path, "pairs", "list", "--where", "chosen_parses=false", "--json").stdout)
    assert [p["id"] for p in listed] == [3]
    shown = run(db_path, "pairs", "show", "1")
    assert HOSTILE_TEXT in shown.stdout and "cc_delta" in shown.stdout
    stats = json.loads(run(db_path, "pairs", "stats", "--where", "bandit_delta>0", "--json").stdout)
    assert stats["matching"] == 1 and stats["stats"]["analysed"] == 3


def test_rules_dry_run_then_apply(tmp_path: Path, db_path: Path) -> None:
    run(db_path, "pairs", "import", str(write_pairs(tmp_path / "p.jsonl")))
    run(db_path, "curate", "analyse", "--workers", "1")
    dry = json.loads(run(db_path, "curate", "apply", str(RECIPES / "curation-default.yaml"), "--dry-run", "--json").stdout)
    assert dry[0]["pairs"] == 1 and dry[0]["dry_run"] is True
    assert json.loads(run(db_path, "pairs", "stats", "--json").stdout)["stats"]["by_status"] == {"pending": 3}
    assert run(db_path, "curate", "apply", str(RECIPES / "curation-default.yaml")).exit_code == 0
    assert json.loads(run(db_path, "pairs", "stats", "--json").stdout)["stats"]["by_status"] == {"flagged": 1, "pending": 1, "rejected": 1}
    assert "0 duplicates marked" in run(db_path, "curate", "dedupe").stdout


def test_export_every_format(tmp_path: Path, db_path: Path) -> None:
    run(db_path, "pairs", "import", str(write_pairs(tmp_path / "p.jsonl")))
    out = tmp_path / "out"
    result = run(db_path, "export", "--out", str(out), "--format", "classification,generation,dpo,chat",
                 "--validation", "0", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    # Two pairs have no feedback naming a code: their generation examples are dropped, and counted.
    assert manifest["pair_count"] == 3 and manifest["records"]["generation"]["train"] == 2
    assert manifest["dropped"] == {"generation": {"feedback names neither code": 4},
                                   "chat": {"feedback names neither code": 4}}
    assert manifest["protocol"] == "codefavor"
    assert json.loads((out / "manifest.json").read_text()) == manifest
    generation = [json.loads(line) for line in (out / "generation" / "train.jsonl").read_text().splitlines()]
    assert generation[0]["completion"].startswith("[CODE_A] uses the builtin.")
    assert json.loads(run(db_path, "jobs", "list", "--kind", "export", "--json").stdout)[0]["state"] == "done"


def _files_under(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def test_forced_export_replaces_the_earlier_export_as_a_whole(tmp_path: Path, db_path: Path) -> None:
    """D2: after `--force` the folder holds exactly the files the new manifest lists, nothing of the old export."""
    run(db_path, "pairs", "import", str(write_pairs(tmp_path / "p.jsonl")))
    out = tmp_path / "ex1"
    assert run(db_path, "export", "--out", str(out)).exit_code == 0
    assert {"dpo/train.jsonl", "generation/train.jsonl"} <= _files_under(out)
    refused = run(db_path, "export", "--out", str(out), "--format", "chat")
    assert refused.exit_code == 2 and "holds an earlier export" in refused.stderr and "--force" in refused.stderr
    result = run(db_path, "export", "--out", str(out), "--format", "chat", "--force", "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert _files_under(out) == {"manifest.json", *manifest["files"]} == {
        "manifest.json", "chat/train.jsonl", "chat/validation.jsonl"}
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no staging folder left
    assert len(json.loads(run(db_path, "jobs", "list", "--kind", "export", "--json").stdout)) == 2


def test_forced_export_never_empties_a_folder_that_is_not_an_export(tmp_path: Path, db_path: Path) -> None:
    run(db_path, "pairs", "import", str(write_pairs(tmp_path / "p.jsonl")))
    for name, content in (("mine", None), ("fake", '{"files": []}'), ("broken", "{not json")):
        out = tmp_path / name
        out.mkdir()
        (out / "notes.txt").write_text("mine", encoding="utf-8")
        if content is not None:  # a manifest.json that is not ours
            (out / "manifest.json").write_text(content, encoding="utf-8")
        before = _files_under(out)
        for extra in ([], ["--detach"]):
            result = run(db_path, "export", "--out", str(out), "--force", *extra)
            assert result.exit_code == 2, result.output
            assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
            assert "is not a workbench export" in result.stderr
        assert _files_under(out) == before and (out / "notes.txt").read_text(encoding="utf-8") == "mine"
    assert json.loads(run(db_path, "jobs", "list", "--kind", "export", "--json").stdout) == []


def test_export_default_filter_applies_to_fields_the_filter_leaves_open(tmp_path: Path, db_path: Path) -> None:
    run(db_path, "pairs", "import", str(write_pairs(tmp_path / "p.jsonl")))
    from stores.curation.pairs import set_status
    from stores.db import make_engine

    assert set_status(make_engine(db_path), [2], "reject") == 1
    manifest = json.loads(run(db_path, "export", "--out", str(tmp_path / "a"), "--json").stdout)
    assert manifest["pair_count"] == 2 and "status!=rejected" in manifest["filter"]
    narrowed = run(db_path, "export", "--out", str(tmp_path / "b"), "--where", "criteria~secur", "--json")
    # the security pair is the rejected one, and an export of no pair is refused
    assert narrowed.exit_code == 1 and "no pairs match" in narrowed.stderr and not (tmp_path / "b").exists()
    chosen = json.loads(run(db_path, "export", "--out", str(tmp_path / "c"), "--where", "status=rejected", "--json").stdout)
    assert chosen["pair_count"] == 1


def test_bad_input_is_one_line_and_store_intact(tmp_path: Path, db_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "x", "criteria": "c", "chosen": "a", "rejected": "b"}\n{not json\n', encoding="utf-8")
    result = run(db_path, "pairs", "import", str(bad))
    assert result.exit_code == 1 and "bad.jsonl:2:2: not valid JSON" in result.stderr and "Traceback" not in result.output
    assert not db_path.exists()  # the file is read in full before the store opens
    assert "no workbench store at" in run(db_path, "pairs", "stats", "--json").stderr
    make_engine(db_path).dispose()
    for args, message, code in [
        (["pairs", "list", "--where", "cc_delta<x"], "needs a number", 2),
        (["pairs", "show", "42"], "pair 42 does not exist", 1),
        (["curate", "apply", str(tmp_path / "none.yaml")], "no such rule file", 2),
        (["export", "--out", str(tmp_path / "o"), "--format", "csv"], "unknown export format", 2),
        (["decontaminate", "--bench", str(tmp_path / "nobench")], "does not exist", 2),
    ]:
        result = run(db_path, *args)
        assert result.exit_code == code and message in result.stderr, (args, result.output)
        assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not BENCH.is_dir(), reason=f"CodePrefBench not found at {BENCH}")
def test_decontaminate_writes_cdf(tmp_path: Path, db_path: Path) -> None:
    run(db_path, "pairs", "import", str(write_pairs(tmp_path / "p.jsonl")))
    run(db_path, "curate", "analyse", "--workers", "1")
    svg, csv = tmp_path / "cdf.svg", tmp_path / "cdf.csv"
    result = run(db_path, "decontaminate", "--bench", str(BENCH), "--workers", "1", "--sample", "6", "--cdf-out", str(svg))
    assert result.exit_code == 0, result.output
    assert "against 2728 benchmark snippets" in result.stdout and svg.read_text().startswith("<svg")
    summary = json.loads(run(db_path, "decontaminate", "--bench", str(BENCH), "--workers", "1", "--sample", "6",
                             "--cdf-out", str(csv), "--json").stdout)
    assert summary["sides"] == 6 and summary["cdf"][-1] == [100, 1.0]
    assert csv.read_text().splitlines()[0] == "similarity,fraction_at_or_below"


def test_help_of_every_curation_command_exits_zero(db_path: Path) -> None:
    for args in (["pairs", "list"], ["pairs", "import"], ["pairs", "show"], ["pairs", "stats"], ["curate", "analyse"],
                 ["curate", "apply"], ["curate", "dedupe"], ["decontaminate"], ["export"]):
        result = run(db_path, *args, "--help")
        assert result.exit_code == 0 and "Usage" in result.stdout, (args, result.output)
