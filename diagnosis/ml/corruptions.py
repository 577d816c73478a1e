"""Synthetic out-of-distribution images made from in-distribution ones: what a detector must
flag although no other data set is at hand (noise, a blank frame, inverted contrast, a
rotated or cropped film, a screenshot of a text report).

Training scores them to record the detector's detection rate on each (metrics["ood"]
["synthetic"]); bench/applicability.py writes the same images as PNG files and reads them
back through the product's intake.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

SYNTHETIC: tuple[str, ...] = ("noise", "blank", "inverted", "rotated", "cropped", "text-screenshot")
# Images per synthetic set measured at training time: enough for a rate to within a few
# percentage points, cheap beside training (one forward pass of 600 small images).
TRAINING_SET_SIZE = 100


def synthetic_image(name: str, image: np.ndarray, rng: np.random.Generator, i: int) -> np.ndarray:
    """The `i`-th image of synthetic set `name`, made from the in-distribution `image` (uint8,
    (H, W) or (H, W, C)); a uint8 grey image. ValueError for an unknown set."""
    grey = image[..., 0] if image.ndim == 3 else image
    if name == "noise":
        return rng.integers(0, 256, size=(256, 256), dtype=np.uint8)
    if name == "blank":
        return np.full((256, 256), int(rng.integers(0, 256)), dtype=np.uint8)
    if name == "inverted":
        return (255 - grey).astype(np.uint8)
    if name == "rotated":
        return np.rot90(grey, k=1 + i % 3).copy()
    if name == "cropped":
        h, w = grey.shape
        # A quarter of the film enlarged back to full size: one lung corner, no mediastinum.
        y, x = (i % 2) * h // 2, (i // 2 % 2) * w // 2
        crop = Image.fromarray(grey[y : y + h // 2, x : x + w // 2])
        return np.asarray(crop.resize((w, h), Image.Resampling.BILINEAR))
    if name == "text-screenshot":
        canvas = Image.new("L", (256, 256), color=255)
        draw = ImageDraw.Draw(canvas)
        font = ImageFont.load_default()
        words = ["Patient report", "Findings:", "No acute", "cardiopulmonary", "process.", "Dr."]
        for line in range(12):
            text = " ".join(words[(line + i + k) % len(words)] for k in range(3))
            draw.text((8, 8 + line * 20), text, fill=0, font=font)
        return np.asarray(canvas)
    raise ValueError(f"unknown synthetic set {name!r}; known: {', '.join(SYNTHETIC)}")


def synthetic_sets(
    images: np.ndarray, *, count: int = TRAINING_SET_SIZE, seed: int = 0
) -> dict[str, list[np.ndarray]]:
    """Every synthetic set, `count` images each (fewer if `images` has fewer), made from the
    first in-distribution `images` with a fixed seed (the same images on every run)."""
    rng = np.random.default_rng(seed)
    n = min(count, len(images))
    return {
        name: [synthetic_image(name, np.asarray(images[i]), rng, i) for i in range(n)]
        for name in SYNTHETIC
    }
