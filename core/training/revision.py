"""Which exact weights a run starts from: the hub commit of a downloaded model, else a content hash.

Recorded in the lineage of training runs and checkpoints, so a score can be traced to the base model's
revision and not only to its name. Needs no torch.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SAMPLE_BYTES = 1 << 20
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True, slots=True)
class ModelRevision:
    """A model and its revision: `kind` is hub-commit, content-sha256, or unknown (revision None)."""

    model: str
    revision: str | None
    kind: str

    def to_lineage(self) -> dict[str, Any]:
        """The lineage fields: base_model, base_revision, base_revision_kind."""
        data = asdict(self)
        return {"base_model": data["model"], "base_revision": data["revision"], "base_revision_kind": data["kind"]}


def model_revision(source: str, gguf_file: str | None = None) -> ModelRevision:
    """The revision of a model folder or hub id, from the hub's own records when it has them.

    A folder inside the hub cache (`.../snapshots/<commit>/`) or downloaded with `local_dir`
    (`.cache/huggingface/download/*.metadata`) gives its commit; any other folder gets a SHA-256 of
    config.json, the weights index or each safetensors header, and each weights file's size with its
    first and last MiB (content-sha256). A hub id is looked up in the local hub cache; offline and not
    cached, its revision is unknown.
    """
    folder = Path(source).expanduser()
    if folder.is_dir():
        commit = _snapshot_commit(folder.resolve()) or _download_metadata_commit(folder)
        if commit:
            return ModelRevision(source, commit, "hub-commit")
        return ModelRevision(source, _content_hash(folder, gguf_file), "content-sha256")
    cached = _hub_cache_commit(source)
    return ModelRevision(source, cached, "hub-commit" if cached else "unknown")


def _snapshot_commit(folder: Path) -> str | None:
    parts = folder.parts
    for index in range(len(parts) - 1):
        if parts[index] == "snapshots" and _COMMIT.match(parts[index + 1]):
            return parts[index + 1]
    return None


def _download_metadata_commit(folder: Path) -> str | None:
    # huggingface_hub's local_dir downloads keep one metadata file per file: commit hash on the first line.
    metadata = folder / ".cache" / "huggingface" / "download" / "config.json.metadata"
    try:
        first = metadata.read_text(encoding="utf-8").splitlines()[0].strip()
    except (OSError, IndexError, UnicodeDecodeError):
        return None
    return first if _COMMIT.match(first) else None


def _hub_cache_commit(repo_id: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # a name the hub client refuses (not a repo id) simply has no cached revision
        return None
    return _snapshot_commit(Path(found)) if isinstance(found, str) else None


def _content_hash(folder: Path, gguf_file: str | None) -> str:
    digest = hashlib.sha256()
    for name in ("config.json", "model.safetensors.index.json"):
        path = folder / name
        if path.is_file():
            digest.update(name.encode() + b"\0" + path.read_bytes())
    weights = [folder / gguf_file] if gguf_file else sorted(folder.glob("*.safetensors"))
    for path in weights:
        if not path.is_file():
            continue
        size = path.stat().st_size
        digest.update(f"{path.name}\0{size}\0".encode())
        with path.open("rb") as handle:
            if path.suffix == ".safetensors":
                digest.update(_safetensors_header(handle))
            digest.update(handle.read(SAMPLE_BYTES))
            handle.seek(max(0, size - SAMPLE_BYTES))
            digest.update(handle.read(SAMPLE_BYTES))
    return digest.hexdigest()


def _safetensors_header(handle: Any) -> bytes:
    prefix = handle.read(8)
    if len(prefix) < 8:
        return prefix
    (length,) = struct.unpack("<Q", prefix)
    header = handle.read(min(length, 100 * 1024 * 1024))
    try:  # key order is not meaningful; hash the parsed header canonically
        return json.dumps(json.loads(header), sort_keys=True).encode()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return header
