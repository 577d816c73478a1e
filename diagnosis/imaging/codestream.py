"""Read the image size a compressed frame declares, without decoding it.

A DICOM header can say 512 x 512 while the JPEG or JPEG 2000 codestream inside declares
100000 x 100000; decoders allocate from the codestream, so the pixel cap must look there too.
"""

from __future__ import annotations

import struct

# ITU-T T.81 Table B.1: start-of-frame markers (SOF0-SOF15 minus DHT C4, JPG C8, DAC CC), and
# ITU-T T.87 (JPEG-LS) SOF55 = FFF7, which uses the same frame header layout.
_SOF_MARKERS = frozenset({*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC} | {0xF7})
# T.81 B.1.1.3: markers that stand alone, with no length field after them.
_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD9)})
_SOS = 0xDA
# ISO/IEC 15444-1 A.4.1 / A.5.1: SOC (FF4F) is followed directly by the SIZ segment (FF51).
_J2K_SOC_SIZ = b"\xff\x4f\xff\x51"
# How far into a frame to look for the J2K header: JP2-wrapped codestreams (not conforming in
# DICOM, but seen) put boxes first; real headers are always within the first few hundred bytes.
_J2K_SEARCH_LIMIT = 64 * 1024


def declared_size(frame: bytes) -> tuple[int, int] | None:
    """Return (rows, columns) declared by a JPEG, JPEG-LS or JPEG 2000 frame header, else None."""
    if frame[:2] == b"\xff\xd8":
        return _jpeg_size(frame)
    position = frame.find(_J2K_SOC_SIZ, 0, _J2K_SEARCH_LIMIT)
    if position >= 0:
        return _j2k_size(frame, position + 4)
    return None


def _jpeg_size(frame: bytes) -> tuple[int, int] | None:
    """Walk T.81 marker segments up to the frame header (or the first scan)."""
    index = 2
    end = len(frame)
    while index + 4 <= end:
        if frame[index] != 0xFF:
            return None
        marker = frame[index + 1]
        if marker == 0xFF:  # T.81 B.1.1.2: fill bytes before a marker
            index += 1
            continue
        if marker in _STANDALONE_MARKERS:
            index += 2
            continue
        (length,) = struct.unpack(">H", frame[index + 2 : index + 4])
        if marker in _SOF_MARKERS:
            # T.81 B.2.2: Lf(16) P(8) Y(16) X(16); Y may be 0 when a DNL segment follows.
            if index + 9 > end:
                return None
            rows, columns = struct.unpack(">HH", frame[index + 5 : index + 9])
            return rows, columns
        if marker == _SOS:
            return None
        index += 2 + length
    return None


def _j2k_size(frame: bytes, siz_offset: int) -> tuple[int, int] | None:
    """Read ISO/IEC 15444-1 A.5.1 SIZ: Lsiz Rsiz Xsiz Ysiz XOsiz YOsiz (image area = X - XO)."""
    fields = frame[siz_offset : siz_offset + 20]
    if len(fields) < 20:
        return None
    _lsiz, _rsiz, xsiz, ysiz, xosiz, yosiz = struct.unpack(">HHIIII", fields)
    if xosiz > xsiz or yosiz > ysiz:
        return None
    return ysiz - yosiz, xsiz - xosiz
