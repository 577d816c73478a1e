"""A clinician in a real browser: sign in, dashboard, start an import, watch it finish."""

from __future__ import annotations

import re

import pytest

from tests.e2e.browser import browser_page, screenshot_dir, sign_in

pytestmark = pytest.mark.e2e


def test_clinician_imports_patients_and_watches_progress(embedded_stack):
    base = embedded_stack.base_url
    shots = screenshot_dir()
    with browser_page() as page:
        sign_in(page, base, "dr.adams", embedded_stack.passwords["dr.adams"])
        assert page.locator("h2", has_text="My patients").is_visible()
        page.screenshot(path=shots / "platform-home.png", full_page=True)

        page.click("text=Import patients")
        page.check("input[value=gbsg2]")
        page.click("button:has-text('Start import')")
        page.wait_for_url(re.compile(r".*/jobs/\d+/$"))
        progress = page.locator("[data-job-progress] progress").first
        page.wait_for_function(
            "() => document.querySelector('[data-job-progress] progress').value === 100",
            timeout=60_000,
        )
        summary = page.locator("[data-field=summary]").first
        summary.wait_for(state="visible")
        assert re.match(r"Imported \d+ patients", summary.inner_text())
        assert progress.get_attribute("value") == "100"
        assert page.locator("[data-field=status]").first.inner_text() == "Succeeded"
        assert "elapsed" in page.locator("[data-field=elapsed]").first.inner_text()
        page.screenshot(path=shots / "platform-job-done.png", full_page=True)

        page.click("text=Open the result")
        page.wait_for_url(base + "/patients/")
        count = int(re.search(r"(\d+) patients", page.locator("p.muted").first.inner_text())[1])
        assert count >= 600  # the GBSG2 trial has 686; the demo seed gave dr.adams 20 of them
        page.click("table.table a >> nth=0")
        page.wait_for_selector("h2:has-text('Timeline')")
        assert page.locator(".patient-banner").is_visible()
        page.screenshot(path=shots / "platform-patient.png", full_page=True)
        assert not page.errors, page.errors  # no CSP violations, no script errors


def test_dashboard_on_a_tablet(embedded_stack):
    with browser_page(viewport={"width": 768, "height": 1024}) as page:
        sign_in(page, embedded_stack.base_url, "dr.baker", embedded_stack.passwords["dr.baker"])
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 768, "the dashboard scrolls sideways on a tablet"
        page.screenshot(path=screenshot_dir() / "platform-tablet.png", full_page=True)
        assert not page.errors, page.errors


def test_model_admin_sees_the_fleet(embedded_stack):
    """The Procfile's two workers (filesystem broker) on the fleet page, with the broker's queue
    depths, the throughput chart drawn under the strict CSP, and no patient identifiers."""
    base = embedded_stack.base_url
    with browser_page(viewport={"width": 1360, "height": 900}) as page:
        sign_in(
            page,
            base,
            "modeladmin",
            embedded_stack.passwords["modeladmin"],
            totp_secret=embedded_stack.passwords["modeladmin.totp"],
        )
        page.click("nav.mainnav >> text=Fleet")
        page.wait_for_url(base + "/jobs/fleet/")
        # The workers report themselves within a heartbeat of starting.
        for _ in range(30):
            online = page.locator("tr[data-worker][data-online='1']").count()
            if online >= 2:
                break
            page.wait_for_timeout(1000)
            page.reload()
        names = page.locator("tr[data-worker][data-online='1']").evaluate_all(
            "rows => rows.map(r => r.dataset.worker)"
        )
        assert any(n.startswith("default@") for n in names), names
        assert any(n.startswith("ml@") for n in names), names
        for queue in ("default", "ml", "gpu"):
            depth = page.locator(f"tr[data-queue={queue}] [data-field=depth]").inner_text()
            assert depth.isdigit(), (queue, depth)  # asked of the filesystem broker
        assert page.locator("tr[data-queue=gpu]", has_text="none online").is_visible()
        page.locator("[data-figure=fleet-throughput] .main-svg").first.wait_for(timeout=15_000)
        page.screenshot(path=screenshot_dir() / "platform-fleet.png", full_page=True)
        assert not page.errors, page.errors
