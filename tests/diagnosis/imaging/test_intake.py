"""Upload intake: type sniffing from content, size and pixel caps, and specific rejections."""

from __future__ import annotations

import io
import random
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, ImageFile
from pydicom.encaps import encapsulate
from pydicom.uid import UID

from diagnosis.imaging import dicom_intake, gdcm_jpeg12
from diagnosis.imaging.codestream import declared_size
from diagnosis.imaging.errors import RejectCode, ScanRejected
from diagnosis.imaging.intake import detect_kind, inspect_upload, load_upload
from tests.diagnosis.imaging.imaging_samples import (
    MAX_BYTES,
    MAX_PIXELS,
    jpeg_bytes,
    nema_files,
    png_bomb,
    png_bytes,
    pydicom_file_bytes,
    pydicom_file_path,
)

# The malformed inputs make pydicom warn (bad VR, missing delimiter...) before we reject them.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:pydicom")


def _reject(source: object, **limits: int) -> ScanRejected:
    """Run inspect_upload expecting a rejection, and return it."""
    with pytest.raises(ScanRejected) as caught:
        inspect_upload(
            source,  # type: ignore[arg-type]
            max_bytes=limits.get("max_bytes", MAX_BYTES),
            max_pixels=limits.get("max_pixels", MAX_PIXELS),
        )
    assert caught.value.message.strip(), "every rejection carries a message for the doctor"
    return caught.value


def _dicom_bytes(dataset: pydicom.Dataset, **write: object) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, **write)
    return buffer.getvalue()


# --- sniffing from content -----------------------------------------------------------------


