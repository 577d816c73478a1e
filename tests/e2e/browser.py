"""Headless Debian chromium driven by Playwright (no browser download)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def screenshot_dir() -> Path:
    path = Path(os.environ.get("MEDAI_SCREENSHOTS", "/tmp/medai-screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def chromium_browser() -> Iterator:
    """Headless Debian chromium (Playwright's Browser), closed on exit."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "Debian's chromium is not installed (bin/test installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def page_open(context) -> Any:
    """A new page of ``context``; console errors (CSP violations included) are collected on
    page.errors."""
    page = context.new_page()
    page.errors = []
    page.on("console", lambda msg: msg.type == "error" and page.errors.append(msg.text))
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    return page


@contextmanager
def browser_page(viewport: dict[str, int] | None = None) -> Iterator:
    """A fresh page; console errors (CSP violations included) are collected on page.errors."""
    with chromium_browser() as browser:
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 860})
        try:
            yield page_open(context)
        finally:
            context.close()


def totp_code(secret_b32: str) -> str:
    """The current code of an authenticator app holding ``secret_b32`` (RFC 6238, 30 s)."""
    from base64 import b32decode

    from django_otp.oath import TOTP

    key = b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    return f"{TOTP(key).token():06d}"


#: The 30-second TOTP step whose code each authenticator key last signed in with.
_TOTP_STEPS_USED: dict[str, int] = {}


def sign_in(
    page, base_url: str, username: str, password: str, totp_secret: str | None = None
) -> None:
    """Sign in through the form; staff accounts (e.g. the demo model admin) then enter the
    code of their authenticator: pass its key (stack.passwords["modeladmin.totp"])."""
    page.goto(base_url + "/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    if totp_secret is not None:
        page.wait_for_url(base_url + "/accounts/2fa/**")
        # A code is accepted once: when this process already used this step's code for the
        # account, wait for the next step first (a refused code would be a 400 in the page's
        # console, which the tests count as an error).
        if _TOTP_STEPS_USED.get(totp_secret) == int(time.time() // 30):
            time.sleep(30.5 - time.time() % 30)
        for _ in range(2):
            _TOTP_STEPS_USED[totp_secret] = int(time.time() // 30)
            page.fill("#id_code", totp_code(totp_secret))
            page.click("form.form button[type=submit]")
            page.wait_for_load_state()
            if "/accounts/2fa/" not in page.url:
                break
            # A code is accepted once: a second sign-in within the same 30-second step
            # waits for the next code, as a person would.
            time.sleep(30.5 - time.time() % 30)
    page.wait_for_url(base_url + "/")
