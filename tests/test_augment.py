"""Post-processing augmentation (pmsp_utils.augment) and distillation targets (pmsp_utils.distill)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pmsp_utils.augment import PostProcessing, apply_steps
from pmsp_utils.distill import mix_targets


def planted(size=(160, 200)):
    """A dark noisy image with a bright square, and the square as its mask."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 60, size + (3,)).astype(np.uint8)
    mask = np.zeros(size, np.uint8)
    mask[40:88, 120:168] = 1
    image[mask == 1] = 230
    return image, mask


@pytest.mark.parametrize("steps", [{"resize": 0.5}, {"resize": 0.73, "jpeg": 60}, {"blur": 1.0, "noise": 3.0}, {}])
def test_steps_keep_image_and_mask_aligned(steps):
    image, mask = planted()
    out, out_mask = apply_steps(image, mask, steps, np.random.default_rng(1))
    assert out.shape[:2] == out_mask.shape and set(np.unique(out_mask)) <= {0, 1}
    factor = steps.get("resize", 1.0)
    assert abs(out_mask.mean() - mask.mean()) < 0.01 and out_mask.shape == (round(160 * factor), round(200 * factor))
    core = np.asarray(Image.fromarray(out_mask * 255).filter(__import__("PIL.ImageFilter").ImageFilter.MinFilter(5))) > 0
    assert out[core].mean() > 180 and out[out_mask == 0].mean() < 80  # the bright square is where the mask says
    if not steps:
        assert np.array_equal(out, image)


def test_parse_presets_and_errors():
    assert PostProcessing.parse("photo") == PostProcessing(**PostProcessing.PHOTO)
    assert PostProcessing.parse("none").active is False
    assert PostProcessing.parse("resize=0.4,jpeg=1").to_dict() == {"resize": 0.4, "jpeg": 1.0}
    with pytest.raises(ValueError, match="steps: resize, blur, noise, jpeg"):
        PostProcessing.parse("sharpen=0.5")
    with pytest.raises(ValueError, match="probability"):
        PostProcessing(jpeg=1.5)
    with pytest.raises(ValueError, match="no setting colour"):
        PostProcessing.from_dict({"colour": 0.1})
    for twice in ("jpeg=0.5,jpeg=0.7", "resize_range=0.5-1,resize=0.2,resize_range=0.5-2"):  # the last won without a word
        with pytest.raises(ValueError, match=r"names (jpeg|resize_range) twice"):
            PostProcessing.parse(twice)


def test_resize_range_reaches_upscaling_and_round_trips_through_a_config():
    settings = PostProcessing.parse("resize=1,resize_range=0.5-2")
    assert settings.resize_range == (0.5, 2.0)
    assert PostProcessing.from_dict(json.loads(json.dumps(settings.to_dict()))) == settings
    factors = [settings.draw(np.random.default_rng(seed))["resize"] for seed in range(200)]
    assert min(factors) >= 0.5 and max(factors) <= 2.0 and np.mean(np.array(factors) > 1) > 0.5
    image, mask = planted()
    out, out_mask = apply_steps(image, mask, {"resize": 2.0})
    assert out.shape[:2] == out_mask.shape == (320, 400) and abs(out_mask.mean() - mask.mean()) < 0.01
    for bad in ("resize_range=2", "resize_range=a-b", "resize_range=0.5-9"):
        with pytest.raises(ValueError, match="resize_range"):
            PostProcessing.parse(bad)


def test_draws_follow_the_probabilities():
    rng = np.random.default_rng(0)
    settings = PostProcessing(resize=0.5, jpeg=1.0)
    draws = [settings.draw(rng) for _ in range(400)]
    assert all("jpeg" in d and 50 <= d["jpeg"] <= 100 for d in draws)
    assert 0.4 < np.mean(["resize" in d for d in draws]) < 0.6
    assert not any("blur" in d or "noise" in d for d in draws)


