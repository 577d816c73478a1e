"""CSV exports that are safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by
Excel, LibreOffice and Google Sheets as a formula ("CSV injection", OWASP). Every CSV the site
writes goes through :func:`csv_safe_cell`, which prefixes such cells with an apostrophe so they
are shown as text. Numbers are written as numbers: a negative number is data, not a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from numbers import Number
from typing import Any

from django.http import HttpResponse

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe_cell(value: Any) -> str:
    """The cell as text; '' for None, numbers verbatim, and a leading apostrophe for any
    other text that a spreadsheet would evaluate as a formula."""
    if value is None:
        return ""
    if isinstance(value, Number) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def csv_text(header: Sequence[Any], rows: Iterable[Sequence[Any]]) -> str:
    """A whole CSV document (RFC 4180 quoting, CRLF line ends), every cell escaped."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([csv_safe_cell(c) for c in header])
    for row in rows:
        writer.writerow([csv_safe_cell(c) for c in row])
    return buffer.getvalue()


def csv_response(
    filename: str, header: Sequence[Any], rows: Iterable[Sequence[Any]]
) -> HttpResponse:
    """An attachment download of :func:`csv_text`; ``filename`` must be a plain name."""
    response = HttpResponse(csv_text(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response
