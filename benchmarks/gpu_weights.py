"""A run's weights across the GPU machine's file limit (16 MiB a returned file), both ways.

    python benchmarks/gpu_weights.py pack RUN_DIR PREFIX           # on the GPU: PREFIX_a.npz, PREFIX_b.npz (float16)
    python benchmarks/gpu_weights.py rebuild RUN_DIR PREFIX OUT.weights.h5
    python benchmarks/gpu_weights.py unpack RESULTS.tar.gz PREFIX RUN_NAME DEST

``pack`` writes a run's best weights as two float16 halves (the shipped weights' precision and keys);
``rebuild`` turns halves back into a whole-model ``.weights.h5`` for the network ``RUN_DIR``'s
``config.json`` describes; ``unpack`` makes a run folder here from what a GPU call brought back
(the run's files from the archive and ``best.weights.h5`` rebuilt), so ``pmsp evaluate --weights DEST``
and ``scripts/ship_weights.py DEST ...`` work on it. Used by ``gpu_train.sh``.
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import numpy as np


def pack(run: Path, prefix: str) -> None:
    from pmsp_utils.models import load_model
    from pmsp_utils.pretrained import weight_key

    if not (run / "best.weights.h5").exists():
        sys.exit(f"{run}: no best epoch to pack")
    model = load_model(run).model
    values = {weight_key(i, v): np.asarray(v).astype(np.float16) for i, v in enumerate(model.weights)}
    keys = list(values)
    sizes = np.cumsum([values[k].nbytes for k in keys])
    half = int(np.searchsorted(sizes, sizes[-1] / 2)) + 1  # two halves of about equal bytes, not of equal counts
    np.savez_compressed(prefix + "_a.npz", **{k: values[k] for k in keys[:half]})
    np.savez_compressed(prefix + "_b.npz", **{k: values[k] for k in keys[half:]})
    print(f"{run.name}: packed {len(keys)} weights")


def rebuild(run: Path, prefix: str, out: Path) -> None:
    from pmsp_utils.models import _build
    from pmsp_utils.pretrained import weight_key
    from pmsp_utils.run_folder import settings_of_run

    values = {**np.load(f"{prefix}_a.npz"), **np.load(f"{prefix}_b.npz")}
    model = _build(settings_of_run(run))
    for index, variable in enumerate(model.weights):
        variable.assign(values.pop(weight_key(index, variable)).astype(variable.dtype))
    if values:
        sys.exit(f"{len(values)} weights left over: the halves belong to another network")
    model.save_weights(out)
    print(f"{out}: rebuilt from {prefix}_a/_b.npz")


def unpack(archive: str, prefix: str, name: str, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(f"./{name}/")]
        for member in members:
            member.name = member.name[len(f"./{name}/"):]
        tar.extractall(dest, members=[m for m in members if m.name], filter="data")
    rebuild(dest, prefix, dest / "best.weights.h5")


def main() -> None:
    commands = {"pack": (pack, 2), "rebuild": (rebuild, 3), "unpack": (unpack, 4)}
    if len(sys.argv) < 2 or sys.argv[1] not in commands or len(sys.argv) != commands[sys.argv[1]][1] + 2:
        sys.exit(__doc__)
    command, _ = commands[sys.argv[1]]
    arguments = sys.argv[2:]
    if command is pack:
        pack(Path(arguments[0]), arguments[1])
    elif command is rebuild:
        rebuild(Path(arguments[0]), arguments[1], Path(arguments[2]))
    else:
        unpack(arguments[0], arguments[1], arguments[2], Path(arguments[3]))


if __name__ == "__main__":
    main()
