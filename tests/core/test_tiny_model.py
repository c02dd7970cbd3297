from __future__ import annotations

from pathlib import Path

import pytest


def test_tiny_model_loads_and_answers_single_token_labels(tiny_model_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    for label in ("A", "B"):
        assert len(tokenizer.encode(label, add_special_tokens=False)) == 1
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "def f(): pass"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<|assistant|>\n")
    ids = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert logits.shape[-1] == len(tokenizer)
    assert torch.isfinite(logits).all()
