"""The size cap every upload is checked against, and the one message people see past it.

Caps are set in megabytes of 2**20 bytes (``MEDAI_SCAN_MAX_MB=200`` is 200 * 2**20 bytes), and
sizes are shown in the same unit, so the limit a message names is the number configured.
"""

from __future__ import annotations

MEGABYTE = 1 << 20


def upload_size_problem(
    size: int | None, *, cap: int, noun: str = "file", purpose: str = ""
) -> str:
    """ "" when an upload of ``size`` bytes is within ``cap`` bytes, else the 4xx message that
    says so ("The file is 12.5 MB, larger than the 10 MB limit."). ``size`` None: the upload was
    stopped while streaming once it passed ``cap``, so only that it is larger is known.
    ``purpose`` ends the limit's name (" for data sets")."""
    limit = f"{cap / MEGABYTE:,.0f} MB"
    if size is None:
        return f"The {noun} is larger than the {limit} limit{purpose}."
    if size <= cap:
        return ""
    return f"The {noun} is {size / MEGABYTE:,.1f} MB, larger than the {limit} limit{purpose}."
