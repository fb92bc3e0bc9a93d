#!/usr/bin/env bash
# One GPU call for one named recipe (pmsp_utils/recipes.toml), inside a time budget (../shared/gpu/README.md).
#
#   RECIPE=one-network BUDGET_S=420 bash benchmarks/gpu_train.sh        # on the lent GPU, via the device tool
#   SMOKE=1 RECIPE=one-network bash benchmarks/gpu_train.sh             # the same steps at a toy size, on any machine first
#
# Trains `pmsp train --recipe RECIPE` on .gpu/casia1 (images, masks, authentic) from ImageNet weights (or INIT=...),
# under `timeout BUDGET_S` so that scoring and packing still run; then scores the best epoch on the grouped
# validation and test parts, and brings back as files: the best weights as float16 halves
# (benchmarks/gpu_weights.py unpack turns them back into a run folder), history, config, logs and scores.
# EXTRA="--epochs 30 ..." adds options. Keras 3 on JAX there; forgeries are generated on the machine's cores first.
set -u
RECIPE=${RECIPE:?name a recipe of pmsp_utils/recipes.toml}
H5=${H5:-.gpu/mobilenet_1_0_224_tf_no_top.partial.h5}
. benchmarks/gpu_env.sh
if [ "${SMOKE:-0}" = 1 ]; then
  SIZE="--input-size 192 --max-train-images 8 --epochs 1 --forgeries 4"; BUDGET_S=${BUDGET_S:-300}; EVAL_LIMIT="--limit 2"
else
  SIZE=""; BUDGET_S=${BUDGET_S:-420}; EVAL_LIMIT=""
fi
INIT=${INIT:+--init-from $INIT}
(nvidia-smi || true) > "$RUNS/nvidia-smi.txt" 2>&1
stamp "recipe $RECIPE, budget ${BUDGET_S}s"
timeout "$BUDGET_S" python3 -m pmsp_utils.cli train --recipe "$RECIPE" --root "$DATA" --weights "$H5" ${INIT:-} --workers 8 \
    $SIZE ${EXTRA:-} --run-dir "$RUNS/$RECIPE" > "$RUNS/$RECIPE.log" 2>&1
stamp "training exit $? (124: the budget ended it; the best epoch so far is kept)"
for part in validation test; do
  timeout 120 python3 -m pmsp_utils.cli evaluate --data casia1 --root "$DATA" --weights "$RUNS/$RECIPE" --protocol grouped \
      --split "$part" --baselines $EVAL_LIMIT --out "$RUNS/$RECIPE/eval_$part" > "$RUNS/$RECIPE/eval_$part.log" 2>&1
  stamp "scored on $part (exit $?)"
done
bring_back "results_$RECIPE" "$RECIPE"
