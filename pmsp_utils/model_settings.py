"""The network's choices and the settings a trained model depends on (:class:`ModelSettings`), without Keras. Explained in 03_building_the_network.

Everything here is plain Python so the command line, the data pipeline and the
notebooks can name the choices (``choices=`` in argparse, the ablation grid)
and check an input size without importing Keras:

- the choice tuples: attention placement, fusion, streams, output stride, decoder;
- :func:`check_input_size`: F5 (the input divided by the output stride) must
  divide into every pyramid bin; an invalid size gets the nearest valid ones;
- :class:`ModelSettings`: what the inputs of a trained model depend on
  (architecture, ELA quality, scaling and gain, the image-to-input policy).
  It is saved with every model (run ``config.json``, the shipped card, the
  ``.keras`` file's metadata) and inference reads it back, never a default.

The best F1 an output grid allows (:func:`~pmsp_utils.metrics.perfect_map_f1`) is with the metrics.
"""

from __future__ import annotations

import json
import math
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

ATTENTION_PLACEMENTS = ("none", "features", "blocks")
FUSIONS = ("add", "concat")
STREAMS = ("both", "rgb", "ela")
OUTPUT_STRIDES = (8, 16, 32)
DECODERS = ("none", "f3")
INPUT_POLICIES = ("resize", "pad", "native")
BINS = (1, 2, 3, 6)
# The defaults of a network and of its ELA input, typed here once: ModelSettings' fields, build_pmsp, the backbone,
# the ELA functions and the command line read them.
DEFAULT_OUTPUT_STRIDE = 32  # MobileNetV1 as published, the paper's network
DEFAULT_ELA_QUALITY = 90  # the re-save quality of the paper's ELA (section 3.1)
DEFAULT_ELA_GAIN = 8.0
DECODER_STRIDE = 8  # F3, the level the decoder reads, is at stride 8


def prediction_stride(output_stride: int = DEFAULT_OUTPUT_STRIDE, decoder: str = "none") -> int:
    """Pixels per logit along each side of the network's output: F5's stride, or 8 with the F3 decoder."""
    return min(output_stride, DECODER_STRIDE) if decoder != "none" else output_stride


def _step(output_stride: int, bins: tuple[int, ...]) -> int:
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride!r}.")
    return output_stride * math.lcm(*bins)


