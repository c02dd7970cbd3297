"""Model and tokenizer names checked before anything loads: a local folder, a local file, or a hub
id already in the Hugging Face cache. Anything else would make transformers try the hub, which is
unreachable offline and took a minute of retries before it failed; it is refused at once instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from core.errors import OptionError

# Set to 1 on a machine that can reach the hub to let transformers download what is not local.
HUB_DOWNLOADS_ENV = "WORKBENCH_HUB_DOWNLOADS"
# config.json keys that name a model's context length, in the order transformers' configs use them.
CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")


def _cached_on_hub(name: str) -> bool:
    """Whether a hub id (`org/name`) has a config in the local Hugging Face cache."""
    if name.count("/") != 1 or name.startswith((".", "/", "~")):
        return False
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        return isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:  # noqa: BLE001  a name the hub library cannot even parse is not cached
        return False


def require_local_model(
    name: str,
    *,
    what: str,
    files: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> None:
    """Raise OptionError unless `name` is a local folder, a local file ending in one of `files`
    (such as `.gguf`), or a hub id in the local cache; `what` names the option in the message."""
    environ = os.environ if env is None else env
    path = Path(name).expanduser()
    if path.is_dir() or (path.is_file() and files and path.suffix in files):
        return
    if path.is_file():
        raise OptionError(f"{what}: {name} is a file; pass the model's folder")
    if environ.get(HUB_DOWNLOADS_ENV) == "1" or _cached_on_hub(name):
        return
    kind = "folder or " + "/".join(files) + " file" if files else "folder"
    raise OptionError(f"{what}: {name} is not a local {kind}, and hub downloads are unavailable "
                      f"(download it first and pass its folder, "
                      f"or set {HUB_DOWNLOADS_ENV}=1 where the hub is reachable)")


def context_length(folder: str | Path) -> int | None:
    """The context length a local model's config.json declares, or None when it does not say."""
    config = Path(folder).expanduser() / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in CONTEXT_KEYS:
        value = data.get(key) if isinstance(data, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
