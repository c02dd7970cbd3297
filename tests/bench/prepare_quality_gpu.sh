#!/usr/bin/env bash
# Prepares what tests/bench/quality_gpu.sh needs on the lent GPU machine, which reaches no network:
#   .gpu/a  SmolLM2 GGUF part 1                       (../shared/gpu/prepare-smollm2.sh)
#   .gpu/b  SmolLM2 GGUF part 2, the gguf wheel, and a git bundle of the repository to mine
#   .gpu/c  CodePrefBench and the wheels of the workbench's dependencies the GPU image lacks
# Each folder stays under the 64 MiB a device call carries. Run from the project root; .gpu/ is ignored.
#
# Then, one call right after the other (the machine is given back 30 s after a call):
#   1. carry [".gpu/a"]: mkdir -p /root/models && cp .gpu/a/part_aa /root/models/
#   2. carry [".gpu/b"]: cat /root/models/part_aa .gpu/b/part_ab > /root/models/smol.gguf && cp .gpu/b/*.bundle .gpu/b/*.whl /root/models/
#   3. carry [".gpu/c"]: bash tests/bench/quality_gpu.sh
set -euo pipefail
repo=${1:-/work/.mirror/psf+requests/repo}
bash ../shared/gpu/prepare-smollm2.sh
git -C "$repo" bundle create "$PWD/.gpu/b/repo.bundle" HEAD
mkdir -p .gpu/c/wheels
cp -r "${WORKBENCH_BENCH:-../shared/codeprefbench}" .gpu/c/codeprefbench
# The image has torch, transformers, accelerate, peft and safetensors; everything else comes as wheels.
python3 -m pip download -q -d .gpu/c/wheels --only-binary=:all: --python-version "${GPU_PYTHON:-3.11}" \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
  "textual[syntax]==8.2.8" "typer>=0.27.2" rich sqlmodel sqlalchemy gitpython radon bandit pyyaml "pydantic>=2.11" \
  aiohttp rapidfuzz datasketch scipy textual-plotext astor "trl>=1.16" "datasets>=4.7" pyarrow
du -sh .gpu/a .gpu/b .gpu/c
