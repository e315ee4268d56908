#!/usr/bin/env bash
# One prepared device call: train on the carried .gpu/data for TRAIN_MINUTES, then time inference (eager, compiled,
# CUDA graphs); TRAIN_SPEED=1 also times the training loop's variants (about 4 more minutes); COMPILE=MODE trains
# with --compile MODE (use a mode bench/train_speed.py has shown to work and pay off on that card).
# Usage (on the device machine): bash scripts/gpu_run.sh "$OUT" [extra train.py flags, e.g. --init-from weights]
set -uo pipefail
out="$1"; shift
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 train/train.py --device cuda --amp --content-dir .gpu/data/content --style-dir .gpu/data/style \
  --size 256 --batch-size "${BATCH:-8}" --iters 1000000 --max-minutes "${TRAIN_MINUTES:-7}" \
  --sample-every 1000 --save-every 1000 --log-every 100 --out /tmp/run ${COMPILE:+--compile "$COMPILE"} "$@" 2>&1 | tee "$out/train.txt" | grep -v '^step' | tail -n 5
tail -n 3 /tmp/run/log.csv
for f in generator.safetensors discriminator.safetensors config.json samples.png; do cp /tmp/run/model/$f "$out/"; done
cp /tmp/run/log.csv "$out/"
python3 bench/gpu_speed.py --model /tmp/run/model --out "$out/gpu_speed.json" 2>&1 | tail -n 12
if [ "${TRAIN_SPEED:-0}" = 1 ]; then
  python3 bench/train_speed.py --device cuda --data .gpu/data --out "$out/train_speed_cuda.json" 2>&1 | grep "^{"
fi