def nearest_valid_sizes(size: int, bins: tuple[int, ...] = BINS, *, output_stride: int = DEFAULT_OUTPUT_STRIDE) -> tuple[int, ...]:
    """The valid input sizes nearest ``size``: multiples of output_stride * lcm(bins) (192 at stride 32, 96 at 16, 48 at 8)."""
    step = _step(output_stride, bins)
    lower = max(step, int(size) // step * step)
    upper = lower if lower >= size else lower + step
    return (lower,) if lower == upper else (lower, upper)


def check_input_size(size: int, bins: tuple[int, ...] = BINS, *, output_stride: int = DEFAULT_OUTPUT_STRIDE) -> None:
    """Raise a ValueError naming the nearest valid sizes unless F5 (size / output_stride) divides into every bin."""
    step = _step(output_stride, bins)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise TypeError(f"input size must be an integer (a multiple of {step}), got {size!r}.")
    if size < step or size % step:
        nearest = " or ".join(str(value) for value in nearest_valid_sizes(size, bins, output_stride=output_stride))
        raise ValueError(
            f"input size {size} does not work: F5 is the input divided by the output stride {output_stride} and must "
            f"divide into the pyramid bins {bins}, so the size must be a multiple of {step}. Nearest: {nearest}."
        )


@dataclass(frozen=True)
class ModelSettings:
    """What a trained model's inputs depend on; saved with the model and read back by inference.

    ``policy``: how an image reaches the square input. ``"resize"`` stretches it
    to the input (the paper); ``"pad"`` keeps an image that fits at its own
    pixels in the top-left corner of the input and ignores the rest (larger
    images are resized to fit, keeping their aspect ratio, then padded);
    ``"native"`` never resamples: an image that fits is padded as with ``"pad"``, a larger one is cropped (training,
    a window on the 8x8 JPEG grid) or covered by overlapping tiles with blended seams (inference).
    ``flip``: whether inference averages the map with the flipped input's.
    """

    input_size: int = 576
    attention: str = "features"
    fusion: str = "add"
    streams: str = "both"
    output_stride: int = DEFAULT_OUTPUT_STRIDE
    decoder: str = "none"
    ela_gain: float = DEFAULT_ELA_GAIN
    ela_quality: int = DEFAULT_ELA_QUALITY
    ela_scaling: str = "raw"
    policy: str = "resize"
    flip: bool = False  # test-time augmentation: average with the horizontally flipped input's map (on where it was measured to win)
    score_calibration: tuple = ()  # (slope, intercept): tamper_score = sigmoid(slope * raw + intercept), fitted on validation; (): raw

    ARCHITECTURE = ("input_size", "attention", "fusion", "streams", "output_stride", "decoder", "ela_gain")

    def __post_init__(self) -> None:
        for name, kinds, what in (("flip", (bool, np.bool_), "true or false"), ("input_size", (int, np.integer), "a whole number"),
                                  ("output_stride", (int, np.integer), "a whole number"), ("ela_quality", (int, np.integer, float), "a number"),
                                  ("ela_gain", (int, float, np.integer, np.floating), "a number")):
            value = getattr(self, name)
            if not isinstance(value, kinds) or (name != "flip" and isinstance(value, (bool, np.bool_))):
                raise TypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__}).")
        if isinstance(self.ela_quality, float):
            if not self.ela_quality.is_integer():
                raise ValueError(f"ela_quality is a JPEG quality, a whole number in 1..100, got {self.ela_quality!r}.")
            object.__setattr__(self, "ela_quality", int(self.ela_quality))  # 90.0 in a JSON file means 90
        if not np.isfinite(float(self.ela_gain)):
            raise ValueError(f"ela_gain must be a finite positive number, got {self.ela_gain!r}.")
        object.__setattr__(self, "flip", bool(self.flip))
        calibration = self.score_calibration
        if not isinstance(calibration, (tuple, list)) or len(calibration) not in (0, 2) or not all(
                isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) for value in calibration):
            raise ValueError(f"score_calibration is () or two finite numbers (slope, intercept), got {calibration!r}.")
        object.__setattr__(self, "score_calibration", tuple(float(value) for value in calibration))
        check_input_size(self.input_size, output_stride=self.output_stride)
        for value, allowed, what in ((self.attention, ATTENTION_PLACEMENTS, "attention"), (self.fusion, FUSIONS, "fusion"),
                                     (self.streams, STREAMS, "streams"), (self.decoder, DECODERS, "decoder"),
                                     (self.policy, INPUT_POLICIES, "policy"), (self.ela_scaling, ("raw",), "ela_scaling")):
            if value not in allowed:
                raise ValueError(f"{what} must be one of {allowed}, got {value!r}.")
        if not 1 <= int(self.ela_quality) <= 100:
            raise ValueError(f"ela_quality must be in 1..100, got {self.ela_quality}.")
        if not self.ela_gain > 0:
            raise ValueError(f"ela_gain must be positive, got {self.ela_gain}.")

    def architecture(self) -> dict:
        """The keyword arguments of ``build_pmsp`` these settings fix."""
        return {name: getattr(self, name) for name in self.ARCHITECTURE}

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict, *, source: str = "settings", required: tuple[str, ...] = ()) -> "ModelSettings":
        """Settings from a saved dictionary; names the file (``source``) when one is missing or invalid."""
        if not isinstance(values, dict):
            raise ValueError(f"{source}: the model's saved settings are a JSON {type(values).__name__}, not an object of named "
                             "fields; re-export the model, or restore the file.")
        known = {field.name for field in fields(cls)}
        missing = [name for name in required if name not in values]
        if missing:
            raise ValueError(f"{source}: the model's saved settings lack {', '.join(missing)}; "
                             "re-export the model with this version of pmsp_utils (settings are saved with every model).")
        try:
            return cls(**{key: value for key, value in values.items() if key in known})
        except (TypeError, ValueError) as error:
            raise ValueError(f"{source}: the model's saved settings do not fit together: {error}") from None

    @property
    def prediction_stride(self) -> int:
        return prediction_stride(self.output_stride, self.decoder)


#: The member of a ``.keras`` archive (a zip file) that holds the model's settings.
SETTINGS_MEMBER = "pmsp_settings.json"


#: The most bytes a member of a ``.keras`` archive may declare: its weights (``*.h5``: 122 MB for a float32 checkpoint
#: with its optimizer here) and the small JSON members (config, metadata, the pmsp settings: kilobytes). Zip's reader
#: never returns more than a member declares, so checking the declared sizes first bounds what a file can make this
#: process inflate (a 3 MB file whose settings inflated to 3 GiB took 7 GB of memory before).
KERAS_WEIGHTS_LIMIT = 2 << 30
KERAS_MEMBER_LIMIT = 16 << 20


def check_keras_members(path: Path, archive: zipfile.ZipFile) -> None:
    """Refuse a ``.keras`` archive with a member that declares more than it could hold (a zip bomb), naming it."""
    for info in archive.infolist():
        limit = KERAS_WEIGHTS_LIMIT if info.filename.endswith((".h5", ".npz")) else KERAS_MEMBER_LIMIT
        if info.file_size > limit:
            raise ValueError(f"{path}: its member {info.filename} inflates to {info.file_size:,} bytes, more than the {limit:,} "
                             "any model file's can hold; the file is damaged or built to exhaust memory, and was not read. "
                             "Pass a model saved by pmsp train.")


def read_keras_settings(path: str | Path) -> ModelSettings:
    """The settings saved inside a ``.keras`` file; a clear error naming the file when they are missing or contradictory."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            check_keras_members(path, archive)
            if SETTINGS_MEMBER not in archive.namelist():
                raise ValueError(f"{path}: no saved pmsp settings in this .keras file (input size, ELA quality, output stride, "
                                 "input policy); save it with pmsp_utils.models.save_model, or load it from its run folder.")
            values = json.loads(archive.read(SETTINGS_MEMBER))
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{path}: not a readable .keras file ({error}); pass a model saved by pmsp train.") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: its saved pmsp settings are not valid JSON ({error}).") from None
    return ModelSettings.from_dict(values, source=str(path), required=ModelSettings.ARCHITECTURE)
