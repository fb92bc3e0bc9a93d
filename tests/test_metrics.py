"""pixel_auc against scikit-learn and hand-computed cases."""

import numpy as np
import pytest
from sklearn.metrics import f1_score as sklearn_f1
from sklearn.metrics import roc_auc_score

from pmsp_utils.metrics import PixelMetrics, f1_score, mean_pixel_auc, pixel_auc


@pytest.mark.parametrize("seed", range(5))
def test_matches_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    mask = (rng.random((40, 50)) < 0.2).astype(np.uint8)
    scores = rng.integers(0, 6, size=mask.shape) + 2 * mask  # many ties, some signal
    assert pixel_auc(scores, mask) == pytest.approx(roc_auc_score(mask.ravel(), scores.ravel()), abs=1e-12)


def test_hand_computed_cases():
    mask = np.array([[0, 0, 1, 1]])
    assert pixel_auc(np.array([[0.1, 0.2, 0.8, 0.9]]), mask) == 1.0
    assert pixel_auc(np.array([[0.9, 0.8, 0.2, 0.1]]), mask) == 0.0
    assert pixel_auc(np.array([[0.5, 0.5, 0.5, 0.5]]), mask) == 0.5
    assert pixel_auc(np.array([[0.1, 0.5, 0.5, 0.9]]), mask) == 0.875
    assert mean_pixel_auc([(np.array([[0.1, 0.2, 0.8, 0.9]]), mask), (np.array([[0.5] * 4]), mask)]) == 0.75


def test_undefined_and_bad_inputs():
    with pytest.raises(ValueError, match="undefined"):
        pixel_auc(np.ones((4, 4)), np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="undefined"):
        pixel_auc(np.ones((4, 4)), np.ones((4, 4), np.uint8))
    with pytest.raises(ValueError, match="differs from mask shape"):
        pixel_auc(np.ones((4, 4)), np.ones((4, 5), np.uint8))
    with pytest.raises(ValueError, match="only 0"):
        pixel_auc(np.ones((2, 2)), np.array([[0, 255], [0, 255]]))
    with pytest.raises(ValueError, match="no images"):
        mean_pixel_auc([])


# --- PixelMetrics: the named protocols ---------------------------------------------------

from sklearn.metrics import accuracy_score, precision_score, recall_score  # noqa: E402

from pmsp_utils.metrics import PROTOCOL_NOTES, PROTOCOLS  # noqa: E402


def _rows(metrics):
    return {row["protocol"]: row for row in metrics.table()}


def test_hand_computed_two_images():
    # Image A: 6 pixels, 2 tampered; at 0.5 the prediction finds one and claims one wrong pixel.
    # Image B: authentic, one false alarm out of 4.
    metrics = PixelMetrics(threshold=0.5, bins=10)
    metrics.update(np.array([[0.9, 0.2, 0.7], [0.1, 0.0, 0.0]]), np.array([[1, 1, 0], [0, 0, 0]]), name="A")
    metrics.update(np.array([[0.6, 0.0], [0.0, 0.0]]), np.zeros((2, 2), np.uint8), name="B")
    rows = _rows(metrics)
    # per image: only A counts: TP 1, FP 1, FN 1, TN 3 -> P = R = F1 = 0.5, accuracy 4/6
    assert rows["per-image"]["images"] == 1
    assert rows["per-image"]["f1"] == rows["per-image"]["precision"] == rows["per-image"]["recall"] == 0.5
    assert rows["per-image"]["accuracy"] == pytest.approx(4 / 6)
    # pooled: TP 1, FP 2, FN 1, TN 6 over 10 pixels
    assert rows["pooled"]["images"] == 2
    assert rows["pooled"]["precision"] == pytest.approx(1 / 3)
    assert rows["pooled"]["recall"] == 0.5
    assert rows["pooled"]["f1"] == pytest.approx(0.4)
    assert rows["pooled"]["accuracy"] == pytest.approx(0.7)
    # per-image AUC: A's positives 0.9 and 0.2 against negatives 0.7, 0.1, 0, 0 win 7 of 8 pairs; B is undefined
    assert rows["per-image"]["auc"] == pytest.approx(0.875)
    # oracle per image: A's best threshold 0.2 claims 0.9, 0.7 and 0.2 -> P 2/3, R 1, F1 0.8
    assert rows["per-image oracle"]["f1"] == pytest.approx(0.8)
    assert rows["per-image oracle"]["precision"] == pytest.approx(2 / 3)
    assert rows["per-image oracle"]["threshold"] == "best per image"
    assert metrics.images[0].best_threshold == pytest.approx(0.2)
    assert metrics.images[0].name == "A" and not metrics.images[1].tampered
    assert rows["pooled oracle"]["f1"] >= rows["pooled"]["f1"]


