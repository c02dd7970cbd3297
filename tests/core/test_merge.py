from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.training.checkpoints import CheckpointError

torch = pytest.importorskip("torch")


def _perturbed_copy(source: Path, target: Path, seed: int, dtype: object = None) -> Path:
    from safetensors.torch import load_file, save_file

    shutil.copytree(source, target)
    tensors = load_file(source / "model.safetensors")
    generator = torch.Generator().manual_seed(seed)
    changed = {name: (value + torch.randn(value.shape, generator=generator)).to(dtype or value.dtype)
               for name, value in tensors.items()}
    save_file(changed, target / "model.safetensors", metadata={"format": "pt"})
    return target


def test_merge_of_two_checkpoints_is_exactly_the_weighted_average(tiny_model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from core.training.merge import MergeFinished, merge_checkpoints

    first = _perturbed_copy(tiny_model_dir, tmp_path / "a", 1)
    second = _perturbed_copy(tiny_model_dir, tmp_path / "b", 2)
    events = list(merge_checkpoints([first, second], [3.0, 1.0], tmp_path / "merged", shard_bytes=20_000))
    finished = events[-1]
    assert isinstance(finished, MergeFinished)
    assert finished.verified is True and finished.shard_count > 1
    assert finished.weights == (0.75, 0.25)

    from transformers import AutoModelForCausalLM

    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged").state_dict()
    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    for name, value in a.items():
        expected = value.float() * 0.75
        expected.add_(b[name].float(), alpha=0.25)
        assert torch.equal(merged[name], expected), name
    assert (tmp_path / "merged" / "tokenizer.json").is_file()
    lineage = json.loads((tmp_path / "merged" / "merge_lineage.json").read_text())
    assert lineage["weights"] == [3.0, 1.0] and len(lineage["inputs"]) == 2


def test_bf16_merge_matches_the_float32_average_rounded_once(tiny_model_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from core.training.merge import merge_checkpoints

    first = _perturbed_copy(tiny_model_dir, tmp_path / "a", 1, torch.bfloat16)
    second = _perturbed_copy(tiny_model_dir, tmp_path / "b", 2, torch.bfloat16)
    list(merge_checkpoints([first, second], [1, 1], tmp_path / "merged", verify=False))
    merged = load_file(tmp_path / "merged" / "model.safetensors")
    a, b = load_file(first / "model.safetensors"), load_file(second / "model.safetensors")
    for name, value in a.items():
        expected = (value.float() * 0.5).add_(b[name].float(), alpha=0.5).to(torch.bfloat16)
        assert merged[name].dtype == torch.bfloat16 and torch.equal(merged[name], expected), name


def test_merge_refuses_different_architectures_before_writing(tiny_model_dir: Path, tmp_path: Path) -> None:
    from core.training.merge import merge_checkpoints
    from core.training.tiny import make_tiny_model

    other = make_tiny_model(tmp_path / "wide", hidden_size=64)
    with pytest.raises(CheckpointError, match="hidden_size"):
        list(merge_checkpoints([tiny_model_dir, other], [1, 1], tmp_path / "out"))
    assert not (tmp_path / "out").exists()


_MEMORY_PROBE = r"""
import re, sys, json
from pathlib import Path
import torch
from core.training.merge import merge_checkpoints

def status(field):
    return int(re.search(field + r":\s+(\d+)", Path("/proc/self/status").read_text()).group(1))

(torch.zeros(1) + 1).sum()  # warm up the allocator and kernels before the baseline
Path("/proc/self/clear_refs").write_text("5")  # resets the peak (VmHWM) to the current RSS
before = status("VmRSS")
for _ in merge_checkpoints([Path(sys.argv[1]), Path(sys.argv[2])], [1, 1], Path(sys.argv[3]), verify=False):
    pass
print(json.dumps({"growth_kib": status("VmHWM") - before}))
"""


def _big_checkpoint(folder: Path, seed: int, tensor_count: int, numel: int) -> int:
    from safetensors.torch import save_file

    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    generator = torch.Generator().manual_seed(seed)
    tensors = {f"layer.{i}.weight": torch.randn(numel, generator=generator) for i in range(tensor_count)}
    save_file(tensors, folder / "model.safetensors")
    return (folder / "model.safetensors").stat().st_size


def test_merge_peak_memory_stays_near_one_tensor(tmp_path: Path) -> None:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to reset and read the peak resident memory")
    tensor_bytes = 2_000_000 * 4
    input_bytes = _big_checkpoint(tmp_path / "a", 1, 24, 2_000_000)
    _big_checkpoint(tmp_path / "b", 2, 24, 2_000_000)
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "out")],
        capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2],
    )
    growth = json.loads(result.stdout.strip().splitlines()[-1])["growth_kib"] * 1024
    print(f"inputs 2 x {input_bytes / 2**20:.0f} MiB, largest tensor {tensor_bytes / 2**20:.0f} MiB, "
          f"peak RSS growth {growth / 2**20:.1f} MiB")
    assert growth < 4 * tensor_bytes < input_bytes / 5
