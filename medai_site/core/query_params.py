"""One home for reading integers, dates and date-times from query strings and forms.

Python and Django accept more than a page means: ``str.isdigit()`` is true for ``²`` (which
``int`` then refuses), ``int`` reads Arabic-Indic and full-width digits and integers with
thousands of digits, and ``date`` reaches from year 1 to 9999, where adding a day or making a
local midnight aware overflows. These parsers accept ASCII digits only, a bounded range, and
dates in a span a clinical dashboard can compute with; anything else is a ``BadParameter``
whose message is safe to show (it never echoes the raw value), answered as a 400 by
:func:`bad_request`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from django import forms
from django.http import HttpResponse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

#: Primary keys and counts fit a signed 64-bit column (PostgreSQL bigint).
MAX_ID = 2**63 - 1
#: Dates a page may ask about: wide enough for any birth date or record, narrow enough that
#: a local midnight, a day after or a year band before never leaves ``datetime``'s range.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2199, 12, 31)

_ASCII_INT = re.compile(r"[+-]?[0-9]{1,19}")


class BadParameter(ValueError):
    """A query or form value that cannot be used; ``str(exc)`` is a message for the client."""


def parse_int(raw: str, *, name: str, min_value: int = 0, max_value: int = MAX_ID) -> int:
    """``raw`` as an integer of ASCII digits within [min_value, max_value]; BadParameter
    otherwise (non-ASCII digits, hundreds of digits, signs where negatives are out of range)."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not _ASCII_INT.fullmatch(text):
        raise BadParameter(f"{name} must be a whole number (an integer) in the digits 0-9.")
    value = int(text)
    if not min_value <= value <= max_value:
        raise BadParameter(f"{name} must be between {min_value} and {max_value}.")
    return value


def int_param(
    params: Mapping[str, Any],
    name: str,
    *,
    default: int | None = None,
    min_value: int = 0,
    max_value: int = MAX_ID,
) -> int | None:
    """The integer ``params[name]`` (``default`` when absent or empty); BadParameter as
    parse_int."""
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    return parse_int(raw, name=name, min_value=min_value, max_value=max_value)


def check_date(
    value: date, *, name: str, earliest: date = EARLIEST_DATE, latest: date = LATEST_DATE
) -> date:
    """``value`` if within [earliest, latest]; BadParameter otherwise."""
    if not earliest <= value <= latest:
        raise BadParameter(
            f"{name} must be between {earliest.isoformat()} and {latest.isoformat()}."
        )
    return value


def parse_date(raw: str, *, name: str) -> date:
    """An ISO 8601 date (YYYY-MM-DD, ASCII digits) within the supported span."""
    text = raw.strip() if isinstance(raw, str) else ""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
        raise BadParameter(f"{name} must be a date written as YYYY-MM-DD.")
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise BadParameter(f"{name} is not a calendar date.") from None
    return check_date(value, name=name)


def parse_aware_datetime(raw: str, *, name: str) -> datetime:
    """An ISO 8601 date-time (ASCII digits; the site's time zone when it names none) within
    the supported span; BadParameter otherwise."""
    text = raw.strip() if isinstance(raw, str) else ""
    example = "e.g. 2026-01-31T08:00:00Z"
    if not text.isascii():
        raise BadParameter(f"{name} must be an ISO 8601 date-time, {example}.")
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None:
        raise BadParameter(f"{name} must be an ISO 8601 date-time, {example}.")
    check_date(value.date(), name=name)
    try:
        if timezone.is_naive(value):
            value = timezone.make_aware(value)
        # Arithmetic a caller does next (a range before or after it) must not overflow.
        value + timedelta(days=1)
    except (OverflowError, ValueError):
        raise BadParameter(f"{name} is outside the supported range.") from None
    return value


class BoundedDateField(forms.DateField):
    """A DateField that refuses dates outside [EARLIEST_DATE, LATEST_DATE] with a message,
    so the views behind it never compute with year 1 or 9999. A form with its own check on
    one side (a birth date in the future) may widen the other with ``latest``."""

    def __init__(self, *, latest: date = LATEST_DATE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.latest = latest

    def to_python(self, value: Any) -> date | None:
        if isinstance(value, str) and not value.isascii():
            raise forms.ValidationError("Enter a date written with the digits 0-9.")
        result = super().to_python(value)
        if result is None:
            return None
        try:
            return check_date(result, name="The date", latest=self.latest)
        except BadParameter as exc:
            raise forms.ValidationError(str(exc)) from None


class BoundedIntegerField(forms.IntegerField):
    """An IntegerField of ASCII digits that fits a 64-bit column (Django's own reads ``²``
    and full-width digits, and integers with hundreds of digits)."""

    def __init__(self, *, min_value: int | None = None, max_value: int | None = None, **kw: Any):
        super().__init__(
            min_value=-MAX_ID if min_value is None else min_value,
            max_value=MAX_ID if max_value is None else max_value,
            **kw,
        )

    def to_python(self, value: Any) -> int | None:
        if isinstance(value, str) and value.strip() and not _ASCII_INT.fullmatch(value.strip()):
            raise forms.ValidationError("Enter a whole number written with the digits 0-9.")
        return super().to_python(value)


def next_path(request: Any, *, default: str) -> str:
    """The request's "next" (POST, then GET) when it is a path on this site, else ``default``.
    A path only: redirect() reads any other string as a URL pattern name (NoReverseMatch), and
    another host would be an open redirect."""
    from django.utils.http import url_has_allowed_host_and_scheme

    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate.startswith("/") and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def bad_request(message: str, *, status: int = 400) -> HttpResponse:
    """A 4xx answer carrying ``message`` as plain text: a browser never renders it as HTML,
    so a message that quotes the request cannot inject markup."""
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    return response
