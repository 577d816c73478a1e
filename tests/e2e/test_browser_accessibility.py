"""axe-core (the pinned npm package in node_modules/, never a CDN) on every page each role can
open, in chromium against the embedded stack: no WCAG 2.1 A or AA violation anywhere.

The pages come from the URL conf and the authorization matrix (every GET route a role is
answered 200 on), filled with one of every object a URL can name (tests/e2e/a11y_world.py:
a patient with a classified scan and a held one, a treatment result, a device and an alert, a
portal conversation, a cohort, a progression analysis, a design run and its molecule, a model
version, jobs, a worker). Responses that are not HTML (JSON, images, exports) are not pages.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.e2e.browser import chromium_browser, page_open, screenshot_dir, sign_in
from tests.e2e.processes import ROOT
from tests.test_authorization_matrix import MATRIX, all_patterns, url_for

pytestmark = pytest.mark.e2e

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

#: The roles signed in, each with the authorization matrix's column it follows.
ROLES = ("anonymous", "clinician", "researcher", "model_admin", "patient")
MATRIX_COLUMN = {
    "anonymous": "anonymous",
    "clinician": "clinician_a",  # the world's objects belong to this clinician
    "researcher": "researcher",
    "model_admin": "model_admin",
    "patient": "patient",
}

#: Every chart on the page drawn (Plotly's SVG present) before axe looks.
CHARTS_DRAWN = """() => [...document.querySelectorAll('.chart[data-figure]')]
    .filter(c => !c.hidden).every(c => c.querySelector('.main-svg'))"""

AXE_RUN = """async tags => {
    const result = await axe.run(document, {
        runOnly: {type: 'tag', values: tags},
        resultTypes: ['violations'],
        elementRef: true,
    });
    return result.violations.map(v => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.map(n => ({
            target: n.target.map(t => Array.isArray(t) ? t.join(' >>> ') : t).join(' '),
            summary: (n.failureSummary || '').split('\\n').slice(1).join(' ').trim(),
        })),
    }));
}"""


def role_pages(role: str, pks: dict[str, int]) -> list[tuple[str, str]]:
    """(URL name, path) of every GET route the authorization matrix answers ``role`` 200 on,
    with its converters filled by the world's objects."""
    world = SimpleNamespace(**{name: SimpleNamespace(pk=pk) for name, pk in pks.items()})
    column = MATRIX_COLUMN[role]
    pages = []
    for name, route, _ in all_patterns():
        row = MATRIX.get(name)
        if row is None or row.get("method", "GET") != "GET" or row[column] != "ok":
            continue
        url = url_for(name, route, world)
        if url is not None:
            pages.append((name, url))
    return pages


