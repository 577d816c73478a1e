"""pydicom decoder plugin: 12-bit JPEG Extended (Process 2 & 4) frames through GDCM.

pylibjpeg's libjpeg rejects common real-world 12-bit lossy JPEG (e.g. the NEMA WG04 *_JPLY
files: "scan start must be zero and scan stop must be 63"), Pillow has no 12-bit JPEG, and
pydicom's own GDCM plugin refuses 12-bit JPEG Extended outright. GDCM's bundled IJG 12-bit
libjpeg decodes these frames; it is used here for that one transfer syntax only. The module
follows pydicom's plugin contract (`is_available`, `DECODER_DEPENDENCIES`, a frame function).
GDCM's libjpeg writes "Unsupported JPEG data precision 12" to the process's stderr before its
12-bit retry succeeds; that line is noise, not a failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydicom import uid

if TYPE_CHECKING:
    from pydicom.pixels.decoders.base import DecodeRunner

try:
    import gdcm

    HAVE_GDCM = True
except Exception:  # ImportError, or gdcm.py's own AttributeError when a 'dl' dir is on sys.path
    HAVE_GDCM = False

PLUGIN_LABEL = "medai-gdcm-jpeg12"
DECODER_DEPENDENCIES = {uid.JPEGExtended12Bit: ("python-gdcm>=3.0.10",)}


def is_available(transfer_syntax: str) -> bool:
    """Return True when GDCM is importable and `transfer_syntax` is JPEG Extended."""
    return HAVE_GDCM and transfer_syntax == uid.JPEGExtended12Bit


def _decode_frame(src: bytes, runner: DecodeRunner) -> bytes:
    """Return one decoded JPEG Extended frame as bytes laid out as the runner expects."""
    if runner.bits_stored <= 8:
        # 8-bit JPEG Extended decodes fine with pylibjpeg/Pillow; stay out of their way.
        raise ValueError("only 12-bit JPEG Extended is routed to GDCM")
    fragment = gdcm.Fragment()
    fragment.SetByteStringValue(src)
    fragments = gdcm.SequenceOfFragments.New()
    fragments.AddFragment(fragment)
    element = gdcm.DataElement(gdcm.Tag(0x7FE0, 0x0010))
    element.SetValue(fragments.__ref__())

    image = gdcm.Image()
    image.SetNumberOfDimensions(2)
    image.SetDimensions((runner.columns, runner.rows, 1))
    image.SetDataElement(element)
    pi_type = gdcm.PhotometricInterpretation.GetPIType(str(runner.photometric_interpretation))
    image.SetPhotometricInterpretation(gdcm.PhotometricInterpretation(pi_type))
    if runner.samples_per_pixel > 1:
        image.SetPlanarConfiguration(runner.planar_configuration)
    image.SetTransferSyntax(gdcm.TransferSyntax(gdcm.TransferSyntax.JPEGExtendedProcess2_4))
    image.SetPixelFormat(
        gdcm.PixelFormat(
            runner.samples_per_pixel,
            runner.bits_allocated,
            runner.bits_stored,
            runner.bits_stored - 1,
            runner.pixel_representation,
        )
    )
    buffer = image.GetBuffer()
    if buffer is None:
        raise RuntimeError("GDCM could not decode the 12-bit JPEG Extended frame")
    # GDCM's SWIG binding hands char* back as str; undo that to get the raw bytes.
    frame = buffer.encode("utf-8", "surrogateescape")
    expected = (
        runner.rows * runner.columns * runner.samples_per_pixel * (runner.bits_allocated // 8)
    )
    if len(frame) != expected:
        raise RuntimeError(f"GDCM returned {len(frame)} bytes for a frame of {expected} bytes")
    return frame
