"""The local transformers backend with a tiny random-init model: real batched generation on CPU."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.llm import ChatRequest, SamplingParams, make_backend


def test_tiny_model_answers_batches_in_order(tiny_model_dir: Path) -> None:
    backend = make_backend(f"hf:{tiny_model_dir}?batch_size=3&device=cpu")
    short = SamplingParams(max_tokens=5)
    requests = [ChatRequest(({"role": "user", "content": f"def f{i}(): pass " * (i + 1)},), short) for i in range(5)]

    async def run() -> list[object]:
        try:
            concurrent = await asyncio.gather(*(backend.chat(r) for r in requests))
            alone = await backend.chat(requests[4])
            return [*concurrent, alone]
        finally:
            await backend.aclose()

    results = asyncio.run(run())
    assert len(results) == 6
    for result in results:
        assert isinstance(result.text, str)  # type: ignore[attr-defined]
        assert 1 <= result.completion_tokens <= 5 and result.prompt_tokens > 0  # type: ignore[attr-defined]
        assert result.finish_reason in ("stop", "length")  # type: ignore[attr-defined]
    # Greedy decoding: the same prompt gives the same answer alone or inside a padded batch.
    assert results[4].text == results[5].text  # type: ignore[attr-defined]
    assert results[0].prompt_tokens < results[4].prompt_tokens  # type: ignore[attr-defined]


def test_missing_model_is_one_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from core.errors import LLMError

    with pytest.raises(LLMError, match="cannot load model"):
        make_backend(f"hf:{tmp_path / 'nothing-here'}")
