# Sourced by the GPU runner (gpu_train.sh): Keras from .whl/ when the machine lacks it, the JAX
# environment, the output folders and a timestamped step log. Expects OUT (set by the device tool) or a default.
OUT=${OUT:-/tmp/gpu_out}
DATA=${DATA:-.gpu/casia1}
RUNS=${RUNS:-/tmp/gpu_runs}
mkdir -p "$OUT" "$RUNS"
if ! python3 -c "import keras" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1 \
       PMSP_CACHE_DIR=/tmp/pmsp_cache CI=true JAX_COMPILATION_CACHE_DIR=/tmp/jax_cache
t0=$(date +%s)
stamp() { echo "[$(( $(date +%s) - t0 )) s] $*" | tee -a "$RUNS/steps.log"; }
# bring_back ARCHIVE RUN...: each run's best weights as float16 halves, and the runs' small files (logs, histories,
# scores; no checkpoints or weights) as $OUT/ARCHIVE.tar.gz.
bring_back() {
  local archive=$1; shift
  for run in "$@"; do python3 benchmarks/gpu_weights.py pack "$RUNS/$run" "$OUT/$run" >> "$RUNS/steps.log" 2>&1 & done
  wait
  stamp "packed $*"
  tar -czf "$OUT/$archive.tar.gz" -C "$RUNS" --exclude='*.keras' --exclude='*.weights.h5' --exclude='*.npz' . && stamp "done"
  ls -la "$OUT"
}