def test_mix_targets_as_documented():
    mask = np.array([[0, 1], [1, 0]], np.uint8)
    teacher = np.array([[255, 0], [102, 51]], np.uint8)
    mixed = mix_targets(mask, teacher, 0.25)
    assert np.allclose(mixed, 0.75 * mask + 0.25 * teacher / 255.0)
    assert np.array_equal(mix_targets(mask, None, 0.5), mask.astype(np.float32))
    assert mix_targets(np.zeros((4, 4), np.uint8), np.full((2, 2), 255, np.uint8), 1.0).min() == 1.0  # resized to the mask


keras = pytest.importorskip("keras", reason="the training pipeline needs Keras")


@pytest.fixture()
def planted_record(tmp_path):
    from pmsp_utils.data.records import Record

    image, mask = planted()
    Image.fromarray(image).save(tmp_path / "square.jpg", quality=92)
    Image.fromarray(mask * 255).save(tmp_path / "square.png")
    return Record("folder", "square", "splicing", tmp_path / "square.jpg", tmp_path / "square.png")


def sequence_of(record, tmp_path, teacher=None, **changes):
    from pmsp_utils.ela import ElaCache, ElaSettings
    from pmsp_utils.train import TrainConfig, make_sequence

    config = TrainConfig(**{"data": "synthetic", "input_size": 192, "batch_size": 1, "workers": 1, "weights": None, **changes})
    cache = ElaCache(tmp_path / "ela", ElaSettings(quality=90))
    return make_sequence([record], config, shuffle=False, augment=True, ela_cache=cache, teacher=teacher), config


def test_postprocessed_batches_keep_the_square_under_its_mask(planted_record, tmp_path):
    """Resize (always) and flips in the training pipeline: the bright square and its target move together."""
    sequence, _ = sequence_of(planted_record, tmp_path, postprocess={"resize": 1.0, "jpeg": 1.0})
    seen_flips = set()
    for epoch in range(6):
        sequence.set_epoch(epoch)
        inputs, targets = sequence[0]
        rgb, target = inputs["rgb"][0], targets[0, ..., 0]
        assert set(np.unique(target)) <= {0.0, 1.0} and 0.04 < target.mean() < 0.1
        assert rgb[target == 1].mean() > 170 and rgb[target == 0].mean() < 90
        rows, cols = np.nonzero(target)
        seen_flips.add((rows.mean() > 96, cols.mean() > 96))
    assert len(seen_flips) > 1  # flips moved the square, and the target with it


def test_distillation_targets_are_read_from_the_cache_and_mixed(planted_record, tmp_path):
    """A teacher map written into the cache is what the targets mix in, at the configured weight."""
    from pmsp_utils.distill import TeacherMaps
    from pmsp_utils.ela import ElaCache, ElaSettings, save_npy_atomic
    from pmsp_utils.train import InputCache

    teacher_file = tmp_path / "teacher.weights.h5"
    teacher_file.write_bytes(b"stand-in teacher")
    inputs = InputCache(ElaCache(tmp_path / "ela", ElaSettings(quality=90)), 192, "resize")
    teacher = TeacherMaps(str(teacher_file), inputs)
    known = np.tile(np.linspace(0, 255, 192).astype(np.uint8), (192, 1))
    save_npy_atomic(teacher.path_for(planted_record), known)
    assert teacher.prepare([planted_record], load=None) == 0  # nothing missing: the teacher is not even loaded
    sequence, config = sequence_of(planted_record, tmp_path, teacher=teacher, policy="resize", distill_weight=0.3)
    sequence.set_epoch(0)
    inputs_, targets = sequence[0]
    target = targets[0, ..., 0]
    mask = (inputs_["rgb"][0].mean(-1) > 150)  # the square
    flipped_lr = target[0, 0] > target[0, -1]  # a flip moves the teacher's gradient too
    expected = known[:, ::-1] if flipped_lr else known
    expected = expected[::-1] if not np.allclose(target[:, 0], target[::-1, 0][::-1]) else expected
    base = target - 0.3 * expected / 255.0
    assert np.allclose(np.unique(np.round(base, 4)), [0.0, 0.7], atol=1e-3)
    assert abs((np.isclose(base, 0.7, atol=1e-3)).mean() - mask.mean()) < 0.02
    other = TeacherMaps(str(teacher_file), InputCache(inputs.ela_cache, 384, "resize"))
    assert other.path_for(planted_record) != teacher.path_for(planted_record)  # keyed by the input settings too
