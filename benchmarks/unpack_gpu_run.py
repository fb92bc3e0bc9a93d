"""Turn a run brought back from the GPU (benchmarks/gpu_issue10.sh) into a run folder here.

    python benchmarks/unpack_gpu_run.py RESULTS.tar.gz WEIGHTS_PREFIX RUN_NAME DEST

Unpacks the run's files (config, history, split lists, snapshots, evaluation) and
rebuilds ``best.weights.h5`` from the two float16 halves, so ``pmsp evaluate
--weights DEST`` and ``scripts/ship_weights.py DEST ...`` work on it.
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import numpy as np


def main() -> None:
    archive, prefix, name, dest = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4])
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(f"./{name}/")]
        for member in members:
            member.name = member.name[len(f"./{name}/"):]
        tar.extractall(dest, members=[m for m in members if m.name], filter="data")
    values = {}
    for half in ("a", "b"):
        values.update(np.load(f"{prefix}_{half}.npz"))
    from pmsp_utils.models import _build
    from pmsp_utils.pretrained import weight_key
    from pmsp_utils.runs import settings_of_run

    model = _build(settings_of_run(dest))
    for index, variable in enumerate(model.weights):
        variable.assign(values.pop(weight_key(index, variable)).astype(variable.dtype))
    if values:
        sys.exit(f"{len(values)} weights left over: the halves belong to another network")
    model.save_weights(dest / "best.weights.h5")
    print(f"{dest}: best.weights.h5 rebuilt from {prefix}_a/_b.npz")


if __name__ == "__main__":
    main()
