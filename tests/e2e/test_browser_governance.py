"""The governance timeline in a real browser (chromium): a retrained GBSG2 treatment model,
validated against the version in service, is approved by a second model admin, put into
service and rolled back, each with a reason; the page draws the comparison chart under the
strict CSP with no console error. Saves governance-timeline.png in the screenshot folder."""

from __future__ import annotations

import pytest

from medai_site.core.roles import Role
from medai_site.registry.models import ModelValidation
from medai_site.registry.services import model_version_activate, model_version_register
from tests.e2e.browser import browser_page, screenshot_dir
from tests.platform.factories import UserFactory
from tests.support.clients import login
from tests.support.worker import job_run_in_process

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _validated(version) -> None:
    from medai_site.jobs.models import Job

    pending = version.validations.get(status=ModelValidation.Status.PENDING)
    job_run_in_process(Job.objects.get(kind="registry.validate", params__validation_id=pending.pk))


def _retrained(trainer):
    """v1 (Cox) in service by bootstrap, v2 (random survival forest) validated against it."""
    from treatment.ml.models import ModelConfig, fit_treatment_model
    from treatment.ml.trials import load_trial

    trial = load_trial("gbsg2")
    versions = []
    for kind in ("cox", "rsf"):
        model = fit_treatment_model(trial, ModelConfig(kind=kind, n_bootstrap=2))
        version = model_version_register(
            task="treatment.gbsg2",
            artifact=model.to_bytes(),
            created_by=trainer,
            training_data={"trial": "gbsg2", "title": "GBSG2"},
        )
        _validated(version)
        if kind == "cox":
            model_version_activate(version=version, user=trainer, reason="first GBSG2 model")
        versions.append(version)
    return versions


def test_governance_timeline_approve_activate_and_roll_back(live_server, settings):
    settings.MEDAI_HELDOUT_MAX_ITEMS = 200
    trainer = UserFactory(username="trainer", roles=[Role.MODEL_ADMIN], is_staff=True)
    reviewer = UserFactory(username="reviewer", roles=[Role.MODEL_ADMIN], is_staff=True)
    v1, v2 = _retrained(trainer)
    session = login(reviewer).cookies[settings.SESSION_COOKIE_NAME].value
    with browser_page(viewport={"width": 1280, "height": 900}) as page:
        page.context.add_cookies(
            [{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": live_server.url}]
        )
        page.goto(f"{live_server.url}/models/{v2.pk}/governance/")
        page.wait_for_selector("[data-section=validation] .chart .main-svg", state="attached")
        validation = page.locator("[data-section=validation]").inner_text()
        assert "C-index" in validation and "Against v1 in service" in validation
        failed = page.locator("[data-validation=passed]").count() == 0
        page.fill("#id_reason", "Reviewed the held-out comparison on the GBSG2 rows.")
        if failed:
            page.check("#id_override")
        page.click("[data-section=approve] button[type=submit]")
        page.wait_for_selector(".msg-success")
        page.fill("#id_activate-reason", "Approved by a second model admin.")
        page.click("[data-section=service] button[type=submit]")
        page.wait_for_selector("text=is now in service")
        page.wait_for_selector("[data-section=validation] .chart .main-svg", state="attached")
        timeline = page.locator("[data-section=timeline]")
        assert timeline.locator("[data-kind=approval], [data-kind=override]").count() == 1
        assert timeline.locator("[data-kind=activated]").count() == 1
        page.screenshot(path=screenshot_dir() / "governance-timeline.png", full_page=True)
        page.fill("#id_rollback-reason", "Rolling back while the ward compares both.")
        page.click("[data-section=service] button[type=submit]")
        page.wait_for_selector("text=is in service again")
        # Now on v1's page: its record holds the bootstrap and the roll-back that restored it.
        timeline = page.locator("[data-section=timeline]")
        assert timeline.locator("[data-kind=bootstrap]").count() == 1
        assert timeline.locator("[data-kind=rolled_back]").count() == 1
        assert not page.errors, page.errors
    v1.refresh_from_db()
    assert v1.status == "active"
