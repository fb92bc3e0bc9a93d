#!/usr/bin/env bash
# Issue 10's second GPU call: the input pipeline after the input cache (bench_gpu_pipeline.py, float32 only),
# then the 576 run of the first call (gpu_issue10.sh) fine-tuned at a tenth of its learning rate, scored
# on its unseen images, weights back in float16 halves.
# Needs: .whl/, .gpu/casia1, .gpu/r576_init (config.json, splits/, r576_a.npz, r576_b.npz from the first call).
set -u
if [ "${SMOKE:-0}" = 1 ]; then
  BENCH="--size 192 --images 8 --batch 4 --rounds 1 --workers 2"; BENCH_S=300; TRAIN_S=300; EVAL_S=300
  EXTRA="--max-train-images 8 --epochs 1"; LIMIT="--limit 2"
else
  BENCH="--size 576 --images 256 --batch 16 --rounds 3 --workers 12"; BENCH_S=${BENCH_S:-100}; TRAIN_S=${TRAIN_S:-130}; EVAL_S=35
  EXTRA="--epochs 50"; LIMIT=""
fi
. benchmarks/gpu_env.sh

python3 benchmarks/gpu_weights.py rebuild .gpu/r576_init .gpu/r576_init/r576 /tmp/r576_init.weights.h5 > "$RUNS/rebuild.log" 2>&1 &
stamp "bench: the pipeline with the input cache"
timeout "$BENCH_S" python3 benchmarks/bench_gpu_pipeline.py --root "$DATA" $BENCH --no-mixed --out "$OUT/gpu_pipeline_cached.json" > "$RUNS/bench.log" 2>&1
stamp "bench exit $?"
wait
stamp "$(cat $RUNS/rebuild.log | tail -1)"

timeout "$TRAIN_S" python3 -m pmsp_utils.cli train --data casia1 --root "$DATA" --loss bce+dice --recompress 0.3 --monitor val_f1 \
    --split grouped --patience 8 --workers 6 --input-size 576 --policy resize --decoder f3 --output-stride 32 --learning-rate 1e-5 \
    --init-from /tmp/r576_init.weights.h5 $EXTRA --run-dir "$RUNS/r576_ft" > "$RUNS/r576_ft.log" 2>&1
stamp "training exit $?"
timeout "$EVAL_S" python3 -m pmsp_utils.cli evaluate --data casia1 --root "$DATA" --weights "$RUNS/r576_ft" --split unseen --flip \
    --baselines $LIMIT --out "$RUNS/r576_ft/eval" > "$RUNS/r576_ft/eval.log" 2>&1
stamp "evaluation exit $?"
python3 benchmarks/gpu_weights.py pack "$RUNS/r576_ft" "$OUT/r576_ft" >> "$RUNS/steps.log" 2>&1
stamp "packed"
tar -czf "$OUT/results_ft.tar.gz" -C "$RUNS" --exclude='*.keras' --exclude='*.weights.h5' . && stamp "done"
