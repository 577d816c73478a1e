"""Filters for the fleet page: durations and memory sizes for people."""

from __future__ import annotations

from django import template

from medai_site.jobs.selectors import duration_text

register = template.Library()


@register.filter
def seconds(value: float | None) -> str:
    """A duration in seconds as "45 s" / "4 min" / "2 h 5 min"; "" for None."""
    return duration_text(value)


@register.filter
def mib(value: int | None) -> str:
    """MiB as "512 MiB" or "15.6 GiB"; "?" when unknown."""
    if not value:
        return "?"
    return f"{value / 1024:.1f} GiB" if value >= 1024 else f"{value} MiB"
