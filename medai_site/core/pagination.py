"""One way to show a long list a page at a time, with its count ("Showing 51–100 of 243").

Views call :func:`page_of` and include ``partials/pagination.html`` with the result as
``pager``. A ``?page=`` that is not a page (``abc``, ``0``, ``-1``, ``²``, a number with
thirty digits, one past the end) shows the nearest page that exists instead of an error:
a bookmarked page 9 of a list that has since shrunk to 3 pages still opens.

A conversation opens on its newest page instead (``start="last"``): pages still run oldest
to newest, so a thread reads top to bottom with the reply form under the latest message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

from django.core.paginator import Page, Paginator
from django.http import HttpRequest

#: A page number: ASCII digits only (``int`` would also read full-width and other Unicode
#: digits); a long one is never turned into an integer (see page_number).
_PAGE_NUMBER = re.compile(r"([+-]?)([0-9]+)")


@dataclass(frozen=True)
class PageOf:
    page: Page
    #: "Showing 51–100 of 243 scans" (or "No scans").
    summary: str
    #: The request's other query parameters (filters), to keep in every page link.
    base_query: str
    param: str

    @property
    def object_list(self) -> list[Any]:
        return list(self.page.object_list)

    def link(self, number: int) -> str:
        """The query string of page ``number`` with the same filters."""
        query = f"{self.param}={number}"
        return f"?{self.base_query}&{query}" if self.base_query else f"?{query}"

    @property
    def current_link(self) -> str:
        """This page's query string (e.g. for a poll that refreshes the page in place)."""
        return self.link(self.page.number)

    @property
    def previous_link(self) -> str:
        return self.link(self.page.previous_page_number()) if self.page.has_previous() else ""

    @property
    def next_link(self) -> str:
        return self.link(self.page.next_page_number()) if self.page.has_next() else ""

    @property
    def first_link(self) -> str:
        return self.link(1)

    @property
    def last_link(self) -> str:
        return self.link(self.page.paginator.num_pages)


def page_number(
    raw: str | None, *, num_pages: int, start: Literal["first", "last"] = "first"
) -> int:
    """``raw`` as a page in [1, num_pages]: anything that is not a whole number is the
    ``start`` page, a number out of range is the nearest end."""
    last = max(num_pages, 1)
    match = _PAGE_NUMBER.fullmatch((raw or "").strip())
    if match is None:
        return last if start == "last" else 1
    sign, digits = match.groups()
    if sign == "-":
        return 1
    # Past 18 digits it is past any page: no need to build the integer.
    value = int(digits) if len(digits) <= 18 else last
    return min(max(value, 1), last)


def page_of(
    request: HttpRequest,
    object_list: Any,
    *,
    per_page: int,
    noun: str = "item",
    plural: str | None = None,
    param: str = "page",
    start: Literal["first", "last"] = "first",
) -> PageOf:
    """The page of ``object_list`` (a QuerySet or a list) that ``request.GET[param]`` asks
    for, clamped to the pages that exist (``start``: the page shown without a page number);
    never raises for a bad page value."""
    paginator = Paginator(object_list, per_page)
    number = page_number(request.GET.get(param), num_pages=paginator.num_pages, start=start)
    page = paginator.page(number)
    count = paginator.count
    nouns = noun if count == 1 else (plural or f"{noun}s")
    if count == 0:
        summary = f"No {plural or noun + 's'}"
    elif paginator.num_pages == 1:
        summary = f"{count:,} {nouns}"
    else:
        summary = f"Showing {page.start_index():,}–{page.end_index():,} of {count:,} {nouns}"
    kept = [(key, value) for key, values in request.GET.lists() if key != param for value in values]
    return PageOf(page=page, summary=summary, base_query=urlencode(kept), param=param)
