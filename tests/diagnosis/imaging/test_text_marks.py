"""Printed text in PNG/JPEG pixels: found where it is, not found in radiographs without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from diagnosis.imaging.burned_in import Verdict, raster_assessment
from diagnosis.imaging.text_marks import MIN_SIDE, text_lines

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def chest_films() -> np.ndarray:
    with np.load(ROOT / "data" / "medmnist" / "pneumoniamnist.npz") as npz:
        return npz["test_images"][:40]


def _film(image: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((side, side), Image.BILINEAR))


def _print(image: np.ndarray, text: str, *, size: int, fill: int, at: tuple[int, int]):
    canvas = Image.fromarray(image).convert("L")
    ImageDraw.Draw(canvas).text(at, text, fill=fill, font=ImageFont.load_default(size=size))
    return np.asarray(canvas)


BANNER = "DOE^JANE  MRN 7723401  03/12/1950"


@pytest.mark.parametrize(
    ("side", "size", "fill", "at"),
    [
        (256, 12, 255, (6, 6)),  # white banner at the top
        (256, 10, 0, (6, 230)),  # small dark print at the bottom
        (512, 16, 255, (40, 480)),
        (1600, 30, 255, (20, 20)),  # a large image, shrunk before the search
    ],
)
def test_a_printed_name_on_a_chest_film_is_found(chest_films, side, size, fill, at):
    found = 0
    for film in chest_films[:10]:
        lines = text_lines(_print(_film(film, side), BANNER, size=size, fill=fill, at=at))
        if lines:
            top, left, bottom, right = lines[0].box
            # Where the text is, in the original image's pixels.
            assert abs(top - at[1]) <= size and abs(left - at[0]) <= 2 * size
            found += 1
    assert found == 10


def test_chest_films_noise_and_blank_images_show_no_text(chest_films):
    rng = np.random.default_rng(0)
    assert not any(text_lines(_film(film, 256)) for film in chest_films)
    assert not any(text_lines(_film(film, 1024)) for film in chest_films[:8])
    assert not text_lines((rng.random((300, 300)) * 255).astype(np.uint8))
    assert not text_lines(np.full((300, 300), 90, np.uint8))


def test_colour_images_and_tiny_ones():
    canvas = Image.new("RGB", (320, 200), (20, 40, 90))
    ImageDraw.Draw(canvas).text(
        (10, 80), BANNER, fill=(255, 255, 0), font=ImageFont.load_default(size=14)
    )
    assert text_lines(np.asarray(canvas))
    # Under MIN_SIDE there is no room for a legible line: never examined.
    tiny = np.asarray(canvas.resize((MIN_SIDE - 1, MIN_SIDE - 1)))
    assert text_lines(tiny) == []


def test_the_hold_reason_says_what_and_where(chest_films):
    clean = raster_assessment(_film(chest_films[0], 256))
    assert clean.verdict == Verdict.CLEAN
    held = raster_assessment(
        _print(_film(chest_films[0], 256), BANNER, size=12, fill=255, at=(6, 6))
    )
    assert held.verdict == Verdict.HOLD
    assert "line of text-like marks" in held.reason and "rows " in held.reason
    assert "confirm that no identifying text is visible" in held.reason


def test_an_image_covered_in_glyph_sized_marks_is_held_without_grouping_them():
    # 4,032 isolated marks, none close enough to its neighbours to form a line: grouping them
    # pairwise was quadratic (seconds per file on a hostile upload); past MAX_MARKS the
    # image is print or an overlay all over and is reported as text at once.
    from diagnosis.imaging.text_marks import MAX_MARKS

    image = np.zeros((1024, 1024), np.uint8)
    for y in range(0, 1024, 16):
        for x in range(0, 1024, 16):
            image[y : y + 5, x : x + 3] = 255
            image[y + 2, x + 3] = 255
    (line,) = text_lines(image)
    assert line.marks > MAX_MARKS
    top, left, bottom, right = line.box
    assert top < 64 and left < 64 and bottom > 960 and right > 960  # the whole image
