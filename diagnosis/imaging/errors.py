"""The one exception the imaging intake raises for inputs it will not accept."""

from __future__ import annotations

from enum import StrEnum


class RejectCode(StrEnum):
    """Stable machine-readable reasons; the upload page may switch on them, logs group by them."""

    EMPTY = "empty"
    TOO_LARGE = "too_large"
    UNKNOWN_FORMAT = "unknown_format"
    TEXT_FILE = "text_file"
    TOO_MANY_PIXELS = "too_many_pixels"
    TRUNCATED = "truncated"
    CORRUPT = "corrupt"
    ANIMATED = "animated"
    NOT_DICOM = "not_dicom"
    MISSING_META = "missing_meta"
    INVALID_ATTRIBUTE = "invalid_attribute"
    NO_PIXEL_DATA = "no_pixel_data"
    UNSUPPORTED_IMAGE = "unsupported_image"
    UNSUPPORTED_TRANSFER_SYNTAX = "unsupported_transfer_syntax"
    DECODE_FAILED = "decode_failed"
    BURNED_IN_ANNOTATION = "burned_in_annotation"


class ScanRejected(Exception):
    """An upload the intake refuses: `message` is for the doctor, `detail` only for the logs."""

    def __init__(self, code: RejectCode, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # Decoder tracebacks and library wording stay out of the doctor's message but are kept
        # for the engineer reading the log.
        self.detail = detail

    def __repr__(self) -> str:
        return f"ScanRejected({self.code.value!r}, {self.message!r})"
