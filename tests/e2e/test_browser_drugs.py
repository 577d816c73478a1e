"""A researcher starts a small design run in the browser, watches its live curves and current
molecules, and when it finishes reads the MOSES table, filters the grid of structures, opens a
molecule and shortlists it."""

from __future__ import annotations

import os

import pytest

from tests.e2e.browser import browser_page, screenshot_dir, sign_in
from tests.e2e.layout import check_widths

pytestmark = pytest.mark.e2e

# The embedded stack copies this environment when it starts: FCD against 500 test molecules
# instead of 10,000 keeps the worker's evaluation to seconds on a busy CI machine.
os.environ.setdefault("MEDAI_DRUGS_METRICS_TEST_SIZE", "500")
# The goal-directed comparison's baseline: the best of 300 training molecules, not 100,000
# (scoring those takes minutes of CPU the first time an objective is seen).
os.environ.setdefault("MEDAI_DRUGS_GOAL_BASELINE_SAMPLE", "300")

SMALL_RUN = {
    "#id_name": "Browser run",
    # Fine-tuning the shipped prior (a 3-layer GRU) on CPU: the smallest run the form takes,
    # with one epoch of each phase, so the browser sees every section of a finished run.
    "#id_train_limit": "100",
    "#id_n_samples": "100",
    "#id_pretrain_epochs": "1",
    "#id_adversarial_epochs": "1",
    "#id_w_qed": "0.5",
}
SMALL_NETWORK = {
    "#id_batch_size": "32",
    "#id_hidden_dim": "64",
    "#id_embed_dim": "16",
    "#id_layers": "1",
    "#id_samples_per_epoch": "64",
    "#id_pg_steps_per_epoch": "3",
    "#id_discriminator_pretrain_steps": "3",
    "#id_discriminator_steps_per_epoch": "3",
}


def test_researcher_generates_molecules_and_sees_the_grid(embedded_stack):
    stack = embedded_stack
    base = stack.base_url
    shots = screenshot_dir()
    with browser_page() as page:
        sign_in(page, base, "researcher", stack.passwords["researcher"])
        page.click("nav >> text=Drug design")
        page.click("text=New design run")
        page.select_option("#id_dataset", label="MOSES train (10k subset)")
        for selector, value in SMALL_RUN.items():
            page.fill(selector, value)
        page.click("summary:has-text('Advanced')")
        for selector, value in SMALL_NETWORK.items():
            page.fill(selector, value)
        page.screenshot(path=shots / "drugs-run-form.png", full_page=True)
        page.click("button:has-text('Start the run')")

        # Live: per-epoch curves and the current molecules arrive while the job runs; the
        # page reloads itself when it succeeds (a fast worker may finish before a poll).
        page.wait_for_selector("[data-live-run], #summary")
        if page.locator("[data-live-run]").count():
            page.wait_for_selector("[data-live-sample] img.structure, #summary", timeout=300_000)
            if page.locator("[data-live-sample] img.structure").count():
                page.screenshot(path=shots / "drugs-run-live.png", full_page=True)
        page.wait_for_selector("#summary", timeout=600_000)
        assert "unique" in page.locator("[data-summary]").inner_text()
        table = page.locator("#moses").inner_text()
        assert "This run" in table and "Training set" in table and "CharRNN" in table
        page.wait_for_selector(".chart .main-svg", state="attached", timeout=30_000)
        assert page.locator(".chart .main-svg").count() >= 5
        page.screenshot(path=shots / "drugs-run-results.png", full_page=True)
        check_widths(page, "design-run")

        # The grid: structures drawn by RDKit, sorted and filtered on the server.
        page.click("text=Sort, filter and export all")
        page.wait_for_selector("#molecule-grid .mol-card img.structure")
        drawn = page.eval_on_selector_all(
            "#molecule-grid img.structure", "imgs => imgs.filter(i => i.naturalWidth > 0).length"
        )
        assert drawn > 0
        total = page.locator("#molecule-grid .mol-card").count()
        page.check("#id_novel_only")
        page.fill("#id_qed_min", "0.5")
        page.select_option("#id_sort", "-qed")
        page.click("button:has-text('Apply')")
        page.wait_for_url("**novel_only=on**")
        assert page.locator("#molecule-grid .mol-card").count() <= total
        page.screenshot(path=shots / "drugs-grid.png", full_page=True)

        first = page.locator("#molecule-grid .mol-card a").first
        if first.count():
            first.click()
            page.wait_for_selector("#neighbours img.structure")
            check_widths(page, "molecule")
            page.fill("#id_note", "Looks synthesisable.")
            page.click("button:has-text('Add to my shortlist')")
            page.wait_for_selector(".msg-success")
            page.goto(base + "/drugs/shortlist/")
            assert "Looks synthesisable." in page.content()
        assert not page.errors, page.errors
