"""Weighted checkpoint averaging that streams tensor by tensor, so memory stays near one tensor.

Inputs are read with plain seeks and reads (no mmap, whose pages would count as resident), and the
output shards are written header first, then tensor data in order, so no shard is ever held whole.
"""

from __future__ import annotations

import json
import math
import shutil
import struct
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from io import BufferedReader
from pathlib import Path
from typing import Any

import torch

from core.outputs import check_output_folder
from core.training.checkpoints import CheckpointError, TensorEntry, checkpoint_tensors, read_config, side_files
from core.training.weights import merge_weights

TORCH_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
FLOAT_DTYPES = {"F64", "F32", "F16", "BF16"}
DEFAULT_SHARD_BYTES = 2 * 1024**3
LINEAGE_FILE = "merge_lineage.json"


@dataclass(frozen=True, slots=True)
class MergeStarted:
    """The inputs passed their checks; `tensor_count` tensors will be averaged."""

    tensor_count: int
    total_bytes: int


@dataclass(frozen=True, slots=True)
class MergeProgress:
    """How many tensors are written so far."""

    done: int
    total: int


@dataclass(frozen=True, slots=True)
class MergeFinished:
    """The merged checkpoint is complete (and verified when asked)."""

    out_dir: str
    weights: tuple[float, ...]
    tensor_count: int
    shard_count: int
    seconds: float
    verified: bool | None = None
    problems: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


MergeEvent = MergeStarted | MergeProgress | MergeFinished


def check_compatible(inputs: Sequence[Path]) -> list[dict[str, TensorEntry]]:
    """Check that all checkpoints share one architecture, tensor names, shapes and dtypes."""
    if len(inputs) < 2:
        raise CheckpointError("merging needs at least two checkpoints")
    configs = [read_config(path) for path in inputs]
    first = configs[0]
    for path, config in zip(inputs[1:], configs[1:]):
        for key in ("model_type", "architectures", "hidden_size", "num_hidden_layers", "vocab_size"):
            if config.get(key) != first.get(key):
                raise CheckpointError(
                    f"{path}: {key} is {config.get(key)!r} but {inputs[0]} has {first.get(key)!r}; "
                    "only checkpoints of one architecture can be averaged"
                )
    tables = [checkpoint_tensors(path) for path in inputs]
    names = set(tables[0])
    for path, table in zip(inputs[1:], tables[1:]):
        if set(table) != names:
            odd = sorted(names ^ set(table))[0]
            raise CheckpointError(f"{path}: tensor {odd} is in one checkpoint but not the other")
        for name, entry in table.items():
            ref = tables[0][name]
            if entry.shape != ref.shape or entry.dtype != ref.dtype:
                raise CheckpointError(
                    f"{path}: tensor {name} is {entry.dtype}{list(entry.shape)}, "
                    f"{inputs[0]} has {ref.dtype}{list(ref.shape)}"
                )
            if entry.dtype not in TORCH_DTYPES:
                raise CheckpointError(f"{path}: tensor {name} has unsupported dtype {entry.dtype}")
    return tables


class _Scratch:
    """Buffers reused for every tensor: one read buffer and one float32 accumulator, both sized to the
    largest tensor, so the allocator never grows the heap tensor after tensor."""

    def __init__(self, entries: list[TensorEntry]) -> None:
        self.raw = bytearray(max((entry.nbytes for entry in entries), default=0))
        self.acc = torch.empty(max((math.prod(entry.shape) for entry in entries), default=0), dtype=torch.float32)
        self.handles: dict[Path, BufferedReader] = {}

    def read(self, entry: TensorEntry) -> memoryview:
        """The raw bytes of one tensor, valid until the next read."""
        if entry.file not in self.handles:
            self.handles[entry.file] = entry.file.open("rb")
        handle = self.handles[entry.file]
        handle.seek(entry.start)
        view = memoryview(self.raw)[: entry.nbytes]
        if handle.readinto(view) != entry.nbytes:
            raise CheckpointError(f"{entry.file}: truncated while reading {entry.name}")
        return view

    def close(self) -> None:
        """Close every input file."""
        for handle in self.handles.values():
            handle.close()