def test_weighted_recall_equals_accuracy_and_matches_scikit_learn():
    rng = np.random.default_rng(3)
    metrics = PixelMetrics(threshold=0.4)
    masks, scores = [], []
    for _ in range(6):
        mask = (rng.random((30, 40)) < rng.uniform(0, 0.3)).astype(np.uint8)
        score = np.clip(0.5 * mask + rng.random(mask.shape) * 0.7, 0, 1)
        metrics.update(score, mask)
        masks.append(mask.ravel()), scores.append(score.ravel())
    truth, claimed = np.concatenate(masks), np.concatenate(scores) >= 0.4
    weighted = metrics.weighted()
    assert weighted["recall"] == pytest.approx(weighted["accuracy"], abs=1e-12)
    assert weighted["accuracy"] == pytest.approx(accuracy_score(truth, claimed), abs=1e-12)
    for name, function in (("precision", precision_score), ("recall", recall_score), ("f1", sklearn_f1)):
        assert weighted[name] == pytest.approx(function(truth, claimed, average="weighted"), abs=1e-12), name
        assert metrics.pooled()[name] == pytest.approx(function(truth, claimed), abs=1e-12), name


@pytest.mark.parametrize("seed", range(3))
def test_streaming_equals_exact_on_small_data(seed):
    """Scores on the bin grid: the histogram AUCs and oracle thresholds are exact."""
    rng = np.random.default_rng(seed)
    bins = 50
    metrics = PixelMetrics(threshold=0.5, bins=bins)
    masks, scores, per_image_auc, per_image_f1, best_f1 = [], [], [], [], []
    for index in range(5):
        mask = np.zeros((24, 32), np.uint8)
        mask[rng.integers(0, 12) :][:, rng.integers(0, 16) : 20] = 1 if index != 4 else 0  # image 4 is authentic
        level = rng.integers(0, bins, mask.shape)
        score = (np.where(mask == 1, np.minimum(level + 15, bins - 1), level) + 0.5) / bins  # bin centres: exact ties
        metrics.update(score, mask)
        masks.append(mask.ravel()), scores.append(score.ravel())
        if mask.any():
            per_image_auc.append(roc_auc_score(mask.ravel(), score.ravel()))
            per_image_f1.append(sklearn_f1(mask.ravel(), score.ravel() >= 0.5))
            best_f1.append(max(sklearn_f1(mask.ravel(), score.ravel() >= t, zero_division=0) for t in np.arange(1, bins) / bins))
    truth, all_scores = np.concatenate(masks), np.concatenate(scores)
    rows = _rows(metrics)
    assert rows["pooled"]["auc"] == pytest.approx(roc_auc_score(truth, all_scores), abs=1e-12)
    assert rows["per-image"]["auc"] == pytest.approx(np.mean(per_image_auc), abs=1e-12)
    assert rows["per-image"]["f1"] == pytest.approx(np.mean(per_image_f1), abs=1e-12)
    assert rows["per-image oracle"]["f1"] == pytest.approx(np.mean(best_f1), abs=1e-12)
    pooled_best = max(sklearn_f1(truth, all_scores >= t, zero_division=0) for t in np.arange(1, bins) / bins)
    assert rows["pooled oracle"]["f1"] == pytest.approx(pooled_best, abs=1e-12)
    fpr, tpr, _ = metrics.roc_curve()
    assert np.trapezoid(tpr, fpr) == pytest.approx(rows["pooled"]["auc"], abs=1e-12)


def test_continuous_scores_are_within_a_bin_of_exact():
    rng = np.random.default_rng(7)
    mask = (rng.random((64, 64)) < 0.2).astype(np.uint8)
    score = np.clip(rng.normal(0.4 + 0.2 * mask, 0.2), 0, 1)
    metrics = PixelMetrics()
    metrics.update(score, mask)
    assert metrics.pooled_auc() == pytest.approx(roc_auc_score(mask.ravel(), score.ravel()), abs=1e-3)


def test_edge_cases_all_authentic_empty_prediction_all_tampered():
    authentic = PixelMetrics()
    authentic.update(np.full((4, 4), 0.7), np.zeros((4, 4), np.uint8))
    rows = _rows(authentic)
    assert rows["per-image"]["images"] == 0 and np.isnan(rows["per-image"]["f1"])  # no tampered image to average over
    assert np.isnan(rows["pooled"]["auc"])  # one class only
    assert rows["pooled"]["accuracy"] == 0.0 and rows["pooled"]["precision"] == 0.0  # every pixel a false alarm
    assert rows["weighted"]["recall"] == rows["weighted"]["accuracy"] == 0.0

    empty = PixelMetrics()
    empty.update(np.zeros((4, 4)), np.eye(4, dtype=np.uint8))
    row = empty.per_image()
    assert (row["precision"], row["recall"], row["f1"], row["accuracy"]) == (0.0, 0.0, 0.0, 0.75)
    assert row["auc"] == 0.5  # all scores tie

    full = PixelMetrics()
    full.update(np.full((3, 3), 0.9), np.ones((3, 3), np.uint8))
    row = full.per_image()
    assert row["f1"] == row["precision"] == row["recall"] == row["accuracy"] == 1.0
    assert np.isnan(row["auc"])  # no authentic pixel: AUC undefined for the image


