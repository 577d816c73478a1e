"""The unmatched-studies pages: DICOM dates (DA, YYYYMMDD) in the site's date format, and how
long ago a study arrived."""

from __future__ import annotations

from datetime import date, datetime

from django import template
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.timesince import timesince

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


@register.filter
def ago(value: datetime | None) -> str:
    """'just now' within a minute, else '3 hours, 5 minutes ago' (two units at most)."""
    if value is None:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value)} ago"
