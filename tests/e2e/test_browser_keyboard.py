"""The main jobs done with the keyboard alone (WCAG 2.1.1, 2.4.3, 2.4.7): Tab and Shift+Tab
to move, Enter, Space and arrow keys to act, text typed into the focused field. No click, no
fill by selector. At every stop the focused element must show a focus indicator.

(a) clinician: sign in, upload a scan, open its viewer, review it (disagree, with a note);
(b) clinician: the monitoring board, an alert opened and acknowledged;
(c) researcher: a design run started (then cancelled, to spare the worker) and the shortlist
opened."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.diagnosis.files import chest_png
from tests.e2e.browser import browser_page, screenshot_dir
from tests.e2e.sessions import login_session
from tests.e2e.test_browser_diagnosis import model_in_service  # noqa: F401 (a fixture)

pytestmark = pytest.mark.e2e

# What the focused element looks like: a visible indicator is an outline of some width or a
# box shadow (the house style draws a 3 px outline on :focus-visible).
FOCUS_STATE = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow && style.boxShadow !== "none";
  const box = el.getBoundingClientRect();
  return {
    tag: el.tagName.toLowerCase(),
    text: (el.getAttribute("aria-label") || el.innerText || el.value || el.name || "").trim().slice(0, 80),
    html: el.outerHTML.slice(0, 160),
    ring: Boolean(outline || shadow),
    sized: box.width > 0 && box.height > 0,
  };
}"""


class Keyboard:
    """Moves through a page with Tab / Shift+Tab only, checking the focus ring at each stop."""

    def __init__(self, page) -> None:
        self.page = page
        self.stops = 0

    def focused(self) -> dict | None:
        return self.page.evaluate(FOCUS_STATE)

    def check_visible(self) -> dict | None:
        state = self.focused()
        if state is not None:
            assert state["ring"], f"focus is not visible on {state['html']}"
            assert state["sized"], f"focus went to an invisible element: {state['html']}"
        return state

    def tab_to(self, selector: str, *, back: bool = False, limit: int = 200) -> dict:
        """Tab (or Shift+Tab) until the focused element matches ``selector``."""
        seen: list[str | None] = []
        if self.page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return self.check_visible() or {}  # already there (autofocus)
        for _ in range(limit):
            self.page.keyboard.press("Shift+Tab" if back else "Tab")
            self.stops += 1
            state = self.check_visible()
            seen.append(state and state["html"][:60])
            if self.page.evaluate(
                "(s) => Boolean(document.activeElement && document.activeElement.matches(s))",
                selector,
            ):
                assert state is not None
                return state
        raise AssertionError(f"{selector} never got focus; the Tab order went {seen[-15:]}")

    def press(self, key: str) -> None:
        self.page.keyboard.press(key)

    def type(self, text: str) -> None:
        self.page.keyboard.type(text)

    def activate(self, key: str = "Enter") -> None:
        """Press ``key`` on the focused control and wait for the page it loads."""
        with self.page.expect_navigation():
            self.page.keyboard.press(key)


def keyboard_sign_in(page, base: str, username: str, password: str) -> Keyboard:
    keys = Keyboard(page)
    page.goto(base + "/accounts/login/")
    keys.tab_to("#id_username")
    keys.type(username)
    keys.tab_to("#id_password")
    keys.type(password)
    keys.activate()
    assert page.url == base + "/", page.url
    # The first stop on every page is the skip link, and it moves focus into the content.
    keys.tab_to("a.skip-link")
    assert page.locator("a.skip-link").is_visible()
    keys.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    return keys


def wait_until(page, check, *, timeout: float, what: str) -> None:
    # Polled from here: a string predicate polled in the page is evaluated there, which the
    # page's CSP (no 'unsafe-eval') refuses.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        page.wait_for_timeout(300)
    raise AssertionError(f"timed out waiting for {what}")


