#!/usr/bin/env bash
# Issue 10's GPU work in one device call (Keras 3 on JAX; ../shared/gpu/README.md):
#   1. the on-disk pipeline against arrays in memory, and mixed precision (bench_gpu_pipeline.py);
#   2. two trainings side by side on CASIA v1.0, grouped split, ImageNet backbones:
#      the recipe at the paper's 576 (resize, F3 decoder) and at 384 native (pad, output stride 16);
#   3. each run's best epoch scored on the images it never trained on (validation + test), flips on;
#   4. results and float16 weights (in halves, each under the 16 MiB a returned file may hold) into $OUT.
# Needs: .whl/ (Keras wheels), .gpu/casia1 (images, masks, pairs.csv), .gpu/<ImageNet MobileNet .h5>.
# SMOKE=1 runs the same steps at a toy scale, on any machine (a check before spending device time).
set -u
H5=${H5:-.gpu/mobilenet_1_0_224_tf_no_top.partial.h5}
if [ "${SMOKE:-0}" = 1 ]; then
  BENCH="--size 192 --images 8 --batch 4 --rounds 1 --workers 2"; BENCH_S=300; TRAIN_S=200; EVAL_S=200
  BIG="--input-size 192"; NATIVE="--input-size 384"; EXTRA="--max-train-images 8 --epochs 1"; LIMIT="--limit 4"
else
  BENCH="--size 576 --images 256 --batch 16 --rounds 3 --workers 12"; BENCH_S=${BENCH_S:-190}; TRAIN_S=${TRAIN_S:-255}; EVAL_S=60
  BIG="--input-size 576"; NATIVE="--input-size 384"; EXTRA="--epochs 50"; LIMIT=""
fi
. benchmarks/gpu_env.sh
(nvidia-smi || true) > "$RUNS/nvidia-smi.txt" 2>&1
nproc >> "$RUNS/nvidia-smi.txt"

stamp "bench: on-disk pipeline vs arrays, mixed precision"
timeout "$BENCH_S" python3 benchmarks/bench_gpu_pipeline.py --root "$DATA" $BENCH --out "$OUT/gpu_pipeline.json" > "$RUNS/bench.log" 2>&1
stamp "bench exit $?"

COMMON="--data casia1 --root $DATA --loss bce+dice --recompress 0.3 --monitor val_f1 --split grouped --patience 8 --weights $H5 --workers 6 $EXTRA"
stamp "training r576 and s16_384 side by side"
timeout "$TRAIN_S" python3 -m pmsp_utils.cli train $COMMON $BIG --policy resize --decoder f3 --output-stride 32 --run-dir "$RUNS/r576" > "$RUNS/r576.log" 2>&1 &
timeout "$TRAIN_S" python3 -m pmsp_utils.cli train $COMMON $NATIVE --policy pad --output-stride 16 --run-dir "$RUNS/s16_384" > "$RUNS/s16_384.log" 2>&1 &
wait
stamp "trainings done"

for run in r576 s16_384; do
  timeout "$EVAL_S" python3 -m pmsp_utils.cli evaluate --data casia1 --root "$DATA" --weights "$RUNS/$run" --split unseen --flip \
      --baselines $LIMIT --out "$RUNS/$run/eval" > "$RUNS/$run/eval.log" 2>&1 &
done
wait
stamp "evaluations done"

for run in r576 s16_384; do
  python3 benchmarks/gpu_weights.py pack "$RUNS/$run" "$OUT/$run" >> "$RUNS/steps.log" 2>&1
done
stamp "packed"
tar -czf "$OUT/results.tar.gz" -C "$RUNS" --exclude='*.keras' --exclude='*.weights.h5' . && stamp "done"
ls -la "$OUT"
