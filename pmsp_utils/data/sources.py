"""One entry point for every data source the commands accept: the synthetic set or a user's copy."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from .records import Dataset, Record

DATA_SOURCES = ("synthetic", "casia1", "casia2", "folder")


def load_source(data: str, root: str | Path | None = None, *, synthetic_count: int = 400, seed: int = 0,
                size: int = 576, copy_move_share: float | None = None) -> Dataset:
    """The records of ``data``: a user's copy (``root`` or ``PMSP_DATA_DIR/<data>``) or the synthetic set.

    The synthetic set (``synthetic_count`` images of ``size`` pixels from ``seed``)
    is written once to the cache folder and reused. ``copy_move_share``: the share
    of its forgeries that are copy-moves (None: the generator's default; the
    authentic share stays the same).
    """
    from ..environment import cache_dir, dataset_folder
    from . import load_casia1, load_casia2, load_folder
    from .synthetic import SyntheticConfig, SyntheticForgerySet

    if data not in DATA_SOURCES:
        raise ValueError(f"data must be one of {DATA_SOURCES}, got {data!r}.")
    if data == "synthetic":
        settings = SyntheticConfig(size=size)
        folder = cache_dir() / "synthetic" / f"seed{seed}_n{synthetic_count}_s{size}"
        if copy_move_share is not None:
            tampered = settings.splicing + settings.copy_move
            settings = replace(settings, copy_move=tampered * copy_move_share, splicing=tampered * (1 - copy_move_share))
            folder = folder.with_name(folder.name + f"_cm{copy_move_share:g}")
        generator = SyntheticForgerySet(synthetic_count, seed=seed, config=settings)
        if (folder / "complete").exists():
            dataset = load_folder(folder, "synthetic")
            dataset.records = [_with_kind(record, generator) for record in dataset.records]
        else:
            from ..safe_write import write_text_atomic

            dataset = generator.write(folder)
            write_text_atomic(folder / "complete", "written\n")
        return dataset
    root = Path(root) if root else dataset_folder(data)
    if root is None:
        raise FileNotFoundError(
            f"no data for {data!r}: pass --root PATH (the folder of your copy) or set PMSP_DATA_DIR "
            f"to the folder that holds {data}/. See data_manifest.csv for where to get it."
        )
    if not Path(root).is_dir():
        raise FileNotFoundError(f"--root {root}: no such folder.")
    loader = {"casia1": load_casia1, "casia2": load_casia2, "folder": load_folder}[data]
    return loader(root)


def _with_kind(record: Record, generator) -> Record:
    """Give a synthetic record read back from disk the kind its generator made."""
    index = int(record.name.rsplit("_", 1)[1])
    return replace(record, kind=generator.kind(index)) if record.is_tampered else record
