#!/usr/bin/env bash
# The GPU check, ready for the day a GPU is lent: on a bare CUDA machine, install what is needed
# and, within about 8 minutes, measure training throughput (reference preset vs fast settings,
# offline base and a BERT-base-shaped model, 1 GPU and all GPUs), export parity of a short
# GPU-trained model, and onnxruntime-gpu query latency. Results: bench/results/*gpu*.json.
#   bash bench/gpu.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
export PIP_DISABLE_PIP_VERSION_CHECK=1
log() { echo "[gpu.sh $(date +%T)] $*"; }

nvidia-smi -L
GPUS=$(nvidia-smi -L | wc -l)
python3 -m venv .gpu-venv && . .gpu-venv/bin/activate
log "installing (PyPI's torch is the CUDA build on Linux)"
pip install -q torch
pip install -q -e ".[train,export,offline-base,bank]"
pip uninstall -q -y onnxruntime && pip install -q onnxruntime-gpu

STEPS=${STEPS:-30}
for model in offline bert-base-shape; do
  log "throughput, 1 GPU, $model"
  python -m trainer speed --preset reference --preset fast --set model=$model --steps "$STEPS" \
    --name "gpu-1x-$model" --output runs/gpu-speed
done
if [ "$GPUS" -gt 1 ]; then
  log "throughput, $GPUS GPUs (torchrun, global batch = $GPUS x 64)"
  torchrun --nproc-per-node "$GPUS" -m trainer speed --preset fast --set model=offline \
    --set batch_size=$((64 * GPUS)) --steps "$STEPS" --name "gpu-${GPUS}x-offline" --output runs/gpu-speed-ddp
fi

log "a short GPU training run of the release recipe, then export with parity"
python -m trainer run --preset release --output runs/gpu-release --set max_steps=300 --set eval_every=0
export-onnx runs/gpu-release/last --out runs/gpu-bundle --quantize int8 --max-length 32 \
  --sample-from assets/kcd8.tsv | tee runs/gpu-export.txt
python - <<'PY'
import json, pathlib
manifest = json.loads(pathlib.Path("runs/gpu-bundle/manifest.json").read_text())
summary = json.loads(pathlib.Path("runs/gpu-release/run_summary.json").read_text())
out = {"parity_int8": manifest["parity"], "train": {k: summary[k] for k in ("steps", "seconds", "pairs_per_s", "device")}}
pathlib.Path("bench/results/gpu-release-short.json").write_text(json.dumps(out, indent=2) + "\n")
print(json.dumps(out))
PY

log "onnxruntime-gpu query latency (shipped bundle)"
python -m core bench --name gpu-ort-speed --speed-only --no-build
log "done"
