"""Find lines of printed text in an image's pixels (no OCR: the shape of text, not its words).

PNG and JPEG uploads carry no header that could say whether a name or a date is printed on the
image, and screenshots and phone photos of a viewer usually show the patient banner. A line of
text has a recognisable shape: several small, high-contrast marks of the same height side by
side on one baseline, with gaps about as wide as the marks. This module finds such lines so that
intake can hold the image for a clinician's look, the same way it holds DICOM secondary captures.

It errs towards holding: radiographs' own lead markers ("L", "R", "PORTABLE") are text too and
a clinician confirming them costs one click, while a missed name is a privacy breach. Images
smaller than `MIN_SIDE` pixels cannot carry legible words and are not examined.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

MIN_SIDE = 64
# Work at most at this size: text legible at full size stays at least ~6 px high.
MAX_SIDE = 1024
# A stroke must stand out from its surroundings by this fraction of the image's range.
STROKE_CONTRAST = 0.25
HEADROOM_MIN, HEADROOM_SHARE = 0.06, 0.6
# Glyph height in pixels at the working size.
GLYPH_MIN, GLYPH_MAX = 5, 48
# Marks on one line: how many make a word-like line.
LINE_MIN_MARKS = 4
# More glyph-sized marks than this is print (or an overlay) all over the image.
MAX_MARKS = 3000


@dataclass(frozen=True)
class TextLine:
    """One line of text-like marks: its bounding box (top, left, bottom, right) in the
    original image's pixels and how many marks it has."""

    box: tuple[int, int, int, int]
    marks: int


def _grey(pixels: np.ndarray) -> np.ndarray:
    """A (rows, cols) float image in [0, 1] from grey or RGB(A) values of any range."""
    image = np.asarray(pixels, dtype=np.float32)
    if image.ndim == 3:
        image = image[..., :3].mean(axis=-1)
    low, high = np.percentile(image, [0.5, 99.5])
    if high - low < 1e-6:
        return np.zeros(image.shape, dtype=np.float32)
    return np.clip((image - low) / (high - low), 0.0, 1.0)


def _shrink(image: np.ndarray) -> tuple[np.ndarray, int]:
    """Mean-pool an image larger than MAX_SIDE by a whole step; returns it and the step. A
    stroke narrower than the step loses contrast in proportion, so small print on a very large
    image may be missed: the threshold is set for print that is legible on screen."""
    step = max(1, int(np.ceil(max(image.shape) / MAX_SIDE)))
    if step == 1:
        return image, 1
    rows, cols = (image.shape[0] // step) * step, (image.shape[1] // step) * step
    pooled = image[:rows, :cols].reshape(rows // step, step, cols // step, step).mean(axis=(1, 3))
    return pooled, step


def _marks(image: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (top, left, bottom, right) of glyph-sized high-contrast marks, bright on
    dark and dark on bright."""
    size = GLYPH_MAX // 4 + 1
    boxes: list[tuple[int, int, int, int]] = []
    opened = ndimage.grey_opening(image, size=(size, size))
    closed = ndimage.grey_closing(image, size=(size, size))
    # A stroke stands out by STROKE_CONTRAST of the range, or, near the end of the range (white
    # print on a bright abdomen, black print on air), by most of the headroom that is left.
    for strokes, headroom in ((image - opened, 1.0 - opened), (closed - image, closed)):
        mask = (strokes > STROKE_CONTRAST) | (
            (strokes > HEADROOM_MIN) & (strokes > HEADROOM_SHARE * headroom)
        )
        # Join the strokes of one glyph (the dot of an i, a broken e) without joining glyphs.
        mask = ndimage.binary_closing(mask, structure=np.ones((3, 2)))
        labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
        if count == 0 or count > 20_000:  # noise, not glyphs
            continue
        for index, found in enumerate(ndimage.find_objects(labels), start=1):
            if found is None:
                continue
            top, bottom = found[0].start, found[0].stop
            left, right = found[1].start, found[1].stop
            height, width = bottom - top, right - left
            if not (GLYPH_MIN <= height <= GLYPH_MAX and 1 <= width <= 1.5 * GLYPH_MAX):
                continue
            fill = float((labels[found] == index).mean())
            if 0.08 <= fill <= 0.9:
                boxes.append((top, left, bottom, right))
    return boxes


def _lines(boxes: list[tuple[int, int, int, int]]) -> list[tuple[tuple[int, int, int, int], int]]:
    """Group marks into lines: similar height, overlapping vertically, gaps under twice the
    height; a line needs LINE_MIN_MARKS marks. Marks are visited in order of their left edge
    and a line stops looking once the next mark starts beyond its reach, so the work grows
    with the marks near each line, not with the square of all marks."""
    found = []
    order = sorted(range(len(boxes)), key=lambda i: (boxes[i][1], boxes[i][0]))
    used = [False] * len(boxes)
    for position, start in enumerate(order):
        if used[start]:
            continue
        line = [start]
        top, left, bottom, right = boxes[start]
        height = bottom - top
        for other in order[position + 1 :]:
            o_top, o_left, o_bottom, o_right = boxes[other]
            if o_left - right > 2.0 * height:
                break  # every later mark starts further right still
            if used[other]:
                continue
            o_height = o_bottom - o_top
            if not (0.5 <= o_height / height <= 2.0):
                continue
            middle = (o_top + o_bottom) / 2
            if not (top - 0.25 * height <= middle <= bottom + 0.25 * height):
                continue
            if o_left - right >= -0.2 * height:
                line.append(other)
                right = max(right, o_right)
                top, bottom = min(top, o_top), max(bottom, o_bottom)
        if len(line) >= LINE_MIN_MARKS:
            for index in line:
                used[index] = True
            found.append(((top, left, bottom, right), len(line)))
    return found


def text_lines(pixels: np.ndarray) -> list[TextLine]:
    """The lines of text-like marks in one frame (grey (rows, cols) or colour (rows, cols, 3|4)
    of any value range); empty when the image is too small or shows none."""
    if min(pixels.shape[:2]) < MIN_SIDE:
        return []
    image, step = _shrink(_grey(pixels))
    boxes = _marks(image)
    if len(boxes) > MAX_MARKS:
        # Thousands of glyph-sized marks: a page of print or a dense overlay; held as text
        # without grouping them (which would cost seconds on a hostile image).
        top = min(b[0] for b in boxes) * step
        left = min(b[1] for b in boxes) * step
        bottom = max(b[2] for b in boxes) * step
        right = max(b[3] for b in boxes) * step
        return [TextLine(box=(top, left, bottom, right), marks=len(boxes))]
    return [
        TextLine(box=tuple(v * step for v in box), marks=marks)  # type: ignore[arg-type]
        for box, marks in _lines(boxes)
    ]
