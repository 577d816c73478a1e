"""A clinician in a real browser: upload a PNG and a DICOM, watch the classification run,
see the prediction and heat-map, accept it."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.diagnosis.files import chest_png, pydicom_bytes
from tests.e2e.browser import browser_page, screenshot_dir, sign_in
from tests.e2e.layout import check_widths
from tests.e2e.processes import ROOT

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def model_in_service(embedded_stack, tiny_artifact, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "pneumonia.bin"
    path.write_bytes(tiny_artifact)
    env = dict(embedded_stack.env)
    model_in_service_put(env, "diagnosis.pneumonia", path)
    return embedded_stack


IMPORT_AND_ACTIVATE = """
import hashlib
from pathlib import Path
from django.contrib.auth import get_user_model
from django.core.management import call_command
from medai_site.registry.models import ModelVersion
from tests.support.governance import activate_version

task, path = {task!r}, Path({path!r})
sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
if not ModelVersion.objects.filter(task=task, sha256=sha256).exists():
    call_command("import_model_version", task, str(path), user="modeladmin", activate=True)
version = ModelVersion.objects.filter(task=task, sha256=sha256).latest("version")
if version.status != "active":
    activate_version(version, get_user_model().objects.get(username="modeladmin"), "e2e model")
"""


def model_in_service_put(env: dict, task: str, path) -> None:
    """Put the artifact at ``path`` into service for ``task`` in the stack, in one process:
    imported unless that artifact already is (--activate puts it in service only while the
    task never had a version in service, bootstrap), then, if it is not active, approved by a
    second model admin and activated, as on the governance page."""
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            IMPORT_AND_ACTIVATE.format(task=task, path=str(path)),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def test_upload_classify_view_and_accept(model_in_service, tmp_path):
    stack = model_in_service
    base = stack.base_url
    png = tmp_path / "chest.png"
    png.write_bytes(chest_png())
    dicom = tmp_path / "ct_small.dcm"
    dicom.write_bytes(pydicom_bytes("CT_small.dcm"))
    shots = screenshot_dir()
    with browser_page() as page:
        sign_in(page, base, "dr.adams", stack.passwords["dr.adams"])
        page.goto(base + "/patients/")
        page.click("table.table a >> nth=0")
        page.click("text=Upload or view scans")
        # The list of chosen files is drawn by a module script: wait until it has run.
        page.wait_for_load_state("load")
        page.set_input_files("input[type=file]", [str(png), str(dicom)])
        page.wait_for_selector("[data-dropzone-list] li >> nth=1")
        assert page.locator("[data-dropzone-list] li").count() == 2
        page.click("button:has-text('Upload and classify')")
        page.wait_for_selector("#upload-outcome")
        assert "2 files accepted" in page.locator("#upload-outcome").inner_text()
        page.screenshot(path=shots / "diagnosis-upload.png", full_page=True)
        # The page reloads itself when the job succeeds; then both scans have an answer (the
        # CT may be outside the chest model's scope: a reason, no risk).
        page.wait_for_function(
            "() => { const cells = [...document.querySelectorAll('tbody tr td:nth-child(4)')];"
            " return cells.length >= 2 && cells.every("
            "td => td.innerText.trim() && !td.innerText.includes('pending')); }",
            timeout=90_000,
        )
        page.click("tbody tr:has-text('PNG') >> a")
        page.wait_for_selector(".viewer-canvas .main-svg", state="attached", timeout=30_000)
        page.wait_for_function("() => document.querySelector('[data-viewer]').dataset.loaded")
        label = page.locator(".prediction-label").inner_text()
        assert re.match(r"(normal|pneumonia) 0\.\d\d", label)
        # Two traces: the image and the Grad-CAM heat-map; the toggle hides the heat-map.
        traces = page.evaluate("document.querySelector('[data-viewer-plot]').data.length")
        assert traces == 2
        page.uncheck("[data-control=heatmap]")
        visible = page.evaluate("document.querySelector('[data-viewer-plot]').data[1].visible")
        assert visible is False
        page.check("[data-control=heatmap]")
        assert page.locator(".model-card").inner_text().count("diagnosis.pneumonia") == 1
        page.screenshot(path=shots / "diagnosis-viewer.png", full_page=True)

        page.click("button:has-text('Save review')")
        page.wait_for_selector(".msg-success")
        assert "Review saved: accepted" in page.locator(".msg-success").inner_text()
        page.goto(base + "/diagnosis/worklist/")
        page.screenshot(path=shots / "diagnosis-worklist.png", full_page=True)
        assert page.locator("text=awaiting review").count() >= 1
        assert not page.errors, page.errors


def test_out_of_scope_scan_explained_then_scored_anyway(model_in_service, tiny_artifact, tmp_path):
    """A head CT uploaded for the chest radiograph model: apart in the worklist with its
    reason, no probability or heat-map in the viewer, then scored anyway with a reason."""
    from tests.diagnosis.files import ct_head_dicom
    from tests.diagnosis.model_versions import artifact_variant, chest_contract

    stack = model_in_service
    base = stack.base_url
    model = tmp_path / "pneumonia-chest-contract.bin"
    # The same weights as a version with the PneumoniaMNIST contract (chest radiographs).
    model.write_bytes(artifact_variant(tiny_artifact, contract=chest_contract()))
    env = dict(stack.env)
    model_in_service_put(env, "diagnosis.pneumonia", model)
    ct = tmp_path / "IM0001"
    ct.write_bytes(ct_head_dicom())
    png = tmp_path / "chest2.png"
    png.write_bytes(chest_png())
    shots = screenshot_dir()
    with browser_page() as page:
        sign_in(page, base, "dr.adams", stack.passwords["dr.adams"])
        page.goto(base + "/patients/")
        page.click("table.table a >> nth=1")
        page.click("text=Upload or view scans")
        page.set_input_files("input[type=file]", [str(png), str(ct)])
        page.click("button:has-text('Upload and classify')")
        # The page reloads itself when the job succeeds; then the result names the CT.
        page.wait_for_selector("[data-out-of-scope-file]", timeout=90_000)
        result = page.locator("#upload-outcome").inner_text()
        assert "1 scored, 1 outside the model's scope" in result
        assert "IM0001" in result and "this is a CT of the head" in result
        page.goto(base + "/diagnosis/worklist/")
        outside = page.locator("[data-worklist=out_of_scope] tbody tr")
        assert outside.count() >= 1 and "CT of the head" in outside.first.inner_text()
        page.screenshot(path=shots / "A-worklist.png", full_page=True)
        outside.first.locator("a >> nth=1").click()
        page.wait_for_function("() => document.querySelector('[data-viewer]').dataset.loaded")
        card = page.locator("[data-scope=out_of_scope]").inner_text()
        assert "this is a CT of the head" in card
        assert page.locator(".prediction-label").count() == 0
        assert page.evaluate("document.querySelector('[data-viewer-plot]').data.length") == 1
        page.screenshot(path=shots / "A-viewer-out-of-scope.png", full_page=True)
        page.fill("[data-override-form] textarea", "Scout view includes the lung apices")
        page.click("button:has-text('Score anyway')")
        page.wait_for_selector("[data-override]")
        page.wait_for_function("() => document.querySelector('[data-viewer]').dataset.loaded")
        assert "Scored outside the model's scope" in page.locator("[data-override]").inner_text()
        assert page.locator(".prediction-label").count() == 1
        assert page.evaluate("document.querySelector('[data-viewer-plot]').data.length") == 2
        page.screenshot(path=shots / "A-override.png", full_page=True)
        page.goto(base + "/diagnosis/worklist/")
        assert "scored outside the model's scope" in page.locator("#out-of-scope").inner_text()
        page.screenshot(path=shots / "A-worklist-after-override.png", full_page=True)
        assert not page.errors, page.errors


def test_task_choice_offers_only_models_that_take_the_files(
    model_in_service, tiny_artifact, tmp_path
):
    """Two imaging models in service (greyscale chest radiographs, colour photographs): a
    colour PNG leaves only the colour model on offer, a greyscale one only the chest model;
    the viewer shows the answering version's card."""
    from diagnosis.imaging.contract import InputContract
    from tests.diagnosis.model_versions import artifact_variant, chest_contract
    from tests.diagnosis.test_routing_files import colour_png

    stack = model_in_service
    base = stack.base_url
    env = dict(stack.env)
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c"]
        + [
            "from diagnosis.models import ImageDataset; ImageDataset.objects.get_or_create("
            "task='diagnosis.derma', defaults=dict(name='Dermatoscopy', kind='npz', "
            "path='dermamnist.npz', class_names=['benign', 'malignant'], "
            "split_sizes={'train': 1, 'val': 1, 'test': 1}, image_shape=[28, 28, 3], "
            "status='ready'))"
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    derma = InputContract(
        description="dermatoscopic photographs", modalities=("XC",), channels=3, min_size=(28, 28)
    ).to_dict()
    for task, contract in (("diagnosis.pneumonia", chest_contract()), ("diagnosis.derma", derma)):
        model = tmp_path / f"{task}.bin"
        model.write_bytes(artifact_variant(tiny_artifact, contract=contract))
        model_in_service_put(env, task, model)
    mole = tmp_path / "mole.png"
    mole.write_bytes(colour_png())
    xray = tmp_path / "xray.png"
    xray.write_bytes(chest_png())
    shots = screenshot_dir()
    with browser_page() as page:
        sign_in(page, base, "dr.adams", stack.passwords["dr.adams"])
        page.goto(base + "/patients/")
        page.click("table.table a >> nth=1")
        page.click("text=Upload or view scans")
        # count() does not wait: under load it read the patient page still showing.
        page.wait_for_url("**/diagnosis/patients/*/scans/")
        page.wait_for_selector("[data-task-choice]", state="attached")
        options = "[data-task-choice] option"
        assert page.locator(options).count() == 2
        page.set_input_files("input[type=file]", [str(mole)])
        page.wait_for_selector(
            "[data-task-choice] option[value='diagnosis.pneumonia']:disabled", state="attached"
        )
        assert page.input_value("[data-task-choice]") == "diagnosis.derma"
        note = page.locator("[data-task-note]").inner_text()
        assert "diagnosis.pneumonia cannot take mole.png (a colour image" in note
        page.screenshot(path=shots / "A2-upload-two-models-colour.png", full_page=True)
        page.set_input_files("input[type=file]", [str(xray)])
        page.wait_for_selector(
            "[data-task-choice] option[value='diagnosis.derma']:disabled", state="attached"
        )
        assert page.input_value("[data-task-choice]") == "diagnosis.pneumonia"
        page.screenshot(path=shots / "A2-upload-two-models-grey.png", full_page=True)
        page.click("button:has-text('Upload and classify')")
        page.wait_for_selector("#upload-outcome .job-result:not([hidden])", timeout=90_000)
        page.reload()
        page.locator("table a[href*='/diagnosis/scans/']").first.click()
        page.wait_for_function("() => document.querySelector('[data-viewer]').dataset.loaded")
        page.click("[data-model-card] summary")
        card = page.locator("[data-model-card]").inner_text()
        assert "Reads chest radiographs (CR/DX, chest)" in card and "threshold" in card
        page.screenshot(path=shots / "A2-viewer-card.png", full_page=True)
        assert not page.errors, page.errors


# Each role's main pages: the navigation must be one line at 1280 px, and a table wider than
# its card must scroll inside it (issue #19: nothing looks unfinished).
ROLE_PAGES = {
    "dr.adams": [
        "/",
        "/patients/",
        "/diagnosis/worklist/",
        "/remote-care/board/",
        "/remote-care/messages/",
        "/diagnosis/monitoring/",
        "/jobs/",
    ],
    "researcher": ["/", "/treatment/cohort/", "/remote-care/progression/", "/drugs/"],
    "modeladmin": [
        "/",
        "/diagnosis/training/",
        "/treatment/training/",
        "/remote-care/risk-model/",
        "/jobs/fleet/",
    ],
}

# (nav rows, tables spilling out of their card, page scroll width) of the page shown.
LAYOUT = """() => {
  const items = [...document.querySelector("nav.mainnav").children];
  // A second line starts where an item's top is below the first item's bottom.
  const firstBottom = items[0].getBoundingClientRect().bottom;
  const rows = 1 + (items.some((e) => e.getBoundingClientRect().top >= firstBottom - 1) ? 1 : 0);
  const spilling = [...document.querySelectorAll("main table")].filter((table) => {
    const box = table.closest(".table-scroll") || table;
    const card = box.parentElement.closest(".card, main");
    const overflows = box.getBoundingClientRect().right > card.getBoundingClientRect().right + 1;
    const scrolls = box !== table && getComputedStyle(box).overflowX === "auto";
    return overflows || (table.scrollWidth > card.clientWidth + 1 && !scrolls);
  }).map((t) => t.closest("section, main").querySelector("h1, h2")?.innerText || t.className);
  return { rows, spilling, width: document.documentElement.scrollWidth };
}"""


def _a_scan_url(page, base: str, tmp_path) -> str:
    """A scan of dr.adams's worklist (one is uploaded and classified if there is none)."""
    page.goto(base + "/diagnosis/worklist/")
    link = page.locator("table a[href*='/diagnosis/scans/']").first
    if not link.count():
        png = tmp_path / "chest.png"
        png.write_bytes(chest_png())
        page.goto(base + "/patients/")
        page.click("table.table a >> nth=0")
        page.click("text=Upload or view scans")
        page.set_input_files("input[type=file]", [str(png)])
        page.click("button:has-text('Upload and classify')")
        page.wait_for_function(
            "() => [...document.querySelectorAll('tbody tr td:nth-child(4)')].some("
            "td => td.innerText.trim() && !td.innerText.includes('pending'))",
            timeout=60_000,
        )
        link = page.locator("table a[href*='/diagnosis/scans/']").first
    return base + link.get_attribute("href")


def test_every_role_gets_a_one_line_bar_and_tables_that_fit(model_in_service, tmp_path):
    stack = model_in_service
    base = stack.base_url
    shots = screenshot_dir()
    for username, paths in ROLE_PAGES.items():
        totp = stack.passwords["modeladmin.totp"] if username == "modeladmin" else None
        with browser_page(viewport={"width": 1280, "height": 860}) as page:
            sign_in(page, base, username, stack.passwords[username], totp_secret=totp)
            for path in paths:
                page.goto(base + path)
                layout = page.evaluate(LAYOUT)
                if layout["rows"] != 1 or layout["spilling"]:
                    page.screenshot(path=shots / f"layout-failed-{username}.png")
                assert layout["rows"] == 1, f"{username}: the navigation wraps on {path}"
                assert not layout["spilling"], f"{username} {path}: {layout['spilling']}"
                assert layout["width"] <= 1280, f"{username}: {path} scrolls sideways"
            if username == "dr.adams":
                scan = _a_scan_url(page, base, tmp_path)
                pages = {"worklist": "/diagnosis/worklist/", "board": "/remote-care/board/"}
                for width in (1280, 768):
                    page.set_viewport_size({"width": width, "height": 1000})
                    for name, path in pages.items():
                        page.goto(base + path)
                        page.screenshot(path=shots / f"layout-{name}-{width}.png", full_page=True)
                        assert page.evaluate(LAYOUT)["spilling"] == [], (name, width)
                    page.goto(scan)
                    page.wait_for_function(
                        "() => document.querySelector('[data-viewer]').dataset.loaded"
                    )
                    # The class names of the probability bars are drawn in full (the bar
                    # chart draws after the viewer: wait for its axis).
                    page.wait_for_selector(".chart .ytick text", state="attached")
                    ticks = page.locator(".chart .ytick text").evaluate_all(
                        "els => els.map((e) => e.textContent)"
                    )
                    assert "pneumonia" in [t.strip() for t in ticks], ticks
                # The scan result: no sideways scroll, a one-row bar (checks at both widths).
                check_widths(page, "viewer", ready="[data-viewer][data-loaded]")
            if username == "modeladmin":
                # The grouped sections open from the keyboard, with no script.
                page.goto(base + "/")
                summary = page.locator("nav.mainnav summary", has_text="Imaging")
                summary.focus()
                page.keyboard.press("Enter")
                page.locator("nav.mainnav a", has_text="Training").click()
                page.wait_for_url(base + "/diagnosis/training/")
                for width in (1280, 768):
                    page.set_viewport_size({"width": width, "height": 1000})
                    page.goto(base + "/diagnosis/training/")
                    page.screenshot(path=shots / f"layout-training-{width}.png", full_page=True)
                    assert page.evaluate(LAYOUT)["spilling"] == [], ("training", width)
                    assert page.evaluate(LAYOUT)["width"] <= width, ("training", width)
            assert not page.errors, (username, page.errors)
