"""Trainer process entry point: `python -m core.training.train_main RUN_DIR`, also under accelerate's launcher.

Reads RUN_DIR/recipe.json, trains, and writes events to RUN_DIR/events.jsonl (main process only). SIGTERM,
SIGINT or a `stop-requested` file in RUN_DIR stops every rank after the current optimizer step with a
verified checkpoint, so a later run resumes from it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType

EXIT_CANCELLED = 3


def main(argv: list[str] | None = None) -> int:
    """Run one training job; exit 0 when done, 3 when cancelled, 1 on failure."""
    parser = argparse.ArgumentParser(prog="core.training.train_main")
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--no-resume", action="store_true")
    parser.add_argument("--local_rank", type=int, default=None)  # DeepSpeed's launcher may pass it
    args = parser.parse_args(argv)

    from core.training.callbacks import EventLog
    from core.training.recipes import recipe_from_dict
    from core.training.runs import STOP_FILE
    from core.training.trainer import train

    stop_requested = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stop_requested
        stop_requested = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    stop_file = args.run_dir / STOP_FILE
    rank = os.environ.get("RANK", "0")
    events = EventLog(args.run_dir, enabled=int(os.environ.get("RANK", "0")) == 0)
    try:
        recipe = recipe_from_dict(json.loads((args.run_dir / "recipe.json").read_text(encoding="utf-8")))
        outcome = train(recipe, args.run_dir, should_stop=lambda: stop_requested or stop_file.exists(),
                        resume=not args.no_resume)
    except Exception as exc:
        traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"rank {rank}: training failed: {type(exc).__name__}: {first}", flush=True)
        events.write("status", state="failed", error=f"{type(exc).__name__}: {first}")
        return 1
    print(f"rank {rank}: training {outcome.state} at step {outcome.step}/{outcome.total_steps}: {outcome.checkpoint}",
          flush=True)
    return EXIT_CANCELLED if outcome.state == "cancelled" else 0


if __name__ == "__main__":
    sys.exit(main())
