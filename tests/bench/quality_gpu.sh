#!/usr/bin/env bash
# The quality run on the lent GPU machine (#18), third of three device calls (see prepare_quality_gpu.sh):
# installs the carried wheels, writes SmolLM2 as a bf16 safetensors folder from the joined GGUF, clones
# the carried repository, runs recipes/pipeline/smollm2-135m-quality.yaml, then the pair-rm throughput
# bench (tests/bench/bench_eval.py --device cuda). Everything it measures lands in $OUT.
set -euo pipefail
: "${OUT:?run on the device machine, where OUT is set}"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} TOKENIZERS_PARALLELISM=false
python3 -m pip install -q --no-index --find-links .gpu/c/wheels --find-links /root/models \
  "textual[syntax]==8.2.8" typer rich sqlmodel sqlalchemy gitpython radon bandit pyyaml pydantic aiohttp \
  rapidfuzz datasketch scipy textual-plotext astor trl datasets pyarrow gguf 2>&1 | tail -3 || true
mkdir -p data/repos
ln -sfn "$PWD/.gpu/c/codeprefbench" data/codeprefbench
[ -d data/repos/requests ] || git clone -q /root/models/repo.bundle data/repos/requests
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
python3 tests/bench/smollm2_folder.py models/smollm2-135m-instruct --gguf /root/models/smol.gguf --dtype bfloat16
start=$(date +%s)
timeout 540 python3 -m workbench.cli --db "$OUT/quality.db" pipeline recipes/pipeline/smollm2-135m-quality.yaml \
  2>&1 | tee "$OUT/pipeline.log" || echo "pipeline exit $?" | tee -a "$OUT/pipeline.log"
echo "wall seconds: $(( $(date +%s) - start ))" | tee -a "$OUT/pipeline.log"
python3 tests/bench/quality_summary.py "$OUT/quality.db" | tee "$OUT/quality.json" || true
python3 tests/bench/bench_eval.py --model models/smollm2-135m-instruct --device cuda --bench data/codeprefbench \
  --sample 100 2>&1 | tee "$OUT/bench_eval.txt" || true