def test_png_renamed_dcm_is_detected_as_png(tmp_path: Path) -> None:
    grey = (np.arange(32 * 48).reshape(32, 48) % 256).astype(np.uint8)
    path = tmp_path / "chest.dcm"
    path.write_bytes(png_bytes(grey))
    info = inspect_upload(path, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    assert (info.kind, info.rows, info.cols, info.photometric_interpretation) == (
        "png",
        32,
        48,
        "MONOCHROME2",
    )


def test_text_file_renamed_dcm_is_rejected_as_text(tmp_path: Path) -> None:
    path = tmp_path / "scan.dcm"
    path.write_text("Patient: John Smith\nCT head, no contrast. Findings: normal.\n")
    error = _reject(path)
    assert error.code is RejectCode.TEXT_FILE
    assert "plain text" in error.message


def test_random_bytes_are_rejected() -> None:
    data = random.Random(1234).randbytes(8192)
    error = _reject(data)
    assert error.code in (RejectCode.UNKNOWN_FORMAT, RejectCode.NOT_DICOM)


def test_random_bytes_that_start_like_a_dicom_element_are_not_dicom() -> None:
    # (0008,0005) CS length 10 then noise: the prefix is plausible, the content is not.
    data = b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 100" + random.Random(7).randbytes(4000)
    assert detect_kind(data) == "dicom"  # sniffed as a candidate...
    error = _reject(data)
    assert error.code is RejectCode.NOT_DICOM  # ...but refused for lacking real elements


def test_random_bytes_with_dicm_marker_are_rejected() -> None:
    rng = random.Random(99)
    data = rng.randbytes(128) + b"DICM" + rng.randbytes(2000)
    error = _reject(data)
    assert error.code in (RejectCode.MISSING_META, RejectCode.CORRUPT, RejectCode.NOT_DICOM)


@pytest.mark.parametrize(
    ("prefix", "named"),
    [(b"%PDF-1.7\n", "PDF"), (b"PK\x03\x04", "ZIP"), (b"GIF89a", "GIF"), (b"II*\x00", "TIFF")],
)
def test_other_formats_are_named(prefix: bytes, named: str) -> None:
    error = _reject(prefix + bytes(200))
    assert error.code is RejectCode.UNKNOWN_FORMAT
    assert named in error.message


def test_empty_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert _reject(path).code is RejectCode.EMPTY


def test_size_cap_is_checked_before_reading_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.dcm"
    path.write_bytes(bytes(5000))
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read an over-size file"))
    error = _reject(path, max_bytes=4096)
    assert error.code is RejectCode.TOO_LARGE
    assert "upload limit" in error.message


# --- PNG / JPEG ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "mode", "samples", "photometric", "bits"),
    [
        (np.full((20, 30), 7, np.uint8), "L", 1, "MONOCHROME2", 8),
        (np.tile(np.uint8([10, 20, 30]), (20, 30, 1)), "RGB", 3, "RGB", 8),
        (np.tile(np.uint8([10, 20, 30, 255]), (20, 30, 1)), "RGBA", 3, "RGB", 8),
        (np.arange(600, dtype=np.uint16).reshape(20, 30) * 50, "I;16", 1, "MONOCHROME2", 16),
    ],
)
def test_good_png_variants(
    tmp_path: Path, array: np.ndarray, mode: str, samples: int, photometric: str, bits: int
) -> None:
    path = tmp_path / "image.bin"
    path.write_bytes(png_bytes(array))
    scan = load_upload(path, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    info = scan.info
    assert (info.kind, info.rows, info.cols, info.frames) == ("png", 20, 30, 1)
    assert (info.samples_per_pixel, info.photometric_interpretation) == (samples, photometric)
    assert info.bits_allocated == bits and info.source_mode == mode and info.lossy is False
    assert scan.pixels.shape[:3] == (1, 20, 30)


def test_palette_png_with_grey_palette_is_grey() -> None:
    image = Image.fromarray((np.arange(400).reshape(20, 20) % 256).astype(np.uint8)).convert(
        "P", palette=Image.Palette.ADAPTIVE
    )
    grey_palette = [value for level in range(256) for value in (level, level, level)]
    image.putpalette(grey_palette)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    info = inspect_upload(buffer.getvalue(), max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    assert (info.source_mode, info.photometric_interpretation) == ("P", "MONOCHROME2")


def test_good_jpeg_grey_and_colour() -> None:
    grey = (np.arange(64 * 40).reshape(40, 64) % 200).astype(np.uint8)
    info = inspect_upload(jpeg_bytes(grey), max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    assert (info.kind, info.rows, info.cols, info.samples_per_pixel) == ("jpeg", 40, 64, 1)
    assert info.lossy is True
    colour = np.dstack([grey, grey[::-1], 255 - grey])
    info = inspect_upload(jpeg_bytes(colour), max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    assert (info.samples_per_pixel, info.photometric_interpretation) == (3, "RGB")


def test_truncated_png_and_jpeg_are_rejected_as_truncated() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    for data, label in ((png_bytes(noise), "PNG"), (jpeg_bytes(noise), "JPEG")):
        error = _reject(data[: len(data) // 2])
        assert error.code is RejectCode.TRUNCATED, label
        assert label in error.message and "incomplete" in error.message


def test_animated_png_is_rejected() -> None:
    frames = [Image.fromarray(np.full((8, 8), level, np.uint8)) for level in (0, 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="PNG", save_all=True, append_images=frames[1:])
    assert _reject(buffer.getvalue()).code is RejectCode.ANIMATED


def test_png_decompression_bomb_is_rejected_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A genuine zip bomb: ~100 KB that would inflate to 10,000 x 10,000 pixels.
    bomb = png_bomb(10_000, 10_000)
    assert len(bomb) < 200_000
    monkeypatch.setattr(
        ImageFile.ImageFile, "load", lambda self: pytest.fail("pixel data was decoded")
    )
    # Refused from the header: the patched loader above fails the test if pixels are decoded.
    error = _reject(bomb, max_pixels=MAX_PIXELS)
    assert error.code is RejectCode.TOO_MANY_PIXELS
    assert "10,000 x 10,000" in error.message and "50,000,000" in error.message


def test_pillow_decompression_bomb_error_is_mapped() -> None:
    # The header claims 100,000 x 100,000: above Pillow's own hard limit even when the
    # caller's cap is generous, so Pillow's DecompressionBombError must become a rejection.
    bomb = png_bomb(100_000, 100_000, rows_to_encode=2)
    error = _reject(bomb, max_pixels=10**12)
    assert error.code is RejectCode.TOO_MANY_PIXELS
    assert "100,000 x 100,000" in error.message and "decoder's own limit" in error.message
    assert error.detail is not None and "DecompressionBomb" in error.detail


def test_jpeg_pixel_cap_uses_the_header() -> None:
    data = jpeg_bytes(np.zeros((300, 400), np.uint8))
    error = _reject(data, max_pixels=100_000)
    assert error.code is RejectCode.TOO_MANY_PIXELS and "400 x 300" in error.message


# --- DICOM: good files from pydicom's test data, read offline -------------------------------


@pytest.mark.parametrize(
    ("name", "modality", "shape", "frames", "syntax"),
    [
        ("CT_small.dcm", "CT", (128, 128), 1, "1.2.840.10008.1.2.1"),
        ("MR_small.dcm", "MR", (64, 64), 1, "1.2.840.10008.1.2.1"),
        ("emri_small.dcm", "MR", (64, 64), 10, "1.2.840.10008.1.2.1"),
        ("US1_UNCR.dcm", "US", (480, 640, 3), 1, "1.2.840.10008.1.2.1"),
        ("SC_rgb_jpeg_dcmtk.dcm", "OT", (100, 100, 3), 1, "1.2.840.10008.1.2.4.50"),
        ("JPEG-lossy.dcm", "NM", (1024, 256), 1, "1.2.840.10008.1.2.4.51"),
        ("MR_small_jp2klossless.dcm", "MR", (64, 64), 1, "1.2.840.10008.1.2.4.90"),
        ("JPEGLSNearLossless_16.dcm", None, (50, 10), 1, "1.2.840.10008.1.2.4.81"),
        ("MR_small_RLE.dcm", "MR", (64, 64), 1, "1.2.840.10008.1.2.5"),
        ("image_dfl.dcm", "OT", (512, 512), 1, "1.2.840.10008.1.2.1.99"),
        ("MR_small_bigendian.dcm", "MR", (64, 64), 1, "1.2.840.10008.1.2.2"),
        ("color3d_jpeg_baseline.dcm", "US", (480, 640, 3), 120, "1.2.840.10008.1.2.4.50"),
    ],
)
def test_pydicom_test_files_are_accepted(
    name: str, modality: str | None, shape: tuple[int, ...], frames: int, syntax: str
) -> None:
    if name == "JPEG-lossy.dcm" and not gdcm_jpeg12.HAVE_GDCM:
        # 12-bit JPEG Extended needs python-gdcm; without it the syntax is named instead.
        error = _reject(pydicom_file_path(name))
        assert error.code is RejectCode.DECODE_FAILED
        assert "JPEG Extended (Process 2 and 4) (1.2.840.10008.1.2.4.51)" in error.message
        return
    scan = load_upload(pydicom_file_path(name), max_bytes=MAX_BYTES, max_pixels=200_000_000)
    info = scan.info
    assert info.kind == "dicom" and info.modality == modality
    assert (info.rows, info.cols) == shape[:2] and info.frames == frames
    assert info.transfer_syntax_uid == syntax
    assert info.transfer_syntax_name == UID(syntax).name
    assert scan.pixels.shape == (frames, *shape)


def test_dicom_without_preamble_or_meta_is_accepted(tmp_path: Path) -> None:
    # OT-PAL-8-face.dcm is a bare implicit-VR data set (no preamble, no 'DICM').
    data = pydicom_file_bytes("OT-PAL-8-face.dcm")
    assert data[128:132] != b"DICM"
    info = inspect_upload(data, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    assert (info.kind, info.photometric_interpretation) == ("dicom", "PALETTE COLOR")
    assert info.transfer_syntax_uid == pydicom.uid.ImplicitVRLittleEndian

    dataset = pydicom.dcmread(pydicom_file_path("CT_small.dcm"))
    del dataset.file_meta
    dataset.preamble = None
    bare = _dicom_bytes(dataset, implicit_vr=True, little_endian=True, enforce_file_format=False)
    path = tmp_path / "no_extension"
    path.write_bytes(bare)
    info = inspect_upload(path, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
    assert (info.kind, info.modality, info.rows) == ("dicom", "CT", 128)


def test_display_attributes_are_safe_and_present() -> None:
    info = inspect_upload(pydicom_file_bytes("CT_small.dcm"), max_bytes=MAX_BYTES, max_pixels=10**7)
    assert info.display["pixel_spacing_mm"] == "0.661468\\0.661468"
    joined = " ".join(info.display.values())
    dataset = pydicom.dcmread(pydicom_file_path("CT_small.dcm"))
    for identifying in (str(dataset.PatientName), dataset.PatientID, dataset.StudyDate):
        assert identifying not in joined
    assert info.sop_class_name == "CT Image Storage"


# --- DICOM: malformed and non-image files ---------------------------------------------------


def test_ecg_waveform_without_pixel_data_is_rejected() -> None:
    error = _reject(pydicom_file_bytes("waveform_ecg.dcm"))
    assert error.code is RejectCode.NO_PIXEL_DATA
    assert "12-lead ECG Waveform Storage" in error.message and "no image" in error.message


@pytest.mark.parametrize(
    ("name", "code", "phrases"),
    [
        ("no_meta.dcm", RejectCode.NOT_DICOM, ("no DICOM header",)),
        ("rtplan_truncated.dcm", RejectCode.TRUNCATED, ("incomplete", "Beam Sequence (300A,00B0)")),
        ("MR_truncated.dcm", RejectCode.TRUNCATED, ("incomplete", "Pixel Data (7FE0,0010)")),
        (
            "emri_small_jpeg_2k_lossless_too_short.dcm",
            RejectCode.TRUNCATED,
            ("incomplete", "end marker"),
        ),
        ("badVR.dcm", RejectCode.INVALID_ATTRIBUTE, ("Number of Frames (0028,0008)", "'1A'")),
        ("meta_missing_tsyntax.dcm", RejectCode.MISSING_META, ("Transfer Syntax UID (0002,0010)",)),
        ("no_meta_group_length.dcm", RejectCode.NO_PIXEL_DATA, ("no image pixel data",)),
        ("ExplVR_LitEndNoMeta.dcm", RejectCode.NO_PIXEL_DATA, ("RT Ion Plan Storage",)),
        (
            "JPEG2000-embedded-sequence-delimiter.dcm",
            RejectCode.TOO_MANY_PIXELS,
            ("compressed frame declares", "header says 256 x 1,024"),
        ),
    ],
)
def test_malformed_pydicom_files_get_specific_messages(
    name: str, code: RejectCode, phrases: tuple[str, ...]
) -> None:
    error = _reject(pydicom_file_bytes(name))
    assert error.code is code, error.message
    for phrase in phrases:
        assert phrase in error.message


def test_messages_differ_between_malformations() -> None:
    names = ("no_meta.dcm", "rtplan_truncated.dcm", "badVR.dcm", "meta_missing_tsyntax.dcm")
    messages = {_reject(pydicom_file_bytes(name)).message for name in names}
    assert len(messages) == len(names)


def test_dicom_pixel_cap_is_checked_before_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    files = [path for path in nema_files() if path.name == "CT1_J2KR"]
    if not files:
        pytest.skip("NEMA WG04 files are not mounted")
    monkeypatch.setattr(dicom_intake, "_decode", lambda *args: pytest.fail("decoded"))
    error = _reject(files[0], max_pixels=100_000)
    assert error.code is RejectCode.TOO_MANY_PIXELS
    assert "512 x 512 pixels x 1 frame(s) x 1 sample(s) = 262,144" in error.message


def test_frame_count_counts_towards_the_cap() -> None:
    error = _reject(pydicom_file_bytes("emri_small.dcm"), max_pixels=64 * 64 * 9)
    assert error.code is RejectCode.TOO_MANY_PIXELS and "10 frame(s)" in error.message


def _ct_small_with_syntax(syntax: str) -> bytes:
    """CT_small with encapsulated pixel data labelled with `syntax` (24 bytes padded)."""
    placeholder = "1.2.840.10008.1.2.4.100"  # MPEG2: a syntax pydicom will write
    dataset = pydicom.dcmread(pydicom_file_path("CT_small.dcm"))
    dataset.PixelData = encapsulate([bytes(dataset.PixelData)])
    dataset["PixelData"].VR = "OB"
    dataset.file_meta.TransferSyntaxUID = UID(placeholder)
    data = _dicom_bytes(dataset, implicit_vr=False, little_endian=True)
    # pydicom refuses to write syntaxes newer than its dictionary; patch the meta in place.
    padded = syntax.encode() + b"\x00" * (len(syntax) % 2)
    assert len(padded) == 24
    return data.replace(placeholder.encode() + b"\x00", padded, 1)


@pytest.mark.parametrize(
    ("syntax", "name"),
    [
        ("1.2.840.10008.1.2.4.112", "JPEG XL"),
        ("1.2.840.10008.1.2.4.107", "HEVC/H.265 Main Profile / Level 5.1"),
        ("1.2.840.10008.1.2.4.100", "MPEG2 Main Profile / Main Level"),
        ("1.2.826.0.1.3680043.99.1", "an unrecognised transfer syntax"),
    ],
)
def test_undecodable_transfer_syntax_is_named(syntax: str, name: str) -> None:
    error = _reject(_ct_small_with_syntax(syntax))
    assert error.code is RejectCode.UNSUPPORTED_TRANSFER_SYNTAX
    assert f"The pixel data uses {name} ({syntax}), which this server cannot decode" in (
        error.message
    )


def test_damaged_compressed_frame_names_the_transfer_syntax() -> None:
    dataset = pydicom.dcmread(pydicom_file_path("MR_small_jp2klossless.dcm"))
    frame = next(pydicom.encaps.generate_frames(dataset.PixelData, number_of_frames=1))
    dataset.PixelData = encapsulate([frame[:120] + bytes(len(frame) - 120)])
    error = _reject(_dicom_bytes(dataset))
    assert error.code is RejectCode.DECODE_FAILED
    assert "JPEG 2000 Image Compression (Lossless Only) (1.2.840.10008.1.2.4.90)" in error.message


def test_deflate_bomb_is_rejected_before_pydicom_inflates_it() -> None:
    dataset = pydicom.dcmread(pydicom_file_path("CT_small.dcm"))
    dataset.add_new(0x00091010, "OB", bytes(40 * 1024 * 1024))  # 40 MiB of zeros
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    data = _dicom_bytes(dataset)
    assert len(data) < 200_000
    error = _reject(data, max_pixels=128 * 128)
    assert error.code is RejectCode.TOO_MANY_PIXELS and "deflate" in error.message


# --- codestream headers --------------------------------------------------------------------


def test_declared_size_reads_jpeg_and_j2k_headers() -> None:
    jpeg = jpeg_bytes(np.zeros((37, 53), np.uint8))
    assert declared_size(jpeg) == (37, 53)
    # SOC, SIZ: Lsiz Rsiz Xsiz=300 Ysiz=200 XOsiz=10 YOsiz=0 -> 200 rows x 290 columns.
    siz = b"\xff\x4f\xff\x51" + bytes.fromhex("0029 0000 0000012c 000000c8 0000000a 00000000")
    assert declared_size(siz) == (200, 290)
    assert declared_size(b"\x00" * 64) is None
