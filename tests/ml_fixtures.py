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


def make_scripted_model(out_dir: Path, script: list[str]) -> Path:
    """A real tiny Llama whose greedy answer to any chat is `script` joined, then end of text.

    Each piece becomes one added token; the layers add nothing to the residual stream, so the
    next token depends on the current one only, and the head maps each piece to the next.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core.training.tiny import make_tiny_model

    folder = make_tiny_model(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.add_tokens(list(script))
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    chain = [tokenizer(prompt, add_special_tokens=False)["input_ids"][-1]]
    chain += [tokenizer.convert_tokens_to_ids(piece) for piece in script] + [tokenizer.eos_token_id]
    assert len(set(chain[:-1])) == len(chain) - 1 <= model.config.hidden_size
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.model.embed_tokens.weight.zero_()
        model.lm_head.weight.zero_()
        for step, (current, following) in enumerate(zip(chain, chain[1:])):
            model.model.embed_tokens.weight[current, step] = 1.0
            model.lm_head.weight[following, step] = 10.0
    tokenizer.save_pretrained(folder)
    model.save_pretrained(folder, safe_serialization=True)
    return folder
