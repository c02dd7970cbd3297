"""A session-wide tiny model for tests that need torch (skipped when torch is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from core.training.tiny import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))
