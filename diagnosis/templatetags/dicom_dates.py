"""DICOM dates (DA, YYYYMMDD) in the site's date format, for pages that show what a sender
put in a study (the unmatched-studies inbox)."""

from __future__ import annotations

from datetime import date

from django import template
from django.utils.dateformat import format as date_format

register = template.Library()

# The site's date format (templates write dates as "j M Y").
SITE_DATE = "j M Y"


@register.filter
def dicom_date(value: str) -> str:
    """'19470312' -> '12 Mar 1947'; a value that is not a valid DICOM date is shown as the
    sender wrote it, marked as such; '' stays ''."""
    text = str(value or "").strip()
    if not text:
        return ""
    if len(text) == 8 and text.isdigit():
        try:
            return date_format(date(int(text[:4]), int(text[4:6]), int(text[6:])), SITE_DATE)
        except ValueError:
            pass
    return f"{text} (as sent; not a valid date)"
