"""Curation jobs on a file store: rules in bulk, dedupe and decontamination."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from core.curation.decontamination import BenchSnippet
from core.curation.pairs import NewPair
from core.curation.rules import load_rules, parse_filter
from stores.curation.analyses import apply_rules
from stores.curation.pairs import count_pairs, get_pair, import_pairs, undo_last
from stores.jobs import list_jobs
from workbench.jobs.curate import DecontaminationSummary, analyse_store, decontaminate_store, dedupe_store

BENCH_CODE = "def is_palindrome(text):\n    cleaned = text.lower()\n    return cleaned == cleaned[::-1]\n"


def seed(engine: Engine) -> None:
    import_pairs(engine, [
        NewPair("i1", "speed", BENCH_CODE + "# copied\n", "def f(:\n"),
        NewPair("i2", "speed", "def g():\n    return 2\n", "def g():\n    return 1\n"),
        NewPair("i3", "speed", "def g():\n    return 2  # same code\n", "def g():\n  return 1\n"),
        NewPair("i4", "style", "class Totally:\n    different = True\n", "x = [i for i in range(10)]\n"),
    ])
    list(analyse_store(engine, workers=1))


def test_rules_dry_run_then_apply_and_undo(any_engine: Engine, tmp_path: Path) -> None:
    seed(any_engine)
    rules_path = tmp_path / "r.yaml"
    rules_path.write_text("rules:\n  - where: rejected_parses=false\n    action: reject\n"
                          "  - where: criteria=speed status=pending\n    action: accept\n", encoding="utf-8")
    rules = load_rules(rules_path)
    assert [count for _r, count in apply_rules(any_engine, rules, dry_run=True)] == [1, 3]
    assert count_pairs(any_engine, parse_filter("status=pending")) == 4
    assert [count for _r, count in apply_rules(any_engine, rules)] == [1, 2]
    assert get_pair(any_engine, 1).status == "rejected" and get_pair(any_engine, 2).status == "accepted"
    assert undo_last(any_engine) == "rule rule 2"
    assert get_pair(any_engine, 2).status == "pending" and get_pair(any_engine, 1).status == "rejected"


def test_dedupe_marks_all_but_the_first(any_engine: Engine) -> None:
    seed(any_engine)
    summary = dedupe_store(any_engine, near_threshold=85)
    assert summary.duplicates == 1 and summary.exact_clusters == 1
    assert get_pair(any_engine, 3).analysis["duplicate"] is True  # type: ignore[index]
    assert get_pair(any_engine, 3).analysis["dup_cluster"] == 2  # type: ignore[index]
    assert count_pairs(any_engine, parse_filter("duplicate=false")) == 3
    assert list_jobs(any_engine, kind="dedupe")[0].state == "done"


def test_decontamination_scores_and_flags(any_engine: Engine) -> None:
    seed(any_engine)
    bench = [BenchSnippet("HumanEval/1", "correctness", BENCH_CODE), BenchSnippet("X/2", "security", "import os\n")]
    events = list(decontaminate_store(any_engine, bench, threshold=80, workers=1, sample=8))
    summary = events[-1]
    assert isinstance(summary, DecontaminationSummary)
    assert summary.contaminated_pairs == 1 and summary.flagged == 1 and summary.sides == 8
    analysis = get_pair(any_engine, 1).analysis
    assert analysis is not None and analysis["contamination_chosen"] == 100.0
    assert analysis["contamination_task"] == "HumanEval/1" and analysis["contamination_rejected"] is None
    assert get_pair(any_engine, 1).status == "flagged"
    assert summary.cdf[-1] == (100, 1.0) and summary.cdf_sample == 8
    assert count_pairs(any_engine, parse_filter("contamination>=80")) == 1


def test_export_records_lineage(any_engine: Engine, tmp_path: Path) -> None:
    from core.training.export import ExportOptions
    from stores.curation.pairs import set_status
    from stores.training.exports import DEFAULT_EXPORT_FILTER, list_exports
    from workbench.jobs.export import export_store

    seed(any_engine)
    dedupe_store(any_engine)
    set_status(any_engine, [4], "reject")
    info = export_store(any_engine, parse_filter(DEFAULT_EXPORT_FILTER), tmp_path / "exp", ExportOptions(validation_fraction=0.0))
    assert info.pair_count == 2  # pair 3 duplicates pair 2, pair 4 is rejected
    manifest = (tmp_path / "exp" / "manifest.json").read_text(encoding="utf-8")
    assert info.pair_ids_hash in manifest and "duplicate!=true" in manifest
    assert list_exports(any_engine)[0].manifest["records"]["classification"]["train"] == 4
    assert list_jobs(any_engine, kind="export")[0].state == "done"


def test_stopping_iteration_cancels_the_job(any_engine: Engine) -> None:
    import_pairs(any_engine, [NewPair(f"i{n}", "c", f"x = {n}\n", "y = 1\n") for n in range(6)])
    events = analyse_store(any_engine, workers=1, chunk=2)
    assert next(events).done == 2
    events.close()
    job = list_jobs(any_engine, kind="analyse")[0]
    assert job.state == "cancelled" and job.done == 2
    assert list(analyse_store(any_engine, workers=1))[-1].done == 4  # resumes with the rest


def test_export_job_replaces_only_an_earlier_export_even_when_the_folder_changes_while_it_runs(
    any_engine: Engine, tmp_path: Path,
) -> None:
    """D2 at the runner: a forced export replaces the earlier export as a whole; a folder that
    became something else while the job ran (after its checks) is refused at the swap, untouched."""
    import json
    from dataclasses import replace

    import pytest

    from core.errors import DataError, OptionError
    from core.training.export import ExportOptions
    from stores.training.exports import export_folder, list_exports
    from workbench.jobs.export import ExportParams, ExportStarted
    from workbench.jobs.runner import drain, run_foreground

    seed(any_engine)
    out = tmp_path / "exp"
    first = ExportParams(out_dir=str(out), options=ExportOptions(formats=("dpo", "chat"), validation_fraction=0.0))
    drain(run_foreground(any_engine, "export", first))
    again = ExportParams(out_dir=str(out), where=("status=accepted",), force=True,
                         options=ExportOptions(formats=("classification",), validation_fraction=0.0))
    with pytest.raises(Exception, match="no pairs match"):  # refused before any job: the old export stays
        drain(run_foreground(any_engine, "export", again))
    assert (out / "dpo" / "train.jsonl").is_file()
    drain(run_foreground(any_engine, "export", replace(again, where=())))
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert files == {"manifest.json", *manifest["files"]} == {
        "manifest.json", "classification/train.jsonl", "classification/validation.jsonl"}
    # The replaced export is no longer offered, and training on it by id is refused: its folder holds other pairs.
    (current,) = list_exports(any_engine)
    assert current.formats == "classification" and export_folder(any_engine, current.id) == str(out.resolve())
    with pytest.raises(DataError, match=f"replaced by export {current.id}"):
        export_folder(any_engine, current.id - 1)

    taken = tmp_path / "taken"
    events = run_foreground(any_engine, "export", ExportParams(out_dir=str(taken), options=ExportOptions()))
    while not isinstance(next(events), ExportStarted):  # its checks passed: the folder did not exist
        pass
    taken.mkdir()
    (taken / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OptionError, match="may not be replaced"):
        drain(events)
    assert [p.name for p in taken.iterdir()] == ["notes.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left
    assert list_jobs(any_engine, kind="export")[0].state == "failed" and len(list_exports(any_engine)) == 1

