"""Checkpoint verification: files complete, keys and shapes match the architecture, A/B logits finite."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.evaluation.prompts import classification_prompt, render_prompt
from core.training.checkpoints import CheckpointError, checkpoint_tensors, read_config


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What verification found: ok, the first problems, and the A/B logits of one forward pass."""

    path: str
    ok: bool
    problems: tuple[str, ...] = ()
    tensor_count: int = 0
    parameter_count: int = 0
    logit_a: float | None = None
    logit_b: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


def verify_checkpoint(checkpoint: str | Path, *, device: str = "cpu") -> VerifyReport:
    """Reload a saved checkpoint and check it completely; never raises for a bad checkpoint."""
    path = Path(checkpoint)
    try:
        read_config(path)
        tensors = checkpoint_tensors(path)
    except CheckpointError as exc:
        return VerifyReport(str(path), False, (str(exc),))
    problems = _compare_with_architecture(path, tensors)
    parameter_count = sum(math.prod(entry.shape) for entry in tensors.values())
    if problems:
        return VerifyReport(str(path), False, tuple(problems[:5]), len(tensors), parameter_count)
    try:
        logit_a, logit_b = _ab_logits(path, device)
    except Exception as exc:  # a checkpoint that fails to load or run is exactly what we report
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return VerifyReport(str(path), False, (f"reload or forward pass failed: {first}",), len(tensors), parameter_count)
    finite = math.isfinite(logit_a) and math.isfinite(logit_b)
    problems = [] if finite else [f"non-finite logits for A/B: {logit_a}, {logit_b}"]
    return VerifyReport(str(path), finite, tuple(problems), len(tensors), parameter_count, logit_a, logit_b)


def _compare_with_architecture(path: Path, tensors: dict) -> list[str]:
    """Every weight the architecture needs is saved with its shape; tied weights count once.

    Ties come from the model transformers builds from the resolved config (class defaults included, as
    GPT-2's tied head, whose config.json may not say so), never from config.json alone.
    """
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(path)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config)
    state = skeleton.state_dict()
    expected = {name: tuple(value.shape) for name, value in state.items()}
    # Names bound to one parameter (a tied head and its embedding) form one group; one saved copy suffices.
    aliases: dict[int, list[str]] = {}
    for name, parameter in skeleton.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(parameter), []).append(name)
    grouped = {name for names in aliases.values() for name in names}
    groups = [*aliases.values(), *([name] for name in state if name not in grouped)]
    problems = []
    for names in groups:
        present = [name for name in names if name in tensors]
        if not present:
            problems.append(f"missing tensor {names[0]}")
        for name in present:
            if tensors[name].shape != expected[name]:
                # ZeRO-3 saves without gathering write empty placeholders: shape (0,) instead of the weight.
                problems.append(f"tensor {name} has shape {list(tensors[name].shape)}, "
                                f"the architecture needs {list(expected[name])}")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        problems.append(f"unexpected tensor {unexpected[0]} (and {len(unexpected) - 1} more)")
    return problems


def _ab_logits(path: Path, device: str) -> tuple[float, float]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    model = model.to(torch.device(device)).eval()  # type: ignore[arg-type]
    token_ids = []
    for label in ("A", "B"):
        ids = tokenizer.encode(label, add_special_tokens=False)
        if len(ids) != 1:
            raise CheckpointError(f"the tokenizer splits {label!r} into {len(ids)} tokens")
        token_ids.append(ids[0])
    prompt = classification_prompt("Add two numbers.", "def add(a, b):\n    return a + b", "def add(a, b):\n    return a - b", "correctness")
    text = render_prompt(tokenizer, [{"role": "user", "content": prompt}])
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(device)
    with torch.no_grad():
        logits = model(**inputs, logits_to_keep=1).logits[0, -1].float()
    del model
    return float(logits[token_ids[0]]), float(logits[token_ids[1]])
