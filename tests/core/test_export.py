"""Every export format written, read back and checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import OptionError
from core.evaluation.protocols import get_protocol
from core.training.export import ExportOptions, ExportPair, read_jsonl, rewrite_feedback, split_of, write_export

PAIRS = [
    ExportPair(i, "import" if i % 2 else "commit-instruct", f"Write f{i}.", "efficiency",
               f"def f{i}(xs):\n    # fast\n    return sum(xs)\n",
               f"def f{i}(xs):\n    total = 0\n    for x in xs:\n        total += x\n    return total\n",
               "The chosen code uses the builtin; [REJECTED] loops by hand. "
               "[CHOSEN] is better than [REJECTED] on the mentioned criteria." if i % 3 else "")
    for i in range(1, 41)
]


def export(tmp_path: Path, **kwargs: object) -> tuple[Path, dict]:
    out = tmp_path / "out"
    manifest = write_export(iter(PAIRS), out, ExportOptions(**kwargs), filter_spec=["status!=rejected"],
                            created_at="2024-01-01T00:00:00")
    return out, manifest.data


def test_classification_both_orders_stripped(tmp_path: Path) -> None:
    out, manifest = export(tmp_path, formats=("classification",), validation_fraction=0.25, seed=7)
    train = list(read_jsonl(out / "classification" / "train.jsonl"))
    validation = list(read_jsonl(out / "classification" / "validation.jsonl"))
    assert len(train) + len(validation) == 80 and validation
    assert {r["pair_id"] for r in train}.isdisjoint({r["pair_id"] for r in validation})
    first, second = [r for r in train if r["pair_id"] == train[0]["pair_id"]]
    assert (first["order"], first["label"], second["order"], second["label"]) == ("chosen_first", "A", "rejected_first", "B")
    pair = next(p for p in PAIRS if p.pair_id == first["pair_id"])
    chosen, rejected = get_protocol("codefavor").strip_pair(pair.chosen, pair.rejected)
    assert chosen == f"def f{pair.pair_id}(xs):\n    return sum(xs)\n"  # the reference's regeneration
    assert first["prompt"] == (f"[INSTRUCTION] {pair.instruction} [CODE_A] ```python\n{chosen}\n``` "
                               f"[CODE_B] ```python\n{rejected}\n``` [CRITERIA] {pair.criteria}\n")
    assert first["completion"] == "A" and "# fast" not in first["prompt"] and first["protocol"] == "codefavor"
    assert manifest["protocol"] == "codefavor"
    assert first["messages"] == [{"role": "user", "content": first["prompt"]}, {"role": "assistant", "content": "A"}]
    assert manifest["records"]["classification"] == {"train": len(train), "validation": len(validation)}
    assert manifest["pairs_by_source"] == {"commit-instruct": 20, "import": 20}
    again_out = tmp_path / "again"
    write_export(iter(PAIRS), again_out, ExportOptions(formats=("classification",), validation_fraction=0.25, seed=7),
                 filter_spec=[], created_at="x")
    assert (again_out / "classification" / "train.jsonl").read_bytes() == (out / "classification" / "train.jsonl").read_bytes()


def test_generation_rewrites_feedback_and_ends_with_verdict(tmp_path: Path) -> None:
    out, manifest = export(tmp_path, formats=("generation",), validation_fraction=0.0)
    records = list(read_jsonl(out / "generation" / "train.jsonl"))
    by_key = {(r["pair_id"], r["order"]): r for r in records}
    flipped = by_key[(1, "rejected_first")]["completion"]
    assert flipped == ("[CODE_B] uses the builtin; [CODE_A] loops by hand.\n"
                       "[RESULT]\nTherefore, [CODE_B] is better than [CODE_A] on [CRITERIA].")
    assert (3, "chosen_first") not in by_key  # empty feedback names neither code
    assert manifest["dropped"] == {"generation": {"feedback names neither code": 2 * 13}}
    assert all(r["completion"].endswith("on [CRITERIA].") for r in records)
    workbench, _ = export(tmp_path / "wb", formats=("generation",), validation_fraction=0.0, protocol="workbench")
    first = next(read_jsonl(workbench / "generation" / "train.jsonl"))
    assert first["completion"].endswith("\n\n[CODE_A] is better than [CODE_B] on the mentioned criteria.")


def test_one_order_is_seeded_and_balanced(tmp_path: Path) -> None:
    out, _ = export(tmp_path, formats=("classification", "generation"), validation_fraction=0.0, both_orders=False, seed=3)
    labels = [r["label"] for r in read_jsonl(out / "classification" / "train.jsonl")]
    assert len(labels) == 40 and labels.count("A") == 20
    assert labels != ["A", "B"] * 20 and labels != ["B", "A"] * 20
    again, _ = export(tmp_path / "again", formats=("classification",), validation_fraction=0.0, both_orders=False, seed=3)
    assert [r["label"] for r in read_jsonl(again / "classification" / "train.jsonl")] == labels
    other, _ = export(tmp_path / "other", formats=("classification",), validation_fraction=0.0, both_orders=False, seed=4)
    assert [r["label"] for r in read_jsonl(other / "classification" / "train.jsonl")] != labels
    generation = {r["pair_id"]: r["label"] for r in read_jsonl(out / "generation" / "train.jsonl")}
    classification = {r["pair_id"]: r["label"] for r in read_jsonl(out / "classification" / "train.jsonl")}
    assert all(classification[pair_id] == label for pair_id, label in generation.items())


def test_dpo_and_chat(tmp_path: Path) -> None:
    out, _ = export(tmp_path, formats=("dpo", "chat"), validation_fraction=0.0, strip=False)
    dpo = list(read_jsonl(out / "dpo" / "train.jsonl"))
    assert len(dpo) == 40 and set(dpo[0]) == {"prompt", "chosen", "rejected", "pair_id"}
    assert dpo[0]["prompt"] == "Write f1." and "# fast" in dpo[0]["chosen"]
    chat = list(read_jsonl(out / "chat" / "train.jsonl"))
    assert len(chat) == 80 - 2 * 13 and [m["role"] for m in chat[0]["messages"]] == ["user", "assistant"]  # 13 silent feedbacks


def test_parquet_and_datasets_on_disk(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    import pyarrow.parquet as pq
    from datasets import load_from_disk

    out, manifest = export(tmp_path, formats=("classification", "dpo"), validation_fraction=0.2, parquet=True, hf=True)
    table = pq.read_table(out / "classification" / "train.parquet")
    assert table.num_rows == manifest["records"]["classification"]["train"]
    assert table.column("label").to_pylist()[0] in ("A", "B")
    dataset = load_from_disk(str(out / "dpo" / "hf"))
    assert dataset["train"].num_rows + dataset["validation"].num_rows == 40
    assert json.loads((out / "manifest.json").read_text())["files"][-1] == "dpo/hf"


def test_token_length_statistics(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "A": 1, "B": 2}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer_dir = tmp_path / "tok"
    PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]").save_pretrained(tokenizer_dir)
    _, manifest = export(tmp_path, formats=("classification",), validation_fraction=0.0, tokenizer=str(tokenizer_dir))
    stats = manifest["token_lengths"]["classification"]["train"]
    assert stats["count"] == 80 and 50 < stats["min"] <= stats["p50"] <= stats["max"]
    with pytest.raises(OptionError, match="cannot load tokenizer"):
        export(tmp_path, tokenizer=str(tmp_path / "missing"))


def test_bad_options() -> None:
    with pytest.raises(OptionError, match="unknown export format"):
        ExportOptions(formats=("csv",)).check()
    with pytest.raises(OptionError, match="validation fraction"):
        ExportOptions(validation_fraction=1.5).check()


def test_feedback_rewrite_and_split_are_deterministic() -> None:
    assert rewrite_feedback("The rejected code leaks; the chosen code closes it.", "B", "A") == (
        "[CODE_A] leaks; [CODE_B] closes it.")
    assert [split_of(i, 1, 0.5) for i in range(20)] == [split_of(i, 1, 0.5) for i in range(20)]


class Stop(Exception):
    """What a job's cancel check raises inside `progress`."""


