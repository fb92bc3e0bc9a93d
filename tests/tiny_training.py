"""The tiny training runs the training tests share (tests/test_train*.py): a few synthetic images, a 96x96 network."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from pmsp_utils.data.synthetic import SyntheticConfig, SyntheticForgerySet
from pmsp_utils.train import TrainConfig, train

QUIET = {"verbose": 0, "echo": lambda message: None}


def synthetic_records(folder):
    """(training, validation) records: 6 and 2 tampered synthetic images written to ``folder``."""
    dataset = SyntheticForgerySet(12, seed=5, config=SyntheticConfig(size=192, splicing=0.6, copy_move=0.4)).write(folder, show_progress=False)
    tampered = [record for record in dataset if record.is_tampered]
    return tampered[:6], tampered[6:8]


def tiny(**changes) -> TrainConfig:
    """A small CPU run; one RGB stream (half the work, the same pipeline) unless a test asks for both."""
    settings = dict(data="synthetic", input_size=96, batch_size=2, epochs=3, learning_rate=1e-3, weights=None,
                    patience=10, workers=1, augment=True, streams="rgb")
    return TrainConfig(**{**settings, **changes})


def train_interrupted(config: TrainConfig, records, run_dir: Path, after: tuple[int, ...]):
    """:func:`train` one run, keeping a copy of its folder as a kill after each epoch in ``after`` would leave it.

    Returns (model, history, {epoch: folder}); the copies (``<run_dir>_after_<epoch>``) are what resuming an
    interrupted run reads, one training instead of one per length.
    """
    run_dir = Path(run_dir)
    copies = {}

    def echo(line: str) -> None:  # train() says "epoch k/n: ..." once epoch k's checkpoint is written
        finished = re.match(r"epoch (\d+)/", line)
        if finished and int(finished.group(1)) in after:
            epoch = int(finished.group(1))
            copies[epoch] = Path(shutil.copytree(run_dir, run_dir.parent / f"{run_dir.name}_after_{epoch}"))

    model, history = train(config, *records, run_dir, verbose=0, echo=echo)
    assert set(copies) == set(after), f"no copy after epochs {sorted(set(after) - set(copies))}: did train() change what it says?"
    return model, history, copies