def _plan_shards(entries: list[TensorEntry], shard_bytes: int) -> list[list[TensorEntry]]:
    shards: list[list[TensorEntry]] = [[]]
    size = 0
    for entry in entries:
        if shards[-1] and size + entry.nbytes > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(entry)
        size += entry.nbytes
    return shards


def _header_bytes(shard: list[TensorEntry]) -> bytes:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for entry in shard:
        header[entry.name] = {"dtype": entry.dtype, "shape": list(entry.shape), "data_offsets": [offset, offset + entry.nbytes]}
        offset += entry.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # safetensors aligns the data start to 8 bytes
    return struct.pack("<Q", len(encoded)) + encoded


def merge_checkpoints(
    inputs: Sequence[str | Path],
    weights: Sequence[float],
    out_dir: str | Path,
    *,
    shard_bytes: int = DEFAULT_SHARD_BYTES,
    verify: bool = True,
    cancel: Any = None,
) -> Iterator[MergeEvent]:
    """Average checkpoints with `weights` (normalised to sum to one) into `out_dir`, yielding progress."""
    from core.training.verify import verify_checkpoint

    paths = [Path(path) for path in inputs]
    weights = merge_weights(weights, len(paths))
    norm = [weight / sum(weights) for weight in weights]
    out = check_output_folder(out_dir)
    started = time.monotonic()
    tables = check_compatible(paths)
    entries = list(tables[0].values())
    total_bytes = sum(entry.nbytes for entry in entries)
    yield MergeStarted(len(entries), total_bytes)
    out.mkdir(parents=True, exist_ok=True)
    shards = _plan_shards(entries, shard_bytes)
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))])
    scratch = _Scratch(entries)
    done, last_report = 0, 0.0
    try:
        for shard, name in zip(shards, names):
            with (out / name).open("wb") as sink:
                sink.write(_header_bytes(shard))
                for entry in shard:
                    if cancel is not None and cancel.is_set():
                        raise CheckpointError("merge cancelled; the output folder is incomplete")
                    sink.write(_average(entry.name, tables, norm, scratch))
                    done += 1
                    if time.monotonic() - last_report > 0.1:
                        last_report = time.monotonic()
                        yield MergeProgress(done, len(entries))
    finally:
        scratch.close()
    if len(shards) > 1:
        weight_map = {entry.name: name for shard, name in zip(shards, names) for entry in shard}
        index = {"metadata": {"total_size": total_bytes}, "weight_map": weight_map}
        (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2), encoding="utf-8")
    for file in side_files(paths[0]):
        shutil.copy2(file, out / file.name)
    lineage = {"inputs": [str(path.resolve()) for path in paths], "weights": list(weights), "normalised": norm}
    (out / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2), encoding="utf-8")
    yield MergeProgress(len(entries), len(entries))
    report = verify_checkpoint(out) if verify else None
    yield MergeFinished(
        str(out), tuple(norm), len(entries), len(shards), time.monotonic() - started,
        verified=None if report is None else report.ok, problems=() if report is None else report.problems,
    )


def _average(name: str, tables: list[dict[str, TensorEntry]], norm: list[float], scratch: _Scratch) -> bytes | memoryview:
    first = tables[0][name]
    numel = math.prod(first.shape)
    if first.dtype not in FLOAT_DTYPES or numel == 0:
        return scratch.read(first)  # integer buffers are copied, not averaged
    acc = scratch.acc[:numel]
    dtype = TORCH_DTYPES[first.dtype]
    for index, (table, weight) in enumerate(zip(tables, norm)):
        values = torch.frombuffer(scratch.read(table[name]), dtype=dtype, count=numel)
        if index == 0:
            acc.copy_(values).mul_(weight)
        else:
            acc.add_(values, alpha=weight)
    result = acc.to(dtype)  # no copy when the checkpoint is float32
    return memoryview(result.view(torch.uint8).numpy())  # type: ignore[arg-type]
