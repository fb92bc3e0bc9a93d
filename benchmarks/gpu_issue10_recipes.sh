#!/usr/bin/env bash
# Issue 10's third GPU call (Keras 3 on JAX; ../shared/gpu/README.md): three recipes at the paper's 576 against
# the shipped casia1 run (576, resize, F3 decoder, stride 32, from ImageNet), side by side on the one GPU:
#   syn_ft  - pre-trained on 2000 synthetic forgeries at 576 with as many copy-moves as splicings, then CASIA v1.0;
#   s16     - output stride 16 (last stage dilated), otherwise the shipped recipe;
#   concat  - the two F5 maps fused by CONCAT instead of ADD (every seed ahead in the 192 ablation), otherwise the same.
# Each run's best epoch (validation per-image F1) is scored on its unseen images (the grouped test part), flips on;
# results and float16 weights (halves under the 16 MiB a returned file may hold) go into $OUT.
# Needs: .whl/ (Keras wheels), .gpu/casia1 (images, masks, pairs.csv), .gpu/<ImageNet MobileNet .h5>.
# SMOKE=1 runs the same steps at a toy scale, on any machine (a check before spending device time).
# JOBS="syn_ft" (or any of syn_ft s16 concat) runs only those; PRE_S, FT_S, RUN_S, EVAL_S: each step's seconds.
# STRIDE: the output stride of syn_ft and concat (default 16, pmsp train's default and the casia1 shipped since;
# STRIDE=32 reproduces the figures recorded in benchmarks/RESULTS.md, made against the stride-32 casia1).
set -u
JOBS=${JOBS:-syn_ft s16 concat}
wants() { case " $JOBS " in *" $1 "*) return 0;; *) return 1;; esac; }
H5=${H5:-.gpu/mobilenet_1_0_224_tf_no_top.partial.h5}
if [ "${SMOKE:-0}" = 1 ]; then
  SIZE=192; SYN="--synthetic-count 24 --epochs 1"; EXTRA="--max-train-images 8 --epochs 1"; LIMIT="--limit 2"
  PRE_S=300; FT_S=300; RUN_S=600; EVAL_S=300
else
  SIZE=576; SYN="--synthetic-count 2000 --epochs 15"; EXTRA="--epochs 50"; LIMIT=""
  PRE_S=${PRE_S:-200}; FT_S=${FT_S:-250}; RUN_S=${RUN_S:-455}; EVAL_S=${EVAL_S:-45}
fi
. benchmarks/gpu_env.sh
(nvidia-smi || true) > "$RUNS/nvidia-smi.txt" 2>&1
nproc >> "$RUNS/nvidia-smi.txt"

RECIPE="--loss bce+dice --recompress 0.3 --monitor val_f1 --input-size $SIZE --policy resize --decoder f3 --output-stride ${STRIDE:-16} --workers 5"
CASIA="--data casia1 --root $DATA --split grouped --patience 8 $EXTRA"
score() {  # score RUN: its best epoch on the images it never trained on or chose by, flips on
  timeout "$EVAL_S" python3 -m pmsp_utils.cli evaluate --data casia1 --root "$DATA" --weights "$RUNS/$1" --split unseen \
      --flip --baselines $LIMIT --out "$RUNS/$1/eval" > "$RUNS/$1/eval.log" 2>&1
  stamp "$1 scored (exit $?)"
}

stamp "recipes side by side: $JOBS"
wants syn_ft && (
  timeout "$PRE_S" python3 -m pmsp_utils.cli train --data synthetic --synthetic-copy-move 0.5 $SYN --split paper --patience 4 \
      $RECIPE --weights "$H5" --run-dir "$RUNS/syn_pre" > "$RUNS/syn_pre.log" 2>&1
  stamp "syn_pre exit $?"
  timeout "$FT_S" python3 -m pmsp_utils.cli train $CASIA $RECIPE --init-from "$RUNS/syn_pre/best.weights.h5" \
      --run-dir "$RUNS/syn_ft" > "$RUNS/syn_ft.log" 2>&1
  stamp "syn_ft exit $?"
  score syn_ft
) &
wants s16 && ( timeout "$RUN_S" python3 -m pmsp_utils.cli train $CASIA $RECIPE --weights "$H5" --output-stride 16 \
      --run-dir "$RUNS/s16" > "$RUNS/s16.log" 2>&1; stamp "s16 exit $?"; score s16 ) &
wants concat && ( timeout "$RUN_S" python3 -m pmsp_utils.cli train $CASIA $RECIPE --weights "$H5" --fusion concat \
      --run-dir "$RUNS/concat" > "$RUNS/concat.log" 2>&1; stamp "concat exit $?"; score concat ) &
wait
stamp "trainings and scores done"

bring_back results_recipes $JOBS
