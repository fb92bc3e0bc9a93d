"""pixel_auc against scikit-learn and hand-computed cases."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pmsp_utils.metrics import mean_pixel_auc, pixel_auc


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
