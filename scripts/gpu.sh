#!/usr/bin/env bash
# The prepared GPU check (`make gpu`), for a lent GPU machine that has torch with CUDA but no network, no
# diffusers and no Ray: run `make gpu-wheels` here first (it fills .whl/, which the device call carries),
# then run this script there, e.g. through the device tool:
#     carry: [".whl"]    command: "bash scripts/gpu.sh"    timeout_s: ~540
# It runs the gpu-marked tests and the FSDP step benchmark (bench/bench_fsdp_gpu.py), then trains the procedural
# backbone on the GPU for PRETRAIN_MINUTES (resuming from models/procedural-backbone), and leaves logs and the
# trained model under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/genprop-gpu-out}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 | tee "$OUT/gpu.txt"
# 1. tests that need CUDA
timeout 180 python3 -m pytest -q -p no:cacheprovider -m gpu -o addopts="" tests/test_gpu.py tests/test_propagation.py \
  2>&1 | tee "$OUT/gpu-tests.log"
# 2. a one-process FSDP step of a mid-size Wan in bf16: peak memory beside the capacity plan's prediction, MFU
timeout 240 python3 bench/bench_fsdp_gpu.py --json "$OUT/fsdp-step.json" 2>&1 | tee "$OUT/fsdp-step.log"
timeout 240 python3 bench/bench_fsdp_gpu.py --shard-backbone --json "$OUT/fsdp-step-sharded.json" 2>&1 \
  | tee "$OUT/fsdp-step-sharded.log"
# 3. the procedural backbone: its long training (docs/results.md, "The procedural backbone")
timeout $(( ${PRETRAIN_MINUTES:-5} * 60 + 120 )) python3 -m jobs.pretrain_backbone --config procedural-backbone.yaml \
  --output models/procedural-backbone --state-dir /tmp/pretrain-state --device cuda --machine h200 \
  --max-minutes "${PRETRAIN_MINUTES:-5}" 2>&1 | tee "$OUT/pretrain.log"
# 4. bring back what changed (files at most 2 folders below $OUT, 16 MiB each)
tar -C models -cf "$OUT/procedural-backbone.tar" procedural-backbone/model
cp models/procedural-backbone/curve.jsonl models/procedural-backbone/progress.json "$OUT/" 2>/dev/null || true
