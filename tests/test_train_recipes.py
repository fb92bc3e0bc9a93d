"""Training recipes end to end: a tiny run lowers the loss, other losses, unusable images, weight averaging."""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="training needs Keras: pip install -e '.[keras]'")

from pmsp_utils.train import train  # noqa: E402
from tiny_training import QUIET, tiny, train_interrupted  # noqa: E402

pytestmark = pytest.mark.slow  # real training runs: make test-fast skips them, make test runs them


@pytest.fixture(scope="module")
def tiny_runs(tiny_records, tmp_path_factory):
    """Two runs, then their model.keras read in one fresh process (nothing in it has imported the training code that
    registers the losses): four epochs of both streams with the bce+dice loss, and one epoch with the focal loss whose
    first training image is a truncated file, which training skips with a list (one run for both checks).
    Returns ({loss: the loss name read back}, {loss: what the run said}, {loss: (run folder, history)})."""
    import subprocess
    import sys
    from dataclasses import replace

    folder = tmp_path_factory.mktemp("losses")
    broken = folder / "broken.png"
    broken.write_bytes(tiny_records[0][0].image_path.read_bytes()[:300])  # truncated
    damaged = [replace(tiny_records[0][0], name="broken", image_path=broken), *tiny_records[0][1:]]
    files, said, runs = {}, {}, {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PMSP_CACHE_DIR", str(folder / "cache"))
        for loss, config, training in (("bce+dice", tiny(epochs=4, augment=False, streams="both", loss="bce+dice"), tiny_records[0]),
                                       ("focal", tiny(epochs=1, loss="focal", positive_weight=3.0), damaged)):
            said[loss] = []
            _, history = train(config, training, tiny_records[1], folder / loss, verbose=0, echo=said[loss].append)
            files[loss], runs[loss] = str(folder / loss / "model.keras"), (folder / loss, history)
    code = ("import json, sys; from pmsp_utils.models import _read_keras; "
            "print(json.dumps({loss: _read_keras(path).loss.name for loss, path in json.loads(sys.argv[1]).items()}))")
    result = subprocess.run([sys.executable, "-c", code, json.dumps(files)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), said, runs

def test_tiny_training_run_lowers_the_loss(tiny_runs):
    run, history = tiny_runs[2]["bce+dice"]
    losses = [row["loss"] for row in history]
    assert len(history) == 4 and losses[-1] < losses[0]
    for name in ("config.json", "environment.json", "history.csv", "checkpoint.keras", "best.weights.h5", "model.keras",
                 "state.json", "snapshots.npz", "splits/train.txt", "splits/validation.txt"):
        assert (run / name).exists(), name
    assert json.loads((run / "environment.json").read_text())["backend"] == keras.backend.backend()
    assert {"val_f1", "val_auc", "val_loss"} <= set(history[0])
    snapshots = np.load(run / "snapshots.npz")
    assert {"rgb", "mask", "epoch_001", "epoch_004"} <= set(snapshots.files)
    assert (run / "splits" / "train.txt").read_text().count("\n") == 6

@pytest.mark.parametrize("loss, name", [("bce+dice", "bce_dice"), ("focal", "binary_focal")])
def test_other_losses_train_and_reload_in_a_fresh_process(tiny_runs, loss, name):
    assert tiny_runs[0][loss] == name

def test_training_skips_unusable_images_with_a_list(tiny_runs):
    said = tiny_runs[1]["focal"]
    assert "skipped 1 of 6 training images that cannot be used:" in said
    assert any(line.startswith("  broken.png: cannot be used:") and ("truncated" in line or "corrupt" in line) for line in said), said
    assert not any("cannot be used" in line for line in tiny_runs[1]["bce+dice"])  # the same images with the file whole

def test_ema_keeps_the_average_as_best_and_resumes_exactly(tiny_records, tmp_path, cache_folder):
    from pmsp_utils.train import averaged_weights, _load_checkpoint

    whole, _, interrupted = train_interrupted(tiny(ema=0.5), tiny_records, tmp_path / "whole", after=(1, 2))
    raw, _ = _load_checkpoint(interrupted[1])  # after one epoch: the raw weights, with the optimizer and its average
    averaged = [keras.ops.convert_to_numpy(v) for v in raw.optimizer._model_variables_moving_average]
    before = [keras.ops.convert_to_numpy(v) for v in raw.trainable_weights]
    assert max(float(np.abs(a - b).max()) for a, b in zip(averaged, before)) > 1e-4  # the average is not the raw weights
    kept, _ = _load_checkpoint(interrupted[1])
    kept.load_weights(interrupted[1] / "best.weights.h5")  # the first epoch is the best so far: what training keeps (and returns)
    for a, b in zip(kept.trainable_weights, averaged):  # is the average
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), b, rtol=1e-6, atol=1e-7)
    with averaged_weights(raw):
        for a, b in zip(raw.trainable_weights, averaged):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), b)
    for a, b in zip(raw.trainable_weights, before):  # the raw weights come back after the block
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), b)
    resumed, _ = train(tiny(ema=0.5), *tiny_records, interrupted[2], resume=True, **QUIET)
    for mine, theirs in zip(resumed.weights, whole.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(theirs), rtol=1e-3, atol=1e-4, err_msg=mine.path)
    with pytest.raises(ValueError, match="ema is a momentum"):
        train(tiny(ema=1.0), *tiny_records, tmp_path / "bad", **QUIET)

def test_a_fresh_model_has_its_optimizer_slots_before_the_first_step():
    """Built in ``build_model``, not in the first traced step: TensorFlow traces a step that creates variables twice."""
    from pmsp_utils.train import build_model

    model = build_model(tiny(ema=0.9), verbose=False)
    optimizer = model.optimizer
    assert optimizer.built
    assert len(optimizer.variables) >= 3 * len(model.trainable_variables)  # Adam's two moments and the average of each
