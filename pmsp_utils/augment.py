"""What happens to photos after a forgery, as training augmentation. Defined in 04_training.

A forged photo reaches a forensic tool after a journey: it is shrunk for the web,
re-saved as JPEG by a messenger or an upload form, sometimes smoothed or noisy.
Each step weakens the traces ELA shows (``benchmarks/RESULTS.md``: a JPEG
re-save at quality 90 takes the shipped pair from F1 0.639 to 0.473, a 0.75
downscale to 0.340). Training on such copies teaches the network traces that
survive them.

:class:`PostProcessing` applies these steps to the *whole* image (and moves the
mask with it) *before* ELA, so the network sees the ELA of the processed file,
as it would at inference. Each step has its own probability; all off is the
identity. Steps run in a photo's order: resize, blur, noise, then the JPEG save.
What each step does on its own, measured on validation: ``benchmarks/postprocess_study.py`` and
``benchmarks/RESULTS.md`` (one epoch each: the JPEG save helped most, blur alone hurt).
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, fields

import numpy as np
from PIL import Image, ImageFilter, JpegImagePlugin

#: The steps, in the order they are applied.
STEPS = ("resize", "blur", "noise", "jpeg")

#: The largest resize factor: x2 upscaling is a condition of the selection rule, so training may reach past it.
MAX_RESIZE = 4.0


@dataclass(frozen=True)
class PostProcessing:
    """Probabilities of each step (0: never) and the ranges their strengths are drawn from."""

    resize: float = 0.0
    jpeg: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    resize_range: tuple[float, float] = (0.5, 1.0)
    jpeg_quality: tuple[int, int] = (50, 100)
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    noise_sigma: tuple[float, float] = (1.0, 5.0)

    #: A preset: every step sometimes, as photos on the web meet them.
    PHOTO = {"resize": 0.3, "jpeg": 0.5, "blur": 0.15, "noise": 0.15}

    def __post_init__(self) -> None:
        for step in STEPS:
            value = getattr(self, step)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise ValueError(f"post-processing {step} is a probability in [0, 1], got {value!r}.")
        low, high = self.resize_range
        if not 0.1 <= low <= high <= MAX_RESIZE:
            raise ValueError(f"resize_range must be 0.1 <= low <= high <= {MAX_RESIZE:g}, got {self.resize_range}.")
        low, high = self.jpeg_quality
        if not 1 <= low <= high <= 100:
            raise ValueError(f"jpeg_quality must be two qualities low <= high in 1..100, got {self.jpeg_quality}.")

    @classmethod
    def from_dict(cls, values: dict | None) -> "PostProcessing":
        """From a config's dict (lists back to tuples); unknown keys are an error naming them."""
        values = dict(values or {})
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"post-processing has no setting {', '.join(unknown)}; the settings are {', '.join(sorted(known))}.")
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in values.items()})

    @classmethod
    def parse(cls, text: str) -> "PostProcessing":
        """From the command line: ``photo`` (the preset), ``none``, or ``resize=0.3,jpeg=0.5,blur=0.1,noise=0.1``.

        ``resize_range=LOW-HIGH`` sets the range resize factors are drawn from (default 0.5-1.0); with native-resolution
        training, a range past 1 (e.g. ``resize=0.4,resize_range=0.5-2``) teaches upscaled photos too.
        """
        text = text.strip()
        if text in {"", "none", "off"}:
            return cls()
        if text == "photo":
            return cls(**cls.PHOTO)
        values = {}
        for item in text.split(","):
            name, _, number = item.partition("=")
            if name.strip() in values:  # the last would win without a word
                raise ValueError(f"--postprocess names {name.strip()} twice ({text!r}); give each step once.")
            if name.strip() == "resize_range":
                low, dash, high = number.partition("-")
                try:
                    values["resize_range"] = (float(low), float(high))
                except ValueError:
                    raise ValueError(f"--postprocess resize_range takes LOW-HIGH factors, e.g. resize_range=0.5-2, got {number!r}.") from None
                if not dash:
                    raise ValueError(f"--postprocess resize_range takes LOW-HIGH factors, e.g. resize_range=0.5-2, got {number!r}.")
                continue
            if name.strip() not in STEPS or not number:
                raise ValueError(f"--postprocess takes 'photo', 'none' or STEP=P pairs joined by commas (steps: {', '.join(STEPS)}), got {item!r}.")
            try:
                values[name.strip()] = float(number)
            except ValueError:
                raise ValueError(f"--postprocess {name.strip()}: {number!r} is not a probability.") from None
        return cls(**values)

    def to_dict(self) -> dict:
        """The non-default settings (what a config.json records; ``{}`` is off)."""
        default = PostProcessing()
        return {key: value for key, value in asdict(self).items() if value != getattr(default, key)}

    @property
    def active(self) -> bool:
        return any(getattr(self, step) > 0 for step in STEPS)

    def draw(self, rng: np.random.Generator) -> dict:
        """The steps for one image: {step: strength} (an empty dict leaves the image as it is)."""
        chosen = {}
        if rng.random() < self.resize:
            chosen["resize"] = float(rng.uniform(*self.resize_range))
        if rng.random() < self.blur:
            chosen["blur"] = float(rng.uniform(*self.blur_sigma))
        if rng.random() < self.noise:
            chosen["noise"] = float(rng.uniform(*self.noise_sigma))
        if rng.random() < self.jpeg:
            chosen["jpeg"] = int(rng.integers(self.jpeg_quality[0], self.jpeg_quality[1] + 1))
        return chosen


def apply_steps(image: np.ndarray, mask: np.ndarray, steps: dict, rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (uint8 H, W, 3) and its ``mask`` (uint8 H, W) after ``steps`` (from :meth:`PostProcessing.draw`).

    Only ``resize`` moves pixels; the mask follows it by nearest neighbour, so it stays 0/1 and aligned.
    """
    if "resize" in steps:
        factor = steps["resize"]
        size = (max(8, round(image.shape[1] * factor)), max(8, round(image.shape[0] * factor)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=None))
        mask = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
    if "blur" in steps:
        image = np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(steps["blur"])))
    if "noise" in steps:
        rng = rng or np.random.default_rng(0)
        image = np.clip(image + rng.normal(0.0, steps["noise"], image.shape), 0, 255).astype(np.uint8)
    if "jpeg" in steps:
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="JPEG", quality=int(steps["jpeg"]))
        buffer.seek(0)
        image = np.asarray(JpegImagePlugin.JpegImageFile(buffer).convert("RGB"))  # pmsp's own copy: no pixel limit
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)
