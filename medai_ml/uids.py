"""Keyed, deterministic DICOM UIDs in the '2.25.<uuid>' form (PS3.5 B.2).

One implementation for the de-identification's replacement UIDs (``diagnosis/imaging/deid.py``)
and the model versions' device UIDs (``medai_site/registry/fhir.py``), so the same input and
key give the same UID wherever MedAI names it.
"""

from __future__ import annotations

import hashlib
import hmac

UUID_ROOT = "2.25."


def keyed_uid(original: str, key: bytes) -> str:
    """The keyed replacement '2.25.<int>' for ``original`` (the caller vets the key)."""
    canonical = str(original).strip().rstrip("\x00").encode("ascii", errors="replace")
    digest = hmac.new(key, canonical, hashlib.sha256).digest()
    value = int.from_bytes(digest[:16], "big")
    # Make it a well-formed RFC 9562 UUID (version 8 = custom, variant 10) so the 2.25 form
    # is a real UUID as PS3.5 B.2 asks; 122 keyed bits remain.
    value &= ~(0xF << 76)
    value |= 0x8 << 76
    value &= ~(0x3 << 62)
    value |= 0x2 << 62
    return f"{UUID_ROOT}{value}"