def test_an_export_stopped_midway_leaves_the_earlier_one_untouched(tmp_path: Path) -> None:
    out, first = export(tmp_path, formats=("classification", "dpo"))
    before = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}

    def stop_after_ten(done: int) -> None:
        if done == 10:
            raise Stop

    with pytest.raises(Stop):
        write_export(iter(PAIRS), out, ExportOptions(formats=("chat",)), filter_spec=[], created_at="x",
                     progress=stop_after_ten)
    assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the staging folder is gone
    manifest = write_export(iter(PAIRS[:4]), out, ExportOptions(formats=("chat",)), filter_spec=[], created_at="x")
    files = {str(path.relative_to(out)) for path in out.rglob("*") if path.is_file()}
    assert files == {"manifest.json", *manifest.data["files"]} and manifest.data["pair_count"] == 4
    assert first["pair_count"] == 40 and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_only_an_earlier_export_is_ever_replaced(tmp_path: Path) -> None:
    from core.training.export import check_export_folder, is_export_folder

    out, _ = export(tmp_path, formats=("dpo",))
    assert is_export_folder(out)
    with pytest.raises(OptionError, match="pass --force to replace it"):
        check_export_folder(out, replace=False, replace_option="--force")
    with pytest.raises(OptionError, match="may not be replaced"):  # the writer's own check, at the swap
        write_export(iter(PAIRS), out, ExportOptions(formats=("chat",)), filter_spec=[], created_at="x", replace=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "manifest.json").write_text('{"version": "something-else", "files": []}', encoding="utf-8")
    assert not is_export_folder(foreign)
    with pytest.raises(OptionError, match="is not a workbench export"):
        check_export_folder(foreign, replace=True)
    with pytest.raises(OptionError, match="may not be replaced"):
        write_export(iter(PAIRS), foreign, ExportOptions(formats=("chat",)), filter_spec=[], created_at="x")
    assert [p.name for p in foreign.iterdir()] == ["manifest.json"] and (out / "dpo" / "train.jsonl").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "out"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert check_export_folder(empty, replace=False) == empty
    write_export(iter(PAIRS), empty, ExportOptions(formats=("dpo",)), filter_spec=[], created_at="x", replace=False)
    assert is_export_folder(empty)


def test_a_staged_folder_gets_the_permissions_of_a_plain_mkdir(tmp_path: Path) -> None:
    """mkdtemp's owner-only mode must not reach the export: nodes of a training job read it too."""
    from core.outputs import staged_folder

    plain = tmp_path / "plain"
    plain.mkdir()
    with staged_folder(tmp_path / "exported", replaceable=lambda _folder: False) as staging:
        (staging / "manifest.json").write_text("{}", encoding="utf-8")
    assert (tmp_path / "exported").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
