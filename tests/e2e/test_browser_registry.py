"""A model admin in a real browser: the registry list, a version's metric charts, activation."""

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


def test_model_admin_sees_charts_and_activates_a_version(embedded_stack):
    env = base_env(
        MEDAI_VAR_DIR=str(embedded_stack.var), DJANGO_SETTINGS_MODULE="medai_site.settings.local"
    )
    pk = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", CREATE_VERSION],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]
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

        page.goto(f"{base}/admin/registry/modelversion/")
        page.check(f"input[name=_selected_action][value='{pk}']")
        page.select_option("select[name=action]", "activate")
        page.click("button[name=index]")
        page.wait_for_selector(".messagelist")
        assert "is now active" in page.locator(".messagelist").inner_text()
        assert not page.errors, page.errors

        # The home dashboard lists the model in service.
        page.goto(base + "/")
        assert page.locator("text=demo.registry_check").is_visible()
