"""Print the latest pipeline job of a store as JSON: lineage, eval scores (given order, both orders,
order consistency) and wall time. Used by quality_cpu.sh and quality_gpu.sh.

    python tests/bench/quality_summary.py DB_URL_OR_PATH
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from stores.db import make_engine
from stores.jobs import list_jobs


def main() -> None:
    engine = make_engine(sys.argv[1])
    jobs = list_jobs(engine, kind="pipeline")
    if not jobs:
        sys.exit("error: no pipeline job in this store")
    job = jobs[0]
    lineage = job.summary.get("lineage", {})
    seconds = (job.finished_at - job.created_at).total_seconds() if job.finished_at and job.created_at else None
    scores = lineage.get("eval_scores", {})
    verifiable = [scores[o] for o in ("correctness", "efficiency", "security") if o in scores]
    print(json.dumps({
        "pipeline": lineage.get("pipeline"), "state": job.state, "error": job.error, "seconds": seconds,
        "given_order_accuracy": scores, "both_orders_accuracy": lineage.get("eval_both_orders"),
        "order_consistency": lineage.get("eval_consistency"),
        "verifiable_average_given": round(sum(verifiable) / len(verifiable), 4) if verifiable else None,
        "lineage": lineage,
    }, indent=2, default=str))


if __name__ == "__main__":
    main()
