# Sourced by the GPU scripts (gpu_issue10*.sh): Keras from .whl/ when the machine lacks it, the JAX
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
