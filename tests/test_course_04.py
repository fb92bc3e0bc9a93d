"""Notebook 04: the code students read is the code that trains, and the sentences that state a run's outcome hold for
the committed run.

The notebook defines the training loss (``bce_dice``) and the score (``per_image_f1``) in its own cells, and its
demonstration trains with that loss and scores with that F1. These tests exec the two definitions from the notebook's
source and hold them equal to the package's, on the same inputs (``pmsp_utils.network.losses.WeightedBceDice``, which
``pmsp train --loss bce+dice`` uses, and ``PixelMetrics.per_image_f1``, which scores every run's validation): the
package stays the notebook's code, saved.

Sentences checked here against the committed outputs (the others that state an outcome are written by the notebook's
code from the values: the demonstration's summary under its figure, and what ``casia1-forged``'s epochs show):

- Header, section 2: the short demonstration run "learns" to find the planted regions: the validation per-image F1@0.5
  it prints after its last epoch is above 0.3 and above the one before training.
- Section 2, the pipeline on a GPU (written by the cell from the benchmark log, checked here): the input cache alone "left
  the H200 waiting" exactly when it fed under 0.9x the network's own rate, and "on whole epochs the GPU hardly waited"
  exactly when the default sequence fed 0.95x or more; the header promises no more than "how close it came".
- Section 2, post-processing: "as made, the splice's error level is several times its surroundings'"; "Each step alone
  cuts the contrast by half or more, and with all four little is left to see".
- Section 3, how to read the shipped curves: "The training loss falls nearly every epoch"; "The validation loss falls
  fast over the first epochs, then far more slowly, with ups and downs".
- Section 4: the `synthetic` record, "early on the network marks nothing or everything; with the epochs its guesses move
  onto the tampered regions": its validation F1 at the last epoch shown is well above the first's.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest
from course_text import cells, markdown, planted, printed

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "04_training.ipynb"
DEMO_F1 = "validation per-image F1@0.5, before training and after each epoch:"
SYNTHETIC_F1 = "synthetic model, validation per-image F1@0.5 at the epochs shown:"


# --- the notebook's definitions are the package's ----------------------------------------------------------------------


def definitions(notebook: Path, *names: str) -> dict:
    """The functions ``names`` as the notebook's code cells define them, with the imports of their cells, exec'd in a
    fresh namespace (the rest of each cell, its checks and prints, is left out)."""
    namespace: dict = {"np": np}
    for name in names:
        sources = ["".join(cell["source"]) for cell in cells(notebook)
                   if cell["cell_type"] == "code" and f"def {name}(" in "".join(cell["source"])]
        assert len(sources) == 1, f"{notebook.name} defines {name} in {len(sources)} cells, not one"
        tree = ast.parse("\n".join(line for line in sources[0].splitlines() if not line.lstrip().startswith(("%", "!"))))
        kept = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))
                or isinstance(node, ast.FunctionDef) and node.name == name]
        exec(compile(ast.Module(body=kept, type_ignores=[]), f"{notebook.name}:{name}", "exec"), namespace)
    return namespace


def test_04_the_notebooks_loss_is_the_packages():
    from keras import ops

    from pmsp_utils.network.losses import WeightedBceDice

    bce_dice = definitions(NOTEBOOK, "bce_dice")["bce_dice"]
    rng = np.random.default_rng(4)
    target = (rng.random((4, 24, 24, 1)) < 0.15).astype("float32")
    target[0, 16:] = -1.0  # padding, ignored
    target[1] = 0.0  # an authentic image: Dice of nothing against what is claimed
    target[2] = 0.6 * target[2] + 0.4 * rng.random((24, 24, 1))  # soft targets, as distillation makes
    prediction = rng.random((4, 24, 24, 1)).astype("float32")
    prediction[3, :4] = 0.0  # the clip at both ends
    prediction[3, 4:8] = 1.0
    for positive_weight in (1.0, 2.0, 5.0):
        ours = ops.convert_to_numpy(bce_dice(target, prediction, positive_weight=positive_weight))
        theirs = ops.convert_to_numpy(WeightedBceDice(positive_weight, reduction=None)(target, prediction))
        assert ours.shape == (4,), "one value per image, which Keras averages over the batch"
        np.testing.assert_allclose(ours, theirs, rtol=1e-5)
        batch = float(ops.convert_to_numpy(WeightedBceDice(positive_weight)(target, prediction)))
        assert float(np.mean(ours)) == pytest.approx(batch, rel=1e-5)


def test_04_the_notebooks_f1_is_the_packages():
    from pmsp_utils.metrics import PixelMetrics

    per_image_f1 = definitions(NOTEBOOK, "per_image_f1")["per_image_f1"]
    rng = np.random.default_rng(5)
    probabilities = rng.random((6, 20, 20)).astype("float32") ** 2
    masks = (rng.random((6, 20, 20)) < 0.25).astype(np.uint8)
    masks[4] = 0  # authentic: no F1 to average
    probabilities[5] = 0.49  # claims nothing at 0.5: F1 0
    probabilities[2, :, :10] = 0.5  # exactly at the threshold counts as claimed
    for threshold in (0.5, 0.3):
        metrics = PixelMetrics(threshold)
        for probability, mask in zip(probabilities, masks):
            metrics.update(probability, mask)
        assert per_image_f1(probabilities, masks, threshold=threshold) == pytest.approx(metrics.per_image_f1(), abs=1e-12)
    # Padding (-1 in a training mask) is not scored, as the package's validation crops it away before scoring.
    padded = np.full((1, 26, 26), -1, np.int8)
    padded[0, :20, :20] = masks[0]
    wide = np.ones((1, 26, 26), np.float32)
    wide[0, :20, :20] = probabilities[0]
    metrics = PixelMetrics(0.5)
    metrics.update(probabilities[0], masks[0])
    assert per_image_f1(wide, padded) == pytest.approx(metrics.per_image_f1(), abs=1e-12)
    assert np.isnan(per_image_f1(probabilities[4:5], masks[4:5]))


def test_04_the_demonstration_trains_with_the_notebooks_definitions():
    """The demonstration compiles with the cell's loss and scores with the cell's F1, not with the package's copies."""
    code = "\n".join("".join(cell["source"]) for cell in cells(NOTEBOOK) if cell["cell_type"] == "code")
    assert re.search(r"\.compile\(.*\bloss=bce_dice\b", code), "the demonstration must compile with the notebook's bce_dice"
    assert re.search(r"per_image_f1\(probabilities", code), "the demonstration must score with the notebook's per_image_f1"
    assert "make_loss(" not in code and "WeightedBceDice(" in code  # the package's loss appears only in the check


