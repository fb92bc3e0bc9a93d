"""The tiny training runs the training tests share (tests/test_train*.py): a few synthetic images, a 96x96 network."""

from __future__ import annotations

from pmsp_utils.data.synthetic import SyntheticConfig, SyntheticForgerySet
from pmsp_utils.train import TrainConfig

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
