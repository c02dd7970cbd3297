from __future__ import annotations

from pathlib import Path

import pytest

from core.errors import OptionError
from core.evaluation.bench import JudgeItem, judge_items, load_benchmark
from core.evaluation.judges import make_judge
from tests.fixtures import BENCH_DIR  # noqa: E402


def _items() -> list[JudgeItem]:
    if BENCH_DIR.is_dir():
        items = judge_items(load_benchmark(BENCH_DIR), objectives=("efficiency", "human-preference"), limit=6)
        return sorted(items, key=lambda item: len(item.code_a) + len(item.instruction))[:8]
    code = "def f(xs):\n    return sorted(xs)[0]\n"
    return [JudgeItem("efficiency", f"t/{n}", "given", "Find the minimum." * (n + 1), code * (n + 1), "def f(xs):\n    return min(xs)\n", "fast", "B") for n in range(6)]


def test_pair_rm_on_a_tiny_model_agrees_with_the_batch_one_full_logits_loop(tiny_model_dir: Path) -> None:
    torch = pytest.importorskip("torch")
    from core.evaluation.pair_rm import full_logits_decisions, last_position_logits

    judge = make_judge(f"pair-rm:{tiny_model_dir}", device="cpu", batch_size=4)
    items = _items()
    head_inputs: list[tuple[int, ...]] = []
    hook = judge.model.get_output_embeddings().register_forward_hook(  # type: ignore[attr-defined]
        lambda _module, args, _out: head_inputs.append(tuple(args[0].shape))
    )
    outputs = judge.decide(items)
    hook.remove()
    assert len(outputs) == len(items)
    assert all(len(shape) == 2 for shape in head_inputs)  # (batch, hidden): only last positions
    assert sum(shape[0] for shape in head_inputs) == sum(1 for o in outputs if o.raw.startswith("{"))
    reference = full_logits_decisions(judge.model, judge.tokenizer, items, "cpu")  # type: ignore[attr-defined]
    fitting = [(o.decision, r) for o, r in zip(outputs, reference) if o.raw.startswith("{")]
    assert fitting and all(ours == theirs for ours, theirs in fitting)
    assert all(o.decision in ("A", "B") and o.prompt_tokens > 0 and o.latency_s > 0 for o in outputs if o.raw.startswith("{"))

    sequences = [judge.tokenizer(t, add_special_tokens=False)["input_ids"] for t in ("def f(): pass", "A B " * 40, "x = [1, 2, 3]\n" * 7)]  # type: ignore[attr-defined]
    ids = (judge.id_a, judge.id_b)  # type: ignore[attr-defined]
    with torch.inference_mode():
        alone = torch.cat([last_position_logits(judge.model, [s], judge.pad_id, ids, "cpu") for s in sequences])  # type: ignore[attr-defined]
        left = last_position_logits(judge.model, sequences, judge.pad_id, ids, "cpu", padding_side="left")  # type: ignore[attr-defined]
        right = last_position_logits(judge.model, sequences, judge.pad_id, ids, "cpu", padding_side="right")  # type: ignore[attr-defined]
    assert torch.allclose(alone, left, atol=1e-4) and torch.allclose(alone, right, atol=1e-4)
    assert judge.lineage["architecture"] == "LlamaForCausalLM"
    judge.close()


def test_pair_rm_marks_prompts_longer_than_the_context_undecided(tiny_model_dir: Path) -> None:
    judge = make_judge(f"pair-rm:{tiny_model_dir}", device="cpu")
    huge = JudgeItem("security", "t/long", "given", "x" * 20000, "a = 1\n", "b = 2\n", "safe", "A")
    [output] = judge.decide([huge])
    assert output.decision == "?" and "exceeds" in output.raw


def test_pair_rm_errors_are_one_clear_line(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    with pytest.raises(OptionError, match="does not exist"):
        make_judge(f"pair-rm:{tmp_path / 'missing'}", device="cpu")
    (tmp_path / "empty").mkdir()
    with pytest.raises(OptionError, match="cannot load pair-rm model"):
        make_judge(f"pair-rm:{tmp_path / 'empty'}", device="cpu")