# --- the sentences that state an outcome --------------------------------------------------------------------------------


def output_line(notebook: Path, label: str) -> str:
    """The first text-output line that starts with ``label``, without it."""
    for cell in cells(notebook):
        for output in cell.get("outputs", []):
            for line in "".join(output.get("text", "")).splitlines():
                if line.strip().startswith(label):
                    return line.strip()[len(label):]
    raise LookupError(f"{notebook.name} prints no line starting with {label!r}; re-execute it")


def check_the_demonstration_learns(notebook: Path) -> None:
    values = printed(notebook, DEMO_F1)
    assert len(values) >= 3, f"the demonstration printed {values}: a value before training and two epochs at least"
    before, last = values[0], values[-1]
    assert last > 0.3 and last > before, f"the demonstration's validation F1 went from {before} to {last}: it did not learn"
    assert "learns" in markdown(notebook).split("## 3.")[0]


def check_post_processing_sentences(notebook: Path) -> None:
    ratios = {name.strip(): float(value) for name, value in
              re.findall(r"([^,]+?) (\d+\.\d+)(?:,|$)", output_line(notebook, "mean ELA inside the splice / outside it:"))}
    as_made = ratios.pop("as made")
    together = ratios.pop("all four")
    assert as_made >= 3, f"'several times its surroundings'': {as_made}"
    assert all(value <= as_made / 2 for value in ratios.values()), f"'each step alone cuts the contrast by half or more': {ratios}"
    assert together <= min(ratios.values()) and together < 1.5, f"'with all four little is left': {together}"
    text = markdown(notebook)
    assert "several times its surroundings'" in text and "cuts the contrast by half or more" in text