def world_in_stack(stack) -> dict:
    env = dict(stack.env)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c"]
        + ["from tests.e2e.a11y_world import main; main()"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def portal_sign_in(page, base_url: str, username: str, password: str) -> None:
    page.goto(base_url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(base_url + "/portal/**")


def requests_followed(page) -> None:
    """Count ``page``'s requests in flight on page.in_flight (network_quiet waits on it)."""
    page.in_flight = set()
    page.on("request", lambda request: page.in_flight.add(request))
    page.on("requestfinished", lambda request: page.in_flight.discard(request))
    page.on("requestfailed", lambda request: page.in_flight.discard(request))


def network_quiet(page, *, quiet_s: float = 0.15, timeout_s: float = 10.0) -> None:
    """Until no request of the page has been in flight for ``quiet_s``: what a page fetches
    to draw itself (data for its charts, the API schema) has arrived and been drawn.
    Playwright's own "networkidle" waits 500 ms on every page."""
    deadline = time.monotonic() + timeout_s
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if page.in_flight:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
        page.wait_for_timeout(25)


def axe_page(page, url: str) -> tuple[str, list[dict]]:
    """Open ``url`` and run axe on it: ("html", violations), or (why it is no page, [])."""
    from playwright.sync_api import Error as PlaywrightError

    try:
        response = page.goto(url, wait_until="load")
    except PlaywrightError as exc:
        if "Download is starting" in str(exc):
            return "not a page (a download)", []
        raise
    if response is None or response.request.redirected_from is not None:
        return "answered with a redirect", []
    if response.status != 200:
        return f"answered {response.status}", []
    kind = response.headers.get("content-type", "")
    if not kind.startswith("text/html"):
        return f"not a page ({kind.split(';')[0]})", []
    if "<html" not in response.text()[:2000].lower():
        return "a fragment of a page (the page that fetches it is checked)", []
    network_quiet(page)
    try:
        page.wait_for_function(CHARTS_DRAWN, timeout=10_000)
    except PlaywrightError:
        pass  # a chart that never draws is left as it is for axe to judge
    return "html", page.evaluate(AXE_RUN, WCAG_TAGS)


def axe_every_page(stack, world: dict) -> tuple[dict[str, dict], list[str], list[str]]:
    """Every role's pages through axe: (per page {"name", "violations", "rules"}, one line
    per violating element or unexpected answer, the routes that are no page and why)."""
    base = stack.base_url
    portal = world["portal"]
    failures: list[str] = []
    report: dict[str, dict] = {}
    skipped: list[str] = []
    with chromium_browser() as browser:
        for role in ROLES:
            context = browser.new_context(viewport={"width": 1280, "height": 860})
            # Injected by the browser itself into every document (as a user's extension is),
            # so the pages' strict CSP stays as it is and nothing is fetched from a network.
            context.add_init_script(path=str(AXE))
            page = page_open(context)
            requests_followed(page)
            if role == "clinician":
                sign_in(page, base, "dr.baker", stack.passwords["dr.baker"])
            elif role == "researcher":
                sign_in(page, base, "researcher", stack.passwords["researcher"])
            elif role == "model_admin":
                sign_in(
                    page,
                    base,
                    "modeladmin",
                    stack.passwords["modeladmin"],
                    totp_secret=stack.passwords["modeladmin.totp"],
                )
            elif role == "patient":
                portal_sign_in(page, base, portal["username"], portal["password"])
            pages = role_pages(role, world["pks"])
            assert len(pages) >= (2 if role == "anonymous" else 5), (role, pages)
            for name, path in pages:
                started = time.monotonic()
                outcome, violations = axe_page(page, base + path)
                if outcome != "html":
                    skipped.append(f"{role} {path} ({name}): {outcome}")
                    if outcome.startswith("answered"):
                        failures.append(f"{role} {path} ({name}) {outcome}, expected 200")
                    continue
                report[f"{role} {path}"] = {
                    "name": name,
                    "violations": sum(len(v["nodes"]) for v in violations),
                    "rules": {v["id"]: len(v["nodes"]) for v in violations},
                    "seconds": round(time.monotonic() - started, 2),
                }
                for violation in violations:
                    for node in violation["nodes"]:
                        failures.append(
                            f"{role} {path} ({name}) [{violation['id']}, {violation['impact']}] "
                            f"{node['target']}: {violation['help']}. {node['summary']}"
                        )
                errors = [e for e in page.errors if "Content Security Policy" in e]
                if errors:
                    failures.append(f"{role} {path} ({name}) CSP: {errors}")
                page.errors.clear()
            context.close()
    return report, failures, skipped


def test_every_page_of_every_role_passes_axe(embedded_stack):
    """axe-core's WCAG 2.1 A/AA rules find nothing on any page any role can open."""
    assert AXE.exists(), (
        f"{AXE} is missing: run `npm ci --no-audit --no-fund` at the repository root "
        "(bin/test does when npm is installed)"
    )
    report, failures, skipped = axe_every_page(embedded_stack, world_in_stack(embedded_stack))
    out = Path(screenshot_dir()) / "axe-report.json"
    out.write_text(
        json.dumps(
            {"pages": report, "failures": failures, "skipped": skipped},
            indent=1,
        )
    )
    assert len(report) >= 40, f"only {len(report)} pages were checked: {sorted(report)}"
    assert not failures, f"{len(failures)} WCAG 2.1 A/AA violations (report: {out}):\n" + (
        "\n".join(failures)
    )
