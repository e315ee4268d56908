#!/usr/bin/env bash
# One prepared device call: train on the carried DATA for TRAIN_MINUTES, then, in the time left before BUDGET_S,
# time inference (eager, compiled, CUDA graphs) and, with TRAIN_SPEED=1, the training loop's variants. Each bench
# writes its JSON after every row, so one stopped at the budget keeps what it measured.
# VARIANTS="A;B" trains one run per ';'-separated set of extra train.py flags, all at once on the one GPU, to compare
# variants within one call: at batch 32 the GPU is busy, so each gets half the steps (an H200: 3.75 it/s each, 7.5
# together, 7.55 alone); run i comes back as $OUT/run<i>.tar (model folder without VGG, log.csv) and
# $OUT/run<i>_samples.png, its console as run<i>.txt.
# COMPILE=MODE trains with --compile MODE (use a mode bench/train_speed.py has shown to work and pay off on that card).
# Usage (on the device machine): bash scripts/gpu_run.sh "$OUT" [train.py flags for every run, e.g. --init-from weights]
# The data travels as one packed file (a folder of 4,713 files counts over the 64 MiB a call carries, and the tracked
# tree travels too: tests/test_train.py checks that both fit):
#   python -m scripts.shrink_dataset ../shared/data .gpu/paint --side 240 --style-side 224 --quality 40 --format webp \
#     --holdout bench/holdout.txt && tar -czf .gpu/paint.tgz -C .gpu paint      # then carry .gpu/paint.tgz
# The standing call, continuing the shipped default (never from scratch in one lease: a paintings model from scratch
# reached 5,205 of the default's 13,237 steps in 12 H200 minutes, docs/history.md):
#   tar -xzf .gpu/paint.tgz -C .gpu && DATA=.gpu/paint BATCH=32 TRAIN_MINUTES=9 BUDGET_S=570 \
#     bash scripts/gpu_run.sh "$OUT" --init-from weights --d-style-condition
# The student alone, continuing the installed one, its data drawn in worker processes:
#   tar -xzf .gpu/paint.tgz -C .gpu && python3 -m train.distill --content-dir .gpu/paint/content \
#     --style-dir .gpu/paint/style --out /tmp/distill --init-from weights/fast --device cuda --amp --size 256 \
#     --style-size 192 --batch-size 32 --iters 4000 --lr 3e-4 --max-minutes 8 --log-every 50 --save-every 500 \
#     && tar -cf "$OUT/student.tar" -C /tmp/distill log.csv fast
#   (--amp: bf16 autocast, whose loss terms match fp32's within 5 %: tests/test_student.py; --lr 3e-4: at 1e-3 a
#   continued student's pictures saturated. From scratch, drop --init-from and take --lr 5e-4.)
# DISTILL="train.distill flags" distils a fast student from the embedded teacher (weights/) beside the training runs, on
# the same GPU and for TRAIN_MINUTES, so that whichever model the measurements install, the call has trained its use;
# it comes back as $OUT/student.tar (fast/ without VGG, log.csv) and its console as student.txt.
# DEVICE=cpu (with a small DATA and TRAIN_MINUTES) dry-runs the whole call here before device time is spent on it.
set -uo pipefail
out="$1"; shift
export PYTHONUNBUFFERED=1
data="${DATA:-.gpu/data}"
device="${DEVICE:-cuda}"
deadline=$((SECONDS + ${BUDGET_S:-570}))
left() { echo $((deadline - SECONDS)); }
[ "$device" = cuda ] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__)"
IFS=';' read -r -a variants <<< "${VARIANTS:-}"
[ "${#variants[@]}" -eq 0 ] && variants=("")
threads=$(( $(nproc) / ${#variants[@]} ))
workers=$(( threads > 2 ? threads / 2 : 1 ))  # data processes per run (read and crop), half the run's share of the cores
if [ -n "${DISTILL:-}" ]; then
  # shellcheck disable=SC2086  # a list of flags
  python3 -m train.distill --content-dir "$data/content" --style-dir "$data/style" --teacher weights --out /tmp/distill \
    --device "$device" --max-minutes "${TRAIN_MINUTES:-7}" $DISTILL > "$out/student.txt" 2>&1 &
fi
for i in "${!variants[@]}"; do
  # shellcheck disable=SC2086  # each variant is a list of flags
  OMP_NUM_THREADS=$threads python3 -m train.train --device "$device" --amp --content-dir "$data/content" --style-dir "$data/style" \
    --size 256 --batch-size "${BATCH:-8}" --iters 1000000 --max-minutes "${TRAIN_MINUTES:-7}" --workers "$workers" \
    --sample-every 1000 --save-every 1000 --log-every 100 --out "/tmp/run$i" ${COMPILE:+--compile "$COMPILE"} "$@" \
    ${variants[$i]} > "$out/run$i.txt" 2>&1 &
done
wait
for i in "${!variants[@]}"; do
  echo "run $i (${variants[$i]:-base flags}):"; grep -v '^step' "$out/run$i.txt" | tail -n 4; tail -n 2 "/tmp/run$i/log.csv"
  tar -cf "$out/run$i.tar" -C "/tmp/run$i" log.csv model/generator.safetensors model/discriminator.safetensors model/config.json
  cp "/tmp/run$i/model/samples.png" "$out/run${i}_samples.png"
done
if [ -n "${DISTILL:-}" ]; then
  echo "student:"; grep -v '^step' "$out/student.txt" | tail -n 4; tail -n 2 /tmp/distill/log.csv
  tar -cf "$out/student.tar" -C /tmp/distill log.csv fast
fi
echo "after training: $(left) s left"
# inference timing gets at most half of what is left when the training-speed bench follows
# (timeout 0 would mean no limit: a bench with 20 s or less left is skipped)
share=$(( ${TRAIN_SPEED:-0} == 1 ? $(left) / 2 : $(left) ))
if [ "$share" -gt 20 ]; then
  timeout "$share" python3 bench/gpu_speed.py --model /tmp/run0/model --out "$out/gpu_speed.json" 2>&1 | tail -n 14
fi
if [ "${TRAIN_SPEED:-0}" = 1 ] && [ "$(left)" -gt 20 ]; then
  timeout "$(left)" python3 bench/train_speed.py --device cuda --data "$data" --out "$out/train_speed_cuda.json" 2>&1 | grep "^{"
fi
echo "finished with $(left) s to spare"
