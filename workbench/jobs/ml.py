"""Loading the ML libraries once per worker process, under a lock.

A worker runs jobs in threads, and transformers' lazily loaded top-level module is not safe to
import from two threads at once: a merge verifying its result while a pair-rm judge loads failed
with "cannot import name 'AutoConfig'". Runners that need the libraries call `load_ml()` first.
"""

from __future__ import annotations

import threading

_LOCK = threading.Lock()
_loaded = False


def load_ml() -> None:
    """Import torch and the transformers classes the workbench uses, once per process (ImportError when absent)."""
    global _loaded
    with _LOCK:
        if _loaded:
            return
        import torch  # noqa: F401
        from transformers import (  # noqa: F401
            AutoConfig,
            AutoModelForCausalLM,
            AutoTokenizer,
        )

        _loaded = True


def needs_ml(spec: str) -> bool:
    """True for a judge or model spec that loads a local model (pair-rm:PATH, hf:PATH)."""
    return spec.startswith(("pair-rm:", "hf:"))