def test_keyboard_only_upload_view_and_review(model_in_service, tmp_path):  # noqa: F811
    stack = model_in_service
    base = stack.base_url
    png = tmp_path / "keyboard-chest.png"
    png.write_bytes(chest_png())
    with browser_page() as page:
        keys = keyboard_sign_in(page, base, "dr.adams", stack.passwords["dr.adams"])
        keys.tab_to('nav.mainnav a[href="/patients/"]', back=True)
        keys.activate()
        # The third patient: the other browser tests upload to the first two.
        keys.tab_to("table.table tbody tr:nth-child(3) a")
        keys.activate()
        keys.tab_to('a[href^="/diagnosis/patients/"][href$="/scans/"]')
        keys.activate()
        # The file input opens the system's file chooser with Space, as for a person.
        keys.tab_to("input[type=file]")
        # 60 s: on a loaded CI machine chromium has taken over 30 s to open it.
        with page.expect_file_chooser(timeout=60_000) as chooser:
            keys.press("Space")
        chooser.value.set_files(str(png))
        assert "keyboard-chest.png" in page.locator("[data-dropzone-list]").inner_text()
        keys.tab_to("form[data-dropzone] button[type=submit]")
        keys.activate()
        assert "1 file accepted" in page.locator("#upload-outcome").inner_text()
        # The page reloads itself when the classification succeeds; the newest scan is first.
        row = page.locator("#all-scans tbody tr").first
        wait_until(
            page,
            lambda: bool(re.search(r"\d\.\d\d", row.locator("td:nth-child(5)").inner_text())),
            timeout=90,
            what="the scan's classification",
        )
        href = row.locator("a").first.get_attribute("href")
        keys.tab_to(f'a[href="{href}"]')
        keys.activate()
        page.wait_for_selector(".prediction-label")
        predicted = page.locator(".prediction-label").inner_text().split()[0]

        # The chart's text alternative is there for a keyboard and screen-reader user.
        summary = page.locator("#probabilities-summary").inner_text()
        assert summary.startswith("Calibrated class probabilities:") and predicted in summary
        keys.tab_to("details.chart-data > summary")
        keys.press("Enter")
        table = page.locator("details.chart-data table")
        assert table.is_visible() and predicted in table.text_content()

        # Disagree: the arrow key moves the label choice off the model's answer.
        keys.tab_to("select[name=label]")
        before = page.evaluate("document.activeElement.value")
        keys.press("ArrowDown" if before == "normal" else "ArrowUp")
        chosen = page.evaluate("document.activeElement.value")
        assert chosen != before
        keys.tab_to("textarea[name=note]")
        keys.type("Keyboard review: no consolidation seen.")
        keys.tab_to('button[name="decision"][value="save"]')
        page.screenshot(path=screenshot_dir() / "keyboard-review.png", full_page=True)
        keys.activate()
        message = page.locator(".msg-success").inner_text()
        assert "Review saved" in message and chosen in page.locator("main").inner_text()
        assert "Keyboard review: no consolidation seen." in page.locator("main").inner_text()
        assert not page.errors, page.errors


def _vitals(minutes_ago: int, **values: object) -> dict:
    taken = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return {
        "taken_at": taken.isoformat(),
        "systolic_bp": 118,
        "diastolic_bp": 76,
        "temperature": 38.7,
        "consciousness": "A",
        "on_oxygen": False,
        **values,
    }


