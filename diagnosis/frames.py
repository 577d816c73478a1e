"""Frames prepared once at upload: what the viewer shows and what the model reads.

Stored per scan as one compressed .npz: ``values_<i>`` (float16 modality values or RGB samples,
down-sampled so a whole series stays small), ``model_<i>`` (uint8 after the default window, at
most MODEL_SIDE pixels a side) and the default window per frame.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from diagnosis.imaging import Frame, to_uint8

# A viewer rarely needs more than this per side; a long series gets smaller frames so the
# file stays under about DISPLAY_BUDGET values.
DISPLAY_SIDE = 512
MODEL_SIDE = 256
DISPLAY_BUDGET = 24_000_000


@dataclass(frozen=True)
class PreparedFrames:
    npz: bytes
    frames: int
    is_color: bool


def _shrink(array: np.ndarray, side: int) -> np.ndarray:
    """Area-average down-sampling so the longer side is at most ``side`` (never enlarges)."""
    height, width = array.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return array
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    tensor = tensor[None, None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)[None]
    out = F.interpolate(tensor, size=size, mode="area")[0]
    return (out[0] if array.ndim == 2 else out.permute(1, 2, 0)).numpy()


# Rows windowed at a time: the windowing functions work in float64, so a whole large frame
# at once costs several 8-byte temporaries per pixel (over 100 MiB for a 2048 x 2048 frame).
STRIPE_ROWS = 256


def _uint8_by_stripes(frame: Frame) -> np.ndarray:
    """to_uint8(frame), computed a stripe of rows at a time (same result: it is elementwise
    with the frame's own default window or VOI LUT)."""
    values = frame.values
    out = np.empty(values.shape, dtype=np.uint8)
    for start in range(0, values.shape[0], STRIPE_ROWS):
        stripe = replace(frame, values=values[start : start + STRIPE_ROWS])
        out[start : start + STRIPE_ROWS] = to_uint8(stripe)
    return out


def prepare_frames(frames: Sequence[Frame]) -> PreparedFrames:
    """Build the viewer/model arrays for every frame of a scan, one frame at a time (a lazy
    sequence such as pixels.ScanFrames keeps only one frame's float values in memory)."""
    count = len(frames)
    first = frames[0]
    height, width = first.values.shape[:2]
    channels = 3 if first.is_color else 1
    is_color = first.is_color
    del first
    side = DISPLAY_SIDE
    if count * channels * min(height, side) * min(width, side) > DISPLAY_BUDGET:
        side = max(64, int(math.sqrt(DISPLAY_BUDGET / (count * channels))))
    arrays: dict[str, np.ndarray] = {}
    windows = np.zeros((count, 2), dtype=np.float64)
    inverts = np.zeros(count, dtype=bool)
    for index, frame in enumerate(frames):
        arrays[f"values_{index}"] = _shrink(frame.values, side).astype(np.float16)
        arrays[f"model_{index}"] = (
            _shrink(_uint8_by_stripes(frame), MODEL_SIDE).round().astype(np.uint8)
        )
        windows[index] = (frame.window.center, frame.window.width)
        inverts[index] = frame.invert
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, windows=windows, inverts=inverts, original_shape=[height, width], **arrays
    )
    return PreparedFrames(npz=buffer.getvalue(), frames=count, is_color=is_color)


def model_images(npz: np.lib.npyio.NpzFile) -> list[np.ndarray]:
    """The frames as the model reads them (uint8, windowed)."""
    count = len(npz["windows"])
    return [npz[f"model_{i}"] for i in range(count)]
