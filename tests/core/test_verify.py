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