def _patient_with_an_alert(stack) -> str:
    """Registers a device for dr.adams's fourth patient over HTTP and posts an emergency score
    from it; returns the patient's id."""
    session = login_session(stack, "dr.adams")
    listing = session.get(stack.base_url + "/patients/", timeout=10).text
    ids = list(dict.fromkeys(re.findall(r'href="/patients/(\d+)/"', listing)))
    page_url = f"{stack.base_url}/remote-care/patients/{ids[3]}/"
    session.get(page_url, timeout=10)
    registered = session.post(
        page_url,
        data={"label": "Keyboard kit", "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": page_url},
        timeout=10,
    )
    token = re.search(r"mdv_[A-Za-z0-9_\-]+", registered.text).group(0)
    response = requests.post(
        stack.base_url + "/remote-care/api/v1/observations/",
        json={"observations": [_vitals(1, heart_rate=134, respiratory_rate=28, spo2=89)]},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert response.json()["alerts"], response.json()
    return ids[3]


def test_keyboard_only_board_to_alert_acknowledged(embedded_stack):
    stack = embedded_stack
    base = stack.base_url
    patient = _patient_with_an_alert(stack)
    with browser_page() as page:
        keys = keyboard_sign_in(page, base, "dr.adams", stack.passwords["dr.adams"])
        keys.tab_to('nav.mainnav a[href="/remote-care/board/"]', back=True)
        keys.activate()
        row = f'tr[data-patient="{patient}"] a[data-alerts]'
        keys.tab_to(row)
        # The board refreshes its rows every few seconds: focus stays on the same link.
        page.wait_for_timeout(11_000)
        assert page.evaluate("(s) => document.activeElement.matches(s)", row), keys.focused()
        keys.check_visible()
        keys.activate()
        assert page.url.endswith("#alerts")
        keys.tab_to('#alerts tbody tr:first-child button[value="acknowledge"]')
        keys.activate()
        assert "Acknowledged" in page.locator("#alerts tbody tr").first.inner_text()
        assert page.locator(".msg-success").count() == 1
        page.screenshot(path=screenshot_dir() / "keyboard-alert.png", full_page=True)
        # The vital-sign charts: drawn by vitals.js, with their sentence and data table.
        keys.tab_to('a[href$="/vitals/"]')
        keys.activate()
        summary = page.locator("#vitals-summary")
        wait_until(page, lambda: "Heart rate" in summary.inner_text(), timeout=30, what="vitals")
        # (Folded away: the text is there, not drawn, until the reader opens "Data table".)
        assert "134" in page.locator("details.chart-data tbody").text_content()
        assert not page.errors, page.errors


# (field, keystrokes) of the smallest design run the form takes: typed over each default.
SMALL_RUN = (
    ("#id_train_limit", "100"),
    ("#id_n_samples", "100"),
    ("#id_pretrain_epochs", "1"),
    ("#id_adversarial_epochs", "0"),
)


def test_keyboard_only_design_run_then_shortlist(embedded_stack):
    stack = embedded_stack
    base = stack.base_url
    with browser_page() as page:
        keys = keyboard_sign_in(page, base, "researcher", stack.passwords["researcher"])
        keys.tab_to('nav.mainnav a[href="/drugs/"]', back=True)
        keys.activate()
        keys.tab_to('a[href="/drugs/runs/new/"]')
        keys.activate()
        keys.tab_to("#id_name")
        keys.type("Keyboard run")
        keys.tab_to("#id_dataset")
        # The arrow keys move a closed select's choice.
        for _ in range(10):
            chosen = page.evaluate("document.activeElement.selectedOptions[0].textContent")
            if "MOSES train (10k subset)" in chosen:
                break
            keys.press("ArrowDown")
        assert "MOSES train (10k subset)" in chosen
        for selector, value in SMALL_RUN:
            keys.tab_to(selector)
            keys.press("Control+A")
            keys.type(value)
        keys.tab_to("form details > summary")
        keys.press("Enter")  # opens the advanced settings
        keys.tab_to("#id_samples_per_epoch")
        keys.press("Control+A")
        keys.type("32")
        keys.tab_to("main form button[type=submit]")
        keys.activate()
        assert re.search(r"/drugs/runs/\d+/$", page.url), page.url
        assert page.locator("h1").first.inner_text().startswith("Keyboard run")
        # Cancelled at once: this test is about the keyboard, not the generator.
        # Stopped at once, in place (jobs.js): this test is about the keyboard, not the GAN.
        if page.locator("form[data-cancel] button").count():
            keys.tab_to("form[data-cancel] button")
            keys.press("Enter")
            stage = page.locator("[data-job-progress] [data-field=stage]").first
            wait_until(
                page,
                lambda: (
                    "cancel" in stage.inner_text().lower()
                    or not page.locator("form[data-cancel]").count()
                ),
                timeout=30,
                what="the run to be cancelled",
            )
        keys.tab_to('nav.mainnav a[href="/drugs/"]', back=True)
        keys.activate()
        keys.tab_to('a[href="/drugs/shortlist/"]')
        keys.activate()
        assert page.locator("h1").inner_text() == "My shortlist"
        page.screenshot(path=screenshot_dir() / "keyboard-shortlist.png", full_page=True)
        assert not page.errors, page.errors
