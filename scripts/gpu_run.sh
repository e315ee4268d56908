#!/usr/bin/env bash
# One prepared device call: train on the carried DATA for TRAIN_MINUTES, then, in the time left before BUDGET_S,
# time inference (eager, compiled, CUDA graphs) and, with TRAIN_SPEED=1, the training loop's variants. Each bench
# writes its JSON after every row, so one stopped at the budget keeps what it measured.
# COMPILE=MODE trains with --compile MODE (use a mode bench/train_speed.py has shown to work and pay off on that card).
# Usage (on the device machine): bash scripts/gpu_run.sh "$OUT" [extra train.py flags, e.g. --init-from weights]
# The 2026-11-27 call (carry .gpu/half, made by scripts/shrink_dataset.py; it ended with 47 s to spare of 600):
#   DATA=.gpu/half BATCH=32 TRAIN_MINUTES=4 TRAIN_SPEED=1 BUDGET_S=555 bash scripts/gpu_run.sh "$OUT" --init-from weights
set -uo pipefail
out="$1"; shift
export PYTHONUNBUFFERED=1
data="${DATA:-.gpu/data}"
deadline=$((SECONDS + ${BUDGET_S:-570}))
left() { echo $((deadline - SECONDS)); }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__)"
python3 train/train.py --device cuda --amp --content-dir "$data/content" --style-dir "$data/style" \
  --size 256 --batch-size "${BATCH:-8}" --iters 1000000 --max-minutes "${TRAIN_MINUTES:-7}" \
  --sample-every 1000 --save-every 1000 --log-every 100 --out /tmp/run ${COMPILE:+--compile "$COMPILE"} "$@" 2>&1 \
  | tee "$out/train.txt" | grep -v '^step' | tail -n 8
tail -n 3 /tmp/run/log.csv
for f in generator.safetensors discriminator.safetensors config.json samples.png; do cp /tmp/run/model/$f "$out/"; done
cp /tmp/run/log.csv "$out/"
echo "after training: $(left) s left"
# inference timing gets at most half of what is left when the training-speed bench follows
# (timeout 0 would mean no limit: a bench with 20 s or less left is skipped)
share=$(( ${TRAIN_SPEED:-0} == 1 ? $(left) / 2 : $(left) ))
if [ "$share" -gt 20 ]; then
  timeout "$share" python3 bench/gpu_speed.py --model /tmp/run/model --out "$out/gpu_speed.json" 2>&1 | tail -n 14
fi
if [ "${TRAIN_SPEED:-0}" = 1 ] && [ "$(left)" -gt 20 ]; then
  timeout "$(left)" python3 bench/train_speed.py --device cuda --data "$data" --out "$out/train_speed_cuda.json" 2>&1 | grep "^{"
fi
echo "finished with $(left) s to spare"
