"""Sending DICOM objects to a PACS: C-STORE as a service class user (pynetdicom) or a
DICOMweb STOW-RS request (a multipart/related POST with urllib). No Django: the caller gives
addresses, credentials and datasets, and gets SendFailed with a message for people (and
whether trying again later may help)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

# PS3.4 Annex B.2.3: Success, and the warnings that still store the object.
STORED = {0x0000, 0xB000, 0xB006, 0xB007}


class SendFailed(Exception):
    """The objects did not all reach the PACS; ``transient``: a network failure or a busy
    archive, worth another try."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.message = message
        self.transient = transient


@dataclass(frozen=True)
class StowAuth:
    """No credentials, a bearer token, or a user name and password (basic)."""

    kind: str = "none"  # none | bearer | basic
    username: str = ""
    secret: str = ""

    def header(self) -> str:
        if self.kind == "bearer" and self.secret:
            return f"Bearer {self.secret}"
        if self.kind == "basic":
            token = base64.b64encode(f"{self.username}:{self.secret}".encode()).decode()
            return f"Basic {token}"
        return ""


def cstore_send(
    *,
    datasets: Sequence[Dataset],
    host: str,
    port: int,
    called_ae: str,
    calling_ae: str,
    timeout: float,
) -> None:
    """C-STORE every dataset to ``called_ae`` at ``host``:``port`` in one association."""
    ae = AE(ae_title=calling_ae or "MEDAI")
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = timeout
    for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    assoc = ae.associate(host, port, ae_title=called_ae)
    if not assoc.is_established:
        reason = "rejected the association" if assoc.is_rejected else "could not be reached"
        raise SendFailed(f"{called_ae} at {host}:{port} {reason}.", transient=not assoc.is_rejected)
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            if "Status" not in status:
                raise SendFailed(
                    f"{called_ae} at {host}:{port} did not answer the C-STORE (connection "
                    "lost or timed out).",
                    transient=True,
                )
            code = int(status.Status)
            if code not in STORED:
                raise SendFailed(
                    f"{called_ae} refused the {ds.Modality} object with status 0x{code:04X}.",
                    # A7xx: out of resources, which passes.
                    transient=(code & 0xFF00) == 0xA700,
                )
    finally:
        if assoc.is_established:
            assoc.release()


def stow_body(parts: Sequence[bytes]) -> tuple[bytes, str]:
    """A multipart/related body of DICOM Part 10 files (PS3.18 10.5) and its Content-Type."""
    boundary = f"medai-{uuid.uuid4().hex}"
    chunks = []
    for part in parts:
        chunks.append(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        chunks.append(part)
        chunks.append(b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    ctype = f'multipart/related; type="application/dicom"; boundary={boundary}'
    return b"".join(chunks), ctype


def _failed_instances(body: bytes) -> int:
    """How many instances a STOW-RS response lists as failed (Failed SOP Sequence)."""
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return 0
    failed = answer.get("00081198", {}) if isinstance(answer, dict) else {}
    return len(failed.get("Value", []) or []) if isinstance(failed, dict) else 0


def stow_send(*, parts: Sequence[bytes], url: str, auth: StowAuth, timeout: float) -> None:
    """POST the Part 10 files to the STOW-RS ``url`` in one request."""
    if not url.lower().startswith(("http://", "https://")):
        raise SendFailed("The STOW-RS URL must start with http:// or https://.", transient=False)
    body, ctype = stow_body(parts)
    # The scheme is checked above: never file: or a custom one.
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310
    request.add_header("Content-Type", ctype)
    request.add_header("Accept", "application/dicom+json")
    if header := auth.header():
        request.add_header("Authorization", header)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer = response.read()
    except urllib.error.HTTPError as exc:
        transient = exc.code >= 500 or exc.code in (408, 429)
        raise SendFailed(
            f"The STOW-RS service answered HTTP {exc.code} ({exc.reason}).", transient=transient
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SendFailed(
            f"The STOW-RS service could not be reached ({reason}).", transient=True
        ) from None
    failed = _failed_instances(answer)
    if failed:
        raise SendFailed(
            f"The STOW-RS service refused {failed} of {len(parts)} object(s).", transient=False
        )
