"""DICOMweb STOW-RS (PS3.18 §10.5) on the wire: the ``multipart/related`` request body split
into parts as it streams (each part spooled to its own temporary file, so memory is bounded by
the chunk size, not the study), what each part says it is, and the Store Instances Response
Module (PS3.18 Table 10.5.3-3) in the DICOM JSON model (PS3.18 Annex F)."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from typing import IO, Any

import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

# PS3.4 Table B.2-1 / PS3.18 Table 10.5.3-4: the Failure Reason (0008,1197) values we use.
OUT_OF_RESOURCES = 0xA700
DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000
PROCESSING_FAILURE = 0x0110
SOP_CLASS_NOT_SUPPORTED = 0x0122

CHUNK = 1 << 16
MAX_PART_HEADER_BYTES = 16 * 1024
MAX_BOUNDARY = 200
_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


class MultipartInvalid(ValueError):
    """The request body is not a well-formed multipart/related body (HTTP 400)."""


class MultipartTooLarge(ValueError):
    """The request body has more parts or bytes than one request may (HTTP 413)."""


@dataclass(frozen=True)
class StowContentType:
    """The parts of a STOW-RS Content-Type header MedAI acts on."""

    boundary: str


def stow_content_type(header: str) -> StowContentType | str:
    """The boundary of a ``multipart/related; type="application/dicom"`` Content-Type, or
    the reason the header names another media type (HTTP 415). MultipartInvalid when it is
    multipart/related without a usable boundary (HTTP 400)."""
    message = Message()
    message["Content-Type"] = header or ""
    media_type = message.get_content_type()
    if media_type != "multipart/related" or not header:
        return (
            "STOW-RS takes 'multipart/related; type=\"application/dicom\"' bodies; "
            f"this request is {media_type if header else 'without a Content-Type'}."
        )
    raw_type = message.get_param("type")
    part_type = (raw_type if isinstance(raw_type, str) else "application/dicom").strip().lower()
    if part_type != "application/dicom":
        return (
            "This server stores Part 10 DICOM files only: the multipart/related body's type "
            f"must be application/dicom, not {part_type}."
        )
    boundary = message.get_param("boundary")
    # RFC 2046 allows 70 characters; Orthanc's DICOMweb client sends 73, so be lenient.
    if not isinstance(boundary, str) or not 0 < len(boundary) <= MAX_BOUNDARY:
        raise MultipartInvalid(
            f"The Content-Type names no multipart boundary (1-{MAX_BOUNDARY} characters)."
        )
    return StowContentType(boundary=boundary)


@dataclass
class Part:
    """One body part: its Content-Type and its bytes, spooled to a temporary file."""

    content_type: str
    file: IO[bytes]
    size: int = 0


@dataclass
class _Splitter:
    read: Callable[[int], bytes]
    delimiter: bytes
    max_parts: int
    max_part_bytes: int
    buffer: bytes = b""
    eof: bool = False
    parts: list[Part] = field(default_factory=list)

    def fill(self) -> bool:
        if self.eof:
            return False
        chunk = self.read(CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buffer += chunk
        return True

    def skip_preamble(self) -> None:
        # The first delimiter may open the body or follow a preamble's CRLF.
        while True:
            if self.buffer.startswith(self.delimiter):
                self.buffer = self.buffer[len(self.delimiter) :]
                return
            at = self.buffer.find(b"\r\n" + self.delimiter)
            if at >= 0:
                self.buffer = self.buffer[at + 2 + len(self.delimiter) :]
                return
            # Keep only what could still begin a delimiter.
            self.buffer = self.buffer[-(len(self.delimiter) + 1) :]
            if not self.fill():
                raise MultipartInvalid("The body holds no part: its boundary never occurs.")

    def after_delimiter(self) -> bool:
        """True when another part follows, False at the closing delimiter."""
        while len(self.buffer) < 2 and self.fill():
            pass
        if self.buffer.startswith(b"--"):
            return False
        # Transport padding (spaces, tabs) may follow a delimiter before its CRLF.
        while b"\r\n" not in self.buffer[:1024] and len(self.buffer) < 1024 and self.fill():
            pass
        line, sep, rest = self.buffer.partition(b"\r\n")
        if not sep or line.strip(b" \t"):
            raise MultipartInvalid("A multipart boundary line is malformed.")
        self.buffer = rest
        return True

    def headers(self) -> str:
        while True:
            if self.buffer.startswith(b"\r\n"):
                # A part without headers: its content type is the body's type parameter.
                self.buffer = self.buffer[2:]
                return ""
            end = self.buffer.find(b"\r\n\r\n")
            if end >= 0:
                raw, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
                return raw.decode("latin-1")
            if len(self.buffer) > MAX_PART_HEADER_BYTES:
                raise MultipartInvalid("A part's headers are too long.")
            if not self.fill():
                raise MultipartInvalid("The body ends inside a part's headers.")

    def content(self, target: IO[bytes]) -> int:
        separator = b"\r\n" + self.delimiter
        size = 0
        while True:
            at = self.buffer.find(separator)
            if at >= 0:
                size += self._write(target, self.buffer[:at], size)
                self.buffer = self.buffer[at + len(separator) :]
                return size
            # Everything but a possible beginning of the separator is content.
            keep = len(separator) - 1
            if len(self.buffer) > keep:
                size += self._write(target, self.buffer[:-keep], size)
                self.buffer = self.buffer[-keep:]
            if not self.fill():
                raise MultipartInvalid(
                    "The body ends inside a part: the closing boundary is missing."
                )

    def _write(self, target: IO[bytes], data: bytes, size: int) -> int:
        if size + len(data) > self.max_part_bytes:
            raise MultipartTooLarge(
                f"A part is larger than this server's {self.max_part_bytes >> 20:,} MB limit "
                "for one file."
            )
        target.write(data)
        return len(data)

    def run(self) -> list[Part]:
        self.skip_preamble()
        while self.after_delimiter():
            if len(self.parts) >= self.max_parts:
                raise MultipartTooLarge(f"At most {self.max_parts} instances per request.")
            message = Message()
            for line in self.headers().split("\r\n"):
                name, colon, value = line.partition(":")
                if colon:
                    message[name.strip()] = value.strip()
            target = tempfile.TemporaryFile(prefix="medai-stow-")
            part = Part(content_type=message.get_content_type(), file=target)
            self.parts.append(part)
            if "content-type" not in message:
                part.content_type = "application/dicom"
            part.size = self.content(target)
            target.seek(0)
        return self.parts


def multipart_split(
    read: Callable[[int], bytes], *, boundary: str, max_parts: int, max_part_bytes: int
) -> list[Part]:
    """The parts of a multipart body read through ``read`` (each in its own temporary file,
    rewound). MultipartInvalid when the body is malformed, MultipartTooLarge past the caps;
    either way the files spooled so far are closed."""
    splitter = _Splitter(
        read=read,
        delimiter=b"--" + boundary.encode("latin-1"),
        max_parts=max_parts,
        max_part_bytes=max_part_bytes,
    )
    try:
        return splitter.run()
    except BaseException:
        for part in splitter.parts:
            part.file.close()
        raise


@dataclass(frozen=True)
class PartHeader:
    """What a Part 10 file says it is, read from its header (pixels not read)."""

    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str


def part_header(file: IO[bytes]) -> PartHeader | None:
    """The SOP class, SOP instance and study UIDs of a Part 10 DICOM file, or None when it is
    not one (no preamble and ``DICM``, or unreadable). Rewinds the file."""
    file.seek(0)
    try:
        dataset = pydicom.dcmread(
            file,
            stop_before_pixels=True,
            specific_tags=["SOPClassUID", "SOPInstanceUID", "StudyInstanceUID"],
        )
        header = PartHeader(
            sop_class_uid=_uid(dataset.get("SOPClassUID"))
            or _uid(dataset.file_meta.get("MediaStorageSOPClassUID")),
            sop_instance_uid=_uid(dataset.get("SOPInstanceUID"))
            or _uid(dataset.file_meta.get("MediaStorageSOPInstanceUID")),
            study_uid=_uid(dataset.get("StudyInstanceUID")),
        )
    except (InvalidDicomError, RecursionError):
        return None
    except Exception:  # pydicom fails on a hostile header in many ways; any one: not readable
        return None
    finally:
        file.seek(0)
    return header


def _uid(value: Any) -> str:
    text = str(value or "").strip().rstrip("\x00")
    return text if len(text) <= 64 and _UID.fullmatch(text) else ""


def is_image_storage(sop_class_uid: str) -> bool:
    """Whether a SOP class is an image storage class (the only kind the intake classifies)."""
    return "Image Storage" in UID(sop_class_uid).name


def valid_uid(text: str) -> bool:
    """Whether ``text`` is a well-formed DICOM UID (digits and dots, at most 64 characters)."""
    return len(text) <= 64 and bool(_UID.fullmatch(text))


@dataclass(frozen=True)
class InstanceOutcome:
    """One instance in the response: the UIDs the sender sent, and a failure reason or 0."""

    sop_class_uid: str
    sop_instance_uid: str
    failure: int = 0


def store_response(outcomes: list[InstanceOutcome]) -> dict[str, Any]:
    """The Store Instances Response Module in DICOM JSON: Referenced SOP Sequence
    (0008,1199) for the instances stored, Failed SOP Sequence (0008,1198) with each Failure
    Reason (0008,1197) for the others. No Retrieve URL: MedAI keeps de-identified copies
    under other UIDs and serves no WADO-RS."""
    referenced = [_item(o) for o in outcomes if not o.failure]
    failed = [
        {**_item(o), "00081197": {"vr": "US", "Value": [o.failure]}} for o in outcomes if o.failure
    ]
    response: dict[str, Any] = {}
    if failed:
        response["00081198"] = {"vr": "SQ", "Value": failed}
    response["00081199"] = {"vr": "SQ", "Value": referenced} if referenced else {"vr": "SQ"}
    return response


def _item(outcome: InstanceOutcome) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if outcome.sop_class_uid:
        item["00081150"] = {"vr": "UI", "Value": [outcome.sop_class_uid]}
    if outcome.sop_instance_uid:
        item["00081155"] = {"vr": "UI", "Value": [outcome.sop_instance_uid]}
    return item
