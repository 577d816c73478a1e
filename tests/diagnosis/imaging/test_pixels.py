"""Display and model frames: Modality LUT, VOI window/LUT, MONOCHROME1, colour, PNG/JPEG modes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydicom.pixels import apply_modality_lut

from diagnosis.imaging.intake import load_upload
from diagnosis.imaging.pixels import (
    Frame,
    Window,
    apply_voi_lut,
    apply_window,
    model_input,
    percentile_window,
    scan_frames,
    to_uint8,
    to_unit_range,
)
from diagnosis.imaging.scan import LoadedScan
from tests.diagnosis.imaging.imaging_samples import (
    MAX_BYTES,
    MAX_PIXELS,
    jpeg_bytes,
    png_bytes,
    pydicom_file_bytes,
)


def _load(data: bytes) -> LoadedScan:
    return load_upload(data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)


def _frames(name: str) -> tuple[LoadedScan, list[Frame]]:
    scan = _load(pydicom_file_bytes(name))
    return scan, scan_frames(scan)


# --- VOI functions (PS3.3 C.11.2.1.2) ------------------------------------------------------


def test_linear_window_matches_the_standard_formula() -> None:
    window = Window(center=40, width=400)  # a CT soft-tissue window
    # C.11.2.1.2.1: black at or below c - 0.5 - (w-1)/2 = -160, white above c - 0.5 + (w-1)/2.
    out = apply_window([-1000, -160, -159, 39.5, 239, 239.01, 3000], window)
    assert out[0] == 0 and out[1] == 0 and out[-1] == 1 and out[-2] == 1
    assert out[3] == pytest.approx(0.5)
    assert out[2] == pytest.approx(1 / 399, abs=1e-6)
    assert out[4] == pytest.approx(1.0)


def test_linear_exact_and_sigmoid() -> None:
    exact = Window(100, 50, "LINEAR_EXACT")
    assert list(apply_window([75, 100, 125], exact)) == pytest.approx([0.0, 0.5, 1.0])
    sigmoid = apply_window(np.linspace(-500, 700, 50), Window(100, 200, "SIGMOID"))
    assert np.all(np.diff(sigmoid) > 0)
    assert float(apply_window([100], Window(100, 200, "SIGMOID"))[0]) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("width", "function"), [(0.5, "LINEAR"), (0, "LINEAR_EXACT"), (float("nan"), "SIGMOID")]
)
def test_invalid_windows_are_refused(width: float, function: str) -> None:
    with pytest.raises(ValueError):
        Window(0, width, function)  # type: ignore[arg-type]


def test_percentile_window_ignores_outliers_and_masked_pixels() -> None:
    values = np.concatenate([np.linspace(0, 100, 10_000), [1e6] * 5])
    low, high = percentile_window(values).bounds
    assert 0 <= low < 1 and 99 < high <= 100.1
    mask = values < 50
    assert percentile_window(values, mask=mask).bounds[1] < 50


# --- DICOM grey pipeline -------------------------------------------------------------------


def test_ct_modality_lut_gives_hounsfield_units() -> None:
    scan, frames = _frames("CT_small.dcm")
    dataset = scan.dataset
    assert dataset is not None
    expected = scan.pixels[0] * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    np.testing.assert_allclose(frames[0].values, expected)
    assert frames[0].values.min() < -800  # air outside the body is about -1000 HU
    assert frames[0].window_source == "percentile" and not frames[0].invert


def test_header_window_is_the_default() -> None:
    scan, frames = _frames("MR_small.dcm")
    dataset = scan.dataset
    assert dataset is not None
    assert frames[0].window_source == "header"
    assert frames[0].window == Window(float(dataset.WindowCenter), float(dataset.WindowWidth))
    np.testing.assert_array_equal(
        to_uint8(frames[0]), np.rint(apply_window(frames[0].values, frames[0].window) * 255)
    )


def test_user_window_overrides_the_default() -> None:
    _, frames = _frames("CT_small.dcm")
    bone = Window(center=500, width=2000)
    custom = to_uint8(frames[0], bone)
    expected = np.rint(apply_window(frames[0].values, bone) * 255).astype(np.uint8)
    np.testing.assert_array_equal(custom, expected)
    assert not np.array_equal(custom, to_uint8(frames[0]))


def test_monochrome1_is_inverted_after_voi() -> None:
    scan, frames = _frames("RG1_UNCR.dcm")
    assert scan.info.photometric_interpretation == "MONOCHROME1"
    frame = frames[0]
    assert frame.invert
    np.testing.assert_allclose(
        to_unit_range(frame), 1.0 - apply_window(frame.values, frame.window), atol=1e-6
    )
    # The lowest value is displayed brightest, the highest darkest.
    display = to_uint8(frame)
    lowest = np.unravel_index(np.argmin(frame.values), frame.values.shape)
    highest = np.unravel_index(np.argmax(frame.values), frame.values.shape)
    assert display[lowest] == display.max() and display[highest] == display.min()


def test_modality_lut_sequence_is_applied() -> None:
    scan, frames = _frames("mlut_18.dcm")
    dataset = scan.dataset
    assert dataset is not None and "ModalityLUTSequence" in dataset
    np.testing.assert_allclose(frames[0].values, apply_modality_lut(scan.pixels[0], dataset))


def test_voi_lut_sequence_is_used_when_no_window() -> None:
    _, frames = _frames("vlut_04.dcm")
    frame = frames[0]
    assert frame.window_source == "voi_lut" and frame.voi_lut is not None
    lut = frame.voi_lut
    table = lut.table
    index = np.clip(frame.values - lut.first_mapped, 0, len(table) - 1).astype(int)
    expected = (table[index] - table.min()) / np.ptp(table)
    np.testing.assert_allclose(to_unit_range(frame), expected, atol=1e-6)
    # C.11.2.1.1: inputs below the first mapped value take the first entry's output.
    below = apply_voi_lut([lut.first_mapped - 10], lut)[0]
    assert below == pytest.approx((table[0] - table.min()) / np.ptp(table))


def test_enhanced_ct_uses_functional_group_window_and_rescale() -> None:
    scan, frames = _frames("eCT_Supplemental.dcm")
    dataset = scan.dataset
    assert dataset is not None
    shared = dataset.SharedFunctionalGroupsSequence[0]
    voi = shared.FrameVOILUTSequence[0]
    transform = shared.PixelValueTransformationSequence[0]
    assert len(frames) == 2
    assert frames[1].window_source == "header"
    assert frames[1].window.center == float(np.atleast_1d(voi.WindowCenter)[0])
    expected = scan.pixels[1] * float(transform.RescaleSlope) + float(transform.RescaleIntercept)
    np.testing.assert_allclose(frames[1].values, expected)


def test_multiframe_gives_one_frame_per_image() -> None:
    _, frames = _frames("emri_small.dcm")
    assert len(frames) == 10
    assert all(frame.values.shape == (64, 64) for frame in frames)
    assert not np.array_equal(frames[0].values, frames[5].values)


# --- colour --------------------------------------------------------------------------------


def test_rgb_ultrasound_displays_as_stored() -> None:
    scan, frames = _frames("US1_UNCR.dcm")
    assert frames[0].is_color
    np.testing.assert_array_equal(to_uint8(frames[0]), scan.pixels[0])


def test_ybr_jpeg_is_converted_to_rgb() -> None:
    scan, frames = _frames("SC_rgb_jpeg_dcmtk.dcm")
    assert scan.info.photometric_interpretation == "YBR_FULL"
    assert scan.decoded_photometric == "RGB"
    # The test image's top band is pure red (255, 0, 0) before lossy coding.
    red = to_uint8(frames[0])[2, 50]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


def test_palette_color_is_expanded() -> None:
    scan, frames = _frames("OT-PAL-8-face.dcm")
    assert frames[0].is_color and frames[0].values.shape == (480, 640, 3)
    display = to_uint8(frames[0])
    assert display.std() > 10 and not np.array_equal(display[..., 0], display[..., 2])


def test_16_bit_rgb_is_scaled_by_its_bit_depth() -> None:
    scan, frames = _frames("SC_rgb_16bit_2frame.dcm")
    assert len(frames) == 2
    np.testing.assert_allclose(model_input(frames[0]), scan.pixels[0] / 65535.0, atol=1e-6)


# --- PNG / JPEG ----------------------------------------------------------------------------


def test_png_grey_8_bit_is_shown_as_stored() -> None:
    grey = (np.arange(40 * 40).reshape(40, 40) % 256).astype(np.uint8)
    frame = scan_frames(_load(png_bytes(grey)))[0]
    np.testing.assert_array_equal(to_uint8(frame), grey)
    np.testing.assert_allclose(model_input(frame), grey / 255.0, atol=1e-6)


def test_png_rgba_is_composited_on_black() -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:2, ..., 3] = 255  # top half opaque, bottom half fully transparent
    frame = scan_frames(_load(png_bytes(rgba)))[0]
    display = to_uint8(frame)
    assert (display[:2] == 200).all() and (display[2:] == 0).all()


def test_png_16_bit_grey_is_windowed_by_percentiles() -> None:
    deep = (np.arange(64 * 64).reshape(64, 64) * 7 + 1000).astype(np.uint16)
    scan = _load(png_bytes(deep))
    frame = scan_frames(scan)[0]
    assert scan.info.bits_allocated == 16 and frame.window_source == "percentile"
    display = to_uint8(frame)
    assert display.min() == 0 and display.max() == 255


def test_png_palette_in_colour_and_1_bit() -> None:
    colour = Image.fromarray(np.tile(np.uint8([[0, 128, 255]]), (6, 2))).convert("P")
    colour.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    buffer = io.BytesIO()
    colour.save(buffer, format="PNG")
    frame = scan_frames(_load(buffer.getvalue()))[0]
    assert frame.is_color and frame.values.shape == (6, 6, 3)

    bilevel = Image.fromarray(np.eye(8, dtype=bool))
    buffer = io.BytesIO()
    bilevel.save(buffer, format="PNG")
    display = to_uint8(scan_frames(_load(buffer.getvalue()))[0])
    assert set(np.unique(display)) == {0, 255} and display[0, 0] == 255


def test_jpeg_frame_is_close_to_the_source() -> None:
    grey = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (32, 1))
    frame = scan_frames(_load(jpeg_bytes(grey)))[0]
    assert np.abs(to_uint8(frame).astype(int) - grey).mean() < 3


def test_model_input_is_float_unit_range_for_every_kind() -> None:
    inputs = [
        model_input(scan_frames(_load(pydicom_file_bytes(name)))[0])
        for name in ("CT_small.dcm", "RG1_UNCR.dcm", "US1_UNCR.dcm")
    ]
    for array in inputs:
        assert array.dtype == np.float32 and 0.0 <= array.min() and array.max() <= 1.0


def test_planar_configuration_does_not_change_the_image() -> None:
    # The same picture stored colour-by-plane (PS3.3 C.7.6.3.1.3 value 1) and by pixel (0).
    by_plane = _frames("color-pl.dcm")[1][0]
    by_pixel = _frames("color-px.dcm")[1][0]
    assert by_plane.is_color and by_plane.values.shape[-1] == 3
    np.testing.assert_array_equal(to_uint8(by_plane), to_uint8(by_pixel))


def test_a_long_series_is_prepared_one_frame_at_a_time():
    """A multi-frame scan is converted to floats frame by frame: preparing it never holds the
    whole series as float32 (the old list of frames did, several GB for a large series)."""
    import tracemalloc

    from diagnosis.frames import prepare_frames
    from tests import hostile_files as hostile

    frames, side = 12, 1024
    stored = np.random.default_rng(0).integers(0, 4096, (frames, side, side), dtype=np.uint16)
    data = hostile.dicom(
        Rows=side,
        Columns=side,
        NumberOfFrames=frames,
        BitsAllocated=16,
        BitsStored=12,
        HighBit=11,
        RescaleSlope=1,
        RescaleIntercept=-1024,
        WindowCenter=40,
        WindowWidth=400,
        PixelData=stored.tobytes(),
    )
    scan = load_upload(data, max_bytes=10**9, max_pixels=10**9)
    lazy = scan_frames(scan)
    assert len(lazy) == frames and lazy[-1].values.shape == (side, side)
    np.testing.assert_array_equal(lazy[3].values, stored[3].astype(np.float32) - 1024)
    tracemalloc.start()
    try:
        prepared = prepare_frames(lazy)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert prepared.frames == frames
    assert peak < frames * side * side * 4  # less than the series as float32