def check_the_curve_sentences(notebook: Path) -> None:
    text = markdown(notebook)
    assert "The **training loss** falls nearly every epoch" in text
    assert "falls fast over the first epochs, then far more slowly, with ups and downs" in text
    for member in ("stride16", "synthetic_start"):
        fell, steps, first, early, lowest, rises = printed(notebook, f"losses of {member}:")
        assert fell >= 0.8 * steps, f"{member}: the training loss fell in {fell} of {steps} epochs"
        assert first - early > 2 * (early - lowest) > 0, f"{member}: validation {first} -> {early} -> {lowest}"
        assert rises >= 1, f"{member}: no ups and downs"


def check_the_synthetic_record(notebook: Path) -> None:
    values = printed(notebook, SYNTHETIC_F1)
    epochs, f1 = values[0::2], values[1::2]
    assert len(f1) >= 2 and epochs == sorted(epochs)
    assert f1[-1] > f1[0] + 0.3, f"the synthetic record's F1 went from {f1[0]} to {f1[-1]}"
    assert "with the epochs its guesses move onto the tampered regions" in markdown(notebook)


def check_the_gpu_feed_sentence(notebook: Path) -> None:
    _, first, cached = printed(notebook, "H200, Keras on JAX, 576x576, batch 16, first session (short epochs, Keras' worker threads):")
    _, default, workers = printed(notebook, "H200, second session (whole epochs):")
    sentence = next("".join(output["data"]["text/markdown"]) for cell in cells(notebook) for output in cell.get("outputs", [])
                    if "The input cache alone" in "".join(output.get("data", {}).get("text/markdown", "")))
    assert ("left the H200 waiting" in sentence) == (cached < 0.9), f"input cache {cached}x: {sentence!r}"
    assert ("the GPU hardly waited" in sentence) == (default >= 0.95), f"default sequence {default}x: {sentence!r}"
    assert f"{default:.2f}×" in sentence and f"{workers:.2f}×" in sentence and first < cached
    assert "without starving" not in markdown(notebook) and "how close it came to keeping a GPU busy" in markdown(notebook)


CHECKS = (check_the_demonstration_learns, check_the_gpu_feed_sentence, check_post_processing_sentences, check_the_curve_sentences, check_the_synthetic_record)


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_04_sentences_agree_with_the_committed_outputs(check):
    check(NOTEBOOK)


@pytest.mark.parametrize(("check", "pattern", "new"), [
    (check_the_demonstration_learns, r"(before training and after each epoch: [^\\]*) \d\.\d+\\n", r"\1 0.120\\n"),
    (check_the_gpu_feed_sentence, r"(pmsp train's default\) )\d\.\d+", r"\g<1>0.70"),
    (check_post_processing_sentences, r"blur σ=1 \d\.\d+", "blur σ=1 3.10"),
    (check_the_curve_sentences, r"(losses of stride16: training loss lower than the epoch before in )\d+", r"\g<1>9"),
    (check_the_synthetic_record, r"(at the epochs shown: epoch \d+ )\d\.\d+", r"\g<1>0.650"),
], ids=["demo learns", "GPU fed", "each step halves", "training loss falls", "synthetic improves"])
def test_04_a_planted_contradiction_is_caught(tmp_path, check, pattern, new):
    with pytest.raises(AssertionError):
        check(planted(NOTEBOOK, tmp_path, pattern, new, regex=True))
