"""Query and form fuzzing of every URL: no 5xx, ever.

Every URL pattern the resolver knows (the authorization matrix's list, so a new URL is fuzzed
without touching this file) is requested as every role of the matrix with query strings and
form bodies that Hypothesis builds from hostile values: non-ASCII digits, integers with
hundreds of digits, dates at and beyond ``datetime``'s limits, control characters and NUL,
very long strings and repeated keys. Path converters are fuzzed too (huge ints for
``<int:pk>``). The keys are the parameter names the project's views and forms read, so the
values reach the parsing code rather than being ignored.

Budget: ``MEDAI_FUZZ_EXAMPLES`` examples per URL, role and method (default 1: every parameter
name set to a non-ASCII digit, a few minutes in CI); e.g. ``MEDAI_FUZZ_EXAMPLES=50`` for a deep
run, ``MEDAI_FUZZ_ONLY=remote_care`` (a regular expression on URL names) to focus it, and
``MEDAI_FUZZ_REPORT=file`` to append URLs x roles x examples and every 5xx to a file.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from django import forms
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_authorization_matrix import ADMIN_DEFAULT, MATRIX, ROLES, all_patterns, url_for

EXAMPLES = int(os.environ.get("MEDAI_FUZZ_EXAMPLES", "1"))
#: Only URL names matching this regular expression (a deep run on part of the site).
ONLY = re.compile(os.environ.get("MEDAI_FUZZ_ONLY", ""))
ROOT = Path(__file__).resolve().parents[1]
APPS = ("medai_site", "diagnosis", "drugs", "treatment", "remote_care")

# Routes a request must not reach from the fuzzer: signing out ends the fuzzing client's
# session (harmless, but then the rest of its examples run as nobody).
SKIP = {"logout"}
#: Matrix outcomes decided before a view reads any input (the gate): the matrix test checks
#: them, and fuzzing them only spends the budget on the sign-in redirect.
GATED = {"login", "admin_login", "forbidden", "unauthorized"}

HOSTILE = [
    "²",
    "١٢٣",
    "߁",
    "৪২",
    "Ⅻ",
    "１２",
    "-1",
    "0",
    "1e309",
    "nan",
    "inf",
    "9" * 400,
    "-" + "9" * 400,
    str(2**63),
    str(2**31),
    "0001-01-01",
    "0001-01-01T00:00:00",
    "9999-12-31",
    "9999-12-31T23:59:59+14:00",
    "0000-00-00",
    "2024-02-30",
    "+10000-01-01",
    "1969-12-31T23:59:60Z",
    "\x00",
    "a\x00b",
    "\x01\x1f\x7f",
    "\r\n",
    "\ud7ff",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "../../etc/passwd",
    "%00",
    "=cmd|' /C calc'!A0",
    "x" * 5000,
    "true",
    "on",
    "[]",
    "{}",
    "1,2",
    "1.5",
    " 1 ",
]


def _param_names() -> list[str]:
    """Every parameter name the views read from GET/POST, and every form field name."""
    names: set[str] = set()
    pattern = re.compile(r"""(?:GET|POST|data)(?:\.get|\.getlist)?[(\[]["']([\w-]+)["']""")
    for app in APPS:
        for path in (ROOT / app).rglob("*.py"):
            if "/ml/" in str(path) or "migrations" in path.parts:
                continue
            names.update(pattern.findall(path.read_text(encoding="utf-8")))

    def walk(cls: type) -> None:
        for sub in cls.__subclasses__():
            if sub.__module__.split(".")[0] in APPS:
                names.update(getattr(sub, "base_fields", {}))
            walk(sub)

    walk(forms.BaseForm)
    # Django's own: pagination, admin list filters and ordering, search, redirect targets.
    names.update({"page", "p", "o", "q", "e", "next", "_changelist_filters", "all"})
    return sorted(names)


def values() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(HOSTILE),
        st.integers(min_value=-(10**400), max_value=10**400).map(str),
        st.dates().map(lambda d: d.isoformat()),
        st.datetimes().map(lambda d: d.isoformat()),
        st.text(max_size=40),
        st.text(alphabet=st.characters(categories=("Nd", "No", "Cc")), max_size=12),
    )


def params(names: list[str]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Either every known name at once (so each example reaches every parameter a view reads;
    Hypothesis's simplest example is every name set to a non-ASCII digit) or a few pairs,
    keys repeating."""
    every = st.fixed_dictionaries({n: values() for n in names}).map(lambda d: list(d.items()))
    # One hostile value everywhere reaches pairs such as start=end=9999-12-31.
    same = st.sampled_from(HOSTILE).map(lambda v: [(n, v) for n in names])
    key = st.one_of(st.sampled_from(names), st.text(max_size=12))
    return st.one_of(every, same, st.lists(st.tuples(key, values()), min_size=1, max_size=8))


def path_value(converter: str) -> st.SearchStrategy[str]:
    if converter == "int":
        return st.one_of(
            st.sampled_from([0, 2**31, 2**63, 2**64, 10**40]),
            st.integers(min_value=0, max_value=10**60),
        ).map(str)
    if converter in ("str", "slug", ""):
        return st.text(
            alphabet=st.characters(codec="ascii", exclude_characters="/?#%"), min_size=1
        ).map(lambda s: quote(s, safe=""))
    return st.nothing()


def _encode(pairs: list[tuple[str, str]]) -> str:
    return "&".join(
        f"{quote(k, safe='', errors='surrogatepass')}={quote(v, safe='', errors='surrogatepass')}"
        for k, v in pairs
    )


def _routes(objects, role: str) -> list[tuple[str, str, str]]:
    """(name, route, filled URL) for every pattern whose matrix row lets ``role`` past the
    gate (for GET or POST)."""
    found = []
    for name, route, _ in all_patterns():
        if name in SKIP or name is None:
            continue
        expected = MATRIX.get(name) or (ADMIN_DEFAULT if name.startswith("admin:") else None)
        if expected is None or expected[role] in GATED or not ONLY.search(name):
            continue
        url = url_for(name, route, objects)
        if url is not None:
            found.append((name, route, url))
    return found


def _request(objects, role: str, method: str, url: str, body: str) -> tuple[int, str]:
    client = objects.client_for(role)
    # Each request in a savepoint: a view that breaks the transaction must not poison the
    # next example (that would be reported there, as a false 5xx).
    try:
        with transaction.atomic():
            if method == "POST":
                response = client.post(
                    url, data=body, content_type="application/x-www-form-urlencoded"
                )
            else:
                response = client.get(url)
    except Exception as exc:  # the test client re-raises a view's exception (a 500)
        return 500, f"{type(exc).__name__}: {exc}"[:300]
    return response.status_code, ""


def fuzz_route(objects, role: str, name: str, route: str, url: str, names: list[str]) -> list[str]:
    """Fuzz one route as one role; returns a description of every 5xx."""
    failures: list[str] = []
    converters = re.findall(r"<(?:(\w+):)?(\w+)>", route)

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        derandomize=False,
    )
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        target = url
        if converters and data.draw(st.booleans(), label="fuzz path"):
            target = "/" + route
            for converter, kwarg in converters:
                value = data.draw(path_value(converter), label=kwarg)
                target = re.sub(rf"<(?:{converter}:)?{kwarg}>", value, target, count=1)
        query = _encode(data.draw(params(names), label="query"))
        get_url = f"{target}?{query}" if query else target
        status, error = _request(objects, role, "GET", get_url, "")
        if status >= 500:
            failures.append(f"{role} GET {get_url[:300]} ({name}) -> {status} {error}")
        body = _encode(data.draw(params(names), label="body"))
        status, error = _request(objects, role, "POST", get_url, body)
        if status >= 500:
            failures.append(f"{role} POST {get_url[:300]} body={body[:300]} ({name}) -> {error}")

    try:
        run()
    except AssertionError as exc:
        # run() records failures instead of raising, so an AssertionError here comes from
        # Hypothesis's own engine (seen once in its mutator); one more run with fresh choices.
        if "hypothesis" not in _origin(exc):
            raise
        run()
    return failures


def _origin(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename if tb is not None else ""


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_no_url_answers_5xx_to_fuzzed_input(request, role, caplog):
    objects = request.getfixturevalue("world")
    names = _param_names()
    routes = _routes(objects, role)
    assert role == "anonymous" or len(routes) >= 8
    failures: list[str] = []
    # The 4xx answers' tracebacks would be logged thousands of times.
    logging.getLogger("django.request").disabled = True
    try:
        for name, route, url in routes:
            failures += fuzz_route(objects, role, name, route, url, names)
    finally:
        logging.getLogger("django.request").disabled = False
    if report := os.environ.get("MEDAI_FUZZ_REPORT"):
        with open(report, "a", encoding="utf-8") as out:
            out.write(f"{role}: {len(routes)} URLs x {EXAMPLES} examples x GET+POST, ")
            out.write(f"{len(failures)} 5xx\n" + "".join(f"  {f}\n" for f in failures))
    assert not failures, f"{len(failures)} 5xx answers:\n" + "\n".join(failures[:60])


def test_parameter_names_come_from_the_views():
    # The vocabulary reaches the views' own parameters (else the fuzzer only hits defaults).
    names = _param_names()
    for expected in ("patient", "upload", "table", "start", "end", "smiles"):
        assert expected in names