def test_bad_inputs_and_protocol_names():
    metrics = PixelMetrics()
    with pytest.raises(ValueError, match="NaN"):
        metrics.update(np.full((2, 2), np.nan), np.ones((2, 2), np.uint8))
    with pytest.raises(ValueError, match="empty image"):
        metrics.update(np.zeros((0, 3)), np.zeros((0, 3), np.uint8))
    with pytest.raises(ValueError, match="unknown protocols"):
        metrics.table(["per-image", "best"])
    with pytest.raises(ValueError, match="threshold"):
        PixelMetrics(threshold=1.0)
    assert set(PROTOCOL_NOTES) == set(PROTOCOLS)
    assert all("ORACLE" in PROTOCOL_NOTES[name] for name in PROTOCOLS if "oracle" in name)


# --- the metric core (moved from test_train: it needs no Keras) ---------------------------


@pytest.mark.parametrize("seed", range(3))
def test_pixel_metrics_against_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    metrics = PixelMetrics(threshold=0.5)
    all_scores, all_masks, f1_values = [], [], []
    for _ in range(6):
        mask = (rng.random((20, 30)) < rng.uniform(0.05, 0.4)).astype(np.uint8)
        scores = np.clip(rng.normal(0.35 + 0.3 * mask, 0.2), 0, 1)
        metrics.update(scores, mask)
        all_scores.append(scores.ravel())
        all_masks.append(mask.ravel())
        f1_values.append(sklearn_f1(mask.ravel(), scores.ravel() >= 0.5))
    metrics.update(np.zeros((20, 30)), np.zeros((20, 30), np.uint8))  # an authentic image: pixels count, no F1
    all_scores.append(np.zeros(600))
    all_masks.append(np.zeros(600, np.uint8))
    assert metrics.per_image_f1() == pytest.approx(np.mean(f1_values), abs=1e-12)
    assert metrics.pooled_auc() == pytest.approx(roc_auc_score(np.concatenate(all_masks), np.concatenate(all_scores)), abs=2e-3)
    result = metrics.result()
    assert result["tampered_images"] == 6 and result["images"] == 7 and "per_image_f1@0.5" in result


def test_f1_edge_cases():
    assert f1_score(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    assert f1_score(np.zeros((2, 2)), np.ones((2, 2))) == 0.0
    assert f1_score(np.array([[1, 1, 0, 0]]), np.array([[1, 0, 0, 0]])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="probabilities must lie in"):
        PixelMetrics().update(np.full((2, 2), 1.5), np.ones((2, 2)))
    assert np.isnan(PixelMetrics().pooled_auc()) and np.isnan(PixelMetrics().per_image_f1())


def test_authentic_images_only_leave_recall_and_f1_undefined_not_zero():
    """No tampered pixel anywhere: recall (0/0) and F1 are undefined, precision is 0 only if something was flagged."""
    metrics = PixelMetrics(threshold=0.5)
    rng = np.random.default_rng(0)
    for index in range(3):
        metrics.update(rng.random((16, 16)), np.zeros((16, 16), np.uint8), f"authentic{index}")
    pooled, oracle = metrics.pooled(), metrics.pooled_oracle()
    assert pooled["precision"] == 0.0 and np.isnan(pooled["recall"]) and np.isnan(pooled["f1"])
    assert 0 < pooled["accuracy"] < 1 and all(np.isnan(oracle[name]) for name in ("threshold", "precision", "recall", "f1"))
    quiet = PixelMetrics(threshold=0.5)
    quiet.update(np.zeros((16, 16)), np.zeros((16, 16), np.uint8), "clean")
    assert np.isnan(quiet.pooled()["precision"]) and quiet.pooled()["accuracy"] == 1.0
    mixed = PixelMetrics(threshold=0.5)  # one tampered pixel is enough for every protocol to be defined again
    mask = np.zeros((16, 16), np.uint8)
    mask[0, 0] = 1
    mixed.update(np.zeros((16, 16)), mask, "missed")
    assert mixed.pooled()["recall"] == 0.0 and mixed.pooled()["f1"] == 0.0
