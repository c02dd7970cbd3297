from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")


def test_a_good_checkpoint_verifies_with_finite_ab_logits(tiny_model_dir: Path) -> None:
    from core.training.verify import verify_checkpoint

    report = verify_checkpoint(tiny_model_dir)
    assert report.ok, report.problems
    assert report.logit_a is not None and report.logit_b is not None
    assert report.tensor_count > 0


def test_verification_catches_a_truncated_weights_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    from core.training.verify import verify_checkpoint

    broken = shutil.copytree(tiny_model_dir, tmp_path / "broken")
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    report = verify_checkpoint(broken)
    assert not report.ok
    assert "truncated" in report.problems[0]


def test_verification_catches_zero3_placeholder_tensors(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    from core.training.verify import verify_checkpoint

    broken = shutil.copytree(tiny_model_dir, tmp_path / "zero3")
    tensors = load_file(broken / "model.safetensors")
    name = next(n for n in tensors if "mlp" in n)
    tensors[name] = torch.empty(0)
    save_file(tensors, broken / "model.safetensors", metadata={"format": "pt"})
    report = verify_checkpoint(broken)
    assert not report.ok
    assert name in report.problems[0] and "[0]" in report.problems[0]


def test_verification_catches_a_missing_tensor_and_a_missing_folder(tiny_model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from core.training.verify import verify_checkpoint

    broken = shutil.copytree(tiny_model_dir, tmp_path / "missing")
    tensors = load_file(broken / "model.safetensors")
    name = sorted(tensors)[-1]
    del tensors[name]
    save_file(tensors, broken / "model.safetensors", metadata={"format": "pt"})
    assert verify_checkpoint(broken).problems[0] == f"missing tensor {name}"
    assert "no config.json" in verify_checkpoint(tmp_path / "nowhere").problems[0]
    json.loads((broken / "config.json").read_text())


def _gpt2_relying_on_the_default_tie(tiny_model_dir: Path, out: Path) -> Path:
    """A GPT-2 checkpoint whose config.json, like the hub's gpt2, does not say that the head is tied."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=512, n_embd=32, n_layer=1, n_head=2,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    raw = json.loads((out / "config.json").read_text())
    raw.pop("tie_word_embeddings", None)
    (out / "config.json").write_text(json.dumps(raw))
    return out


def test_a_gpt2_checkpoint_relying_on_the_default_tie_verifies(tiny_model_dir: Path, tmp_path: Path) -> None:
    from safetensors import safe_open

    from core.training.verify import verify_checkpoint

    folder = _gpt2_relying_on_the_default_tie(tiny_model_dir, tmp_path / "gpt2")
    with safe_open(folder / "model.safetensors", "pt") as handle:
        assert "lm_head.weight" not in handle.keys()  # noqa: SIM118  (safe_open has no __contains__)  # saved once, as the embedding
    report = verify_checkpoint(folder)
    assert report.ok, report.problems
    assert report.logit_a is not None


def test_an_untied_head_that_is_missing_still_fails(tiny_model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    from core.training.verify import verify_checkpoint

    broken = shutil.copytree(tiny_model_dir, tmp_path / "untied")  # the tiny Llama says tie_word_embeddings: false
    tensors = load_file(broken / "model.safetensors")
    del tensors["lm_head.weight"]
    save_file(tensors, broken / "model.safetensors", metadata={"format": "pt"})
    assert verify_checkpoint(broken).problems[0] == "missing tensor lm_head.weight"
