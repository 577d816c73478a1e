"""A model admin in a real browser: the registry list, a version's metric charts, and the link
to its governance page (tests/e2e/test_browser_governance.py drives that page)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.browser import browser_page, screenshot_dir, sign_in
from tests.e2e.processes import ROOT, base_env

pytestmark = pytest.mark.e2e

CREATE_VERSION = """
from django.contrib.auth import get_user_model
from medai_site.registry.services import model_version_register
admin = get_user_model().objects.get(username="modeladmin")
history = [{"epoch": e, "train_loss": 1 / e, "val_auc": 0.8 + e / 100} for e in range(1, 9)]
v = model_version_register(task="demo.registry_check", artifact=b"weights", created_by=admin,
                           metrics={"test_auc": 0.97, "test_accuracy": 0.9, "history": history})
print(v.pk)
"""


def _shell(env: dict, script: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]


def test_model_admin_sees_charts_and_the_governance_link(embedded_stack):
    env = base_env(
        MEDAI_VAR_DIR=str(embedded_stack.var), DJANGO_SETTINGS_MODULE="medai_site.settings.local"
    )
    pk = _shell(env, CREATE_VERSION)
    base = embedded_stack.base_url
    with browser_page() as page:
        sign_in(
            page,
            base,
            "modeladmin",
            embedded_stack.passwords["modeladmin"],
            totp_secret=embedded_stack.passwords["modeladmin.totp"],
        )
        page.goto(f"{base}/admin/registry/modelversion/{pk}/change/")
        page.wait_for_selector(".medai-charts .chart .main-svg", state="attached")
        assert page.locator(".medai-charts .chart .main-svg").count() >= 2
        assert page.locator(".medai-charts").inner_text().count("val_auc") >= 1
        page.screenshot(path=screenshot_dir() / "registry-version.png", full_page=True)
        page.click(f"a[href='/models/{pk}/governance/']")
        page.wait_for_selector("[data-section=timeline]")
        assert "Registered v1" in page.locator("[data-section=timeline]").inner_text()
        assert not page.errors, page.errors
