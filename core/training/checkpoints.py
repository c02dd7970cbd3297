"""Checkpoint folders without torch: weight files, safetensors headers, completeness checks."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from core.errors import WorkbenchError

MAX_HEADER_BYTES = 100 * 1024 * 1024
DTYPE_BYTES = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1,
    "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "U32": 4, "U64": 8,
}
# Files a merged model needs beside its weights: configs and every tokenizer file.
SIDE_FILE_PATTERNS = (
    "config.json", "generation_config.json", "tokenizer*", "special_tokens_map.json", "vocab*",
    "merges.txt", "added_tokens.json", "chat_template*", "*.model", "*.tiktoken",
)


class CheckpointError(WorkbenchError):
    """A checkpoint folder is missing, truncated, or does not match the others."""


@dataclass(frozen=True, slots=True)
class TensorEntry:
    """Where one tensor lives in a safetensors file."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    file: Path
    start: int  # absolute byte offset in the file
    end: int

    @property
    def nbytes(self) -> int:
        """Size of the tensor's data in bytes."""
        return self.end - self.start


def read_safetensors_header(path: Path) -> list[TensorEntry]:
    """Parse a safetensors header and check the file holds every byte it announces."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            prefix = handle.read(8)
            if len(prefix) < 8:
                raise CheckpointError(f"{path}: truncated (no safetensors header); re-save the checkpoint")
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > MAX_HEADER_BYTES or 8 + header_len > size:
                raise CheckpointError(f"{path}: truncated or not a safetensors file (header overruns the file)")
            header = json.loads(handle.read(header_len))
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot read ({exc.strerror})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt safetensors header") from exc
    base = 8 + header_len
    entries = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, finish = info["data_offsets"]
        dtype, shape = info["dtype"], tuple(int(d) for d in info["shape"])
        expected = DTYPE_BYTES.get(dtype, 0) * _numel(shape)
        if dtype in DTYPE_BYTES and finish - begin != expected:
            raise CheckpointError(f"{path}: tensor {name} has {finish - begin} bytes, its shape needs {expected}")
        entries.append(TensorEntry(name, dtype, shape, path, base + begin, base + finish))
    data_end = max((entry.end for entry in entries), default=base)
    if data_end > size:
        raise CheckpointError(
            f"{path}: truncated: {size} bytes on disk, the header needs {data_end}; re-save or re-copy it"
        )
    return sorted(entries, key=lambda entry: entry.start)


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def weight_files(checkpoint: Path) -> list[Path]:
    """The safetensors files of a checkpoint folder (single file or the shards of its index)."""
    if not checkpoint.is_dir():
        raise CheckpointError(f"{checkpoint}: not a checkpoint folder")
    index = checkpoint / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{index}: corrupt shard index") from exc
        files = [checkpoint / name for name in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise CheckpointError(f"{checkpoint}: shard {missing[0]} listed in the index is missing")
        return files
    single = checkpoint / "model.safetensors"
    if single.is_file():
        return [single]
    raise CheckpointError(
        f"{checkpoint}: no model.safetensors (or index); save with safe_serialization=True"
    )


def checkpoint_tensors(checkpoint: Path) -> dict[str, TensorEntry]:
    """Every tensor of a checkpoint folder by name, with all files checked for truncation."""
    tensors: dict[str, TensorEntry] = {}
    for file in weight_files(checkpoint):
        for entry in read_safetensors_header(file):
            tensors[entry.name] = entry
    return tensors


def read_config(checkpoint: Path) -> dict[str, object]:
    """The checkpoint's config.json as a dict."""
    path = checkpoint / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise CheckpointError(f"{checkpoint}: no config.json; not a transformers checkpoint") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: not valid JSON") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: not a config mapping")
    return config


def side_files(checkpoint: Path) -> list[Path]:
    """Config and tokenizer files to copy next to merged weights."""
    found: dict[str, Path] = {}
    for pattern in SIDE_FILE_PATTERNS:
        for path in checkpoint.glob(pattern):
            if path.is_file():
                found[path.name] = path
    return [found[name] for name in sorted(found)]


# What makes a checkpoint folder resumable, as core.training.callbacks.verified_checkpoints reads it
# (kept here without torch, so the TUI can say it): `checkpoint-N` holding the trainer's state and the
# verification record. Anything else under `checkpoints/` is unfinished and cannot be resumed from.
CHECKPOINT_PREFIX = "checkpoint-"
TRAINER_STATE_FILE = "trainer_state.json"
VERIFIED_FILE = "verified.json"


@dataclass(frozen=True, slots=True)
class RunCheckpoints:
    """A run folder's checkpoints: complete ones (a re-run resumes from the newest) and unfinished ones."""

    complete: tuple[str, ...]
    partial: tuple[str, ...]

    def describe(self) -> str:
        """One line on whether the run can be resumed, and from where."""
        if self.complete:
            return f"resumable from {Path(self.complete[-1]).name} (start the same recipe again)"
        if self.partial:
            names = ", ".join(Path(path).name for path in self.partial)
            return f"nothing resumable: only {names}, an unfinished checkpoint; a re-run starts from step 0"
        return "nothing resumable: no checkpoint was saved; a re-run starts from step 0"


def run_checkpoints(run_dir: str | Path) -> RunCheckpoints:
    """The checkpoint folders of a run: verified `checkpoints/checkpoint-N` ones sorted by step (the
    newest is where the trainer resumes), and every other folder there as unfinished (no torch needed)."""
    folder = Path(run_dir) / "checkpoints"
    complete: list[tuple[int, str]] = []
    partial: list[str] = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        step = path.name.removeprefix(CHECKPOINT_PREFIX)
        if (path.name.startswith(CHECKPOINT_PREFIX) and step.isdigit() and (path / TRAINER_STATE_FILE).is_file()
                and (path / VERIFIED_FILE).is_file()):
            complete.append((int(step), str(path)))
        elif path.is_dir():
            partial.append(str(path))
    return RunCheckpoints(tuple(path for _step, path in sorted(complete)), tuple(partial))
