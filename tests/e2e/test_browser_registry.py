"""A model admin in a real browser: the registry list, a version's metric charts, and the link
to its governance page (tests/e2e/test_browser_governance.py drives that page)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.browser import browser_page, screenshot_dir, sign_in
from tests.e2e.processes import ROOT

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
    env = dict(embedded_stack.env)
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


SHADOW_SETUP = """
import io, time
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image
from django.contrib.auth import get_user_model

from diagnosis.ml.artifact import artifact_bytes
from diagnosis.ml.data import load_npz
from diagnosis.ml.train import TrainConfig, train
from diagnosis.models import Prediction
from diagnosis.services import review_record, scan_upload
from medai_site.jobs.models import Job
from medai_site.patients.models import CareTeamMembership
from medai_site.registry.models import ModelVersion
from medai_site.registry.shadow import model_version_shadow_start
from tests.diagnosis.files import upload
from tests.diagnosis.model_versions import PNEUMONIA_NPZ, register_version
from tests.support.worker import job_run_in_process

torch.set_num_threads(2)
User = get_user_model()
admin = User.objects.get(username="modeladmin")
clinician = User.objects.get(username="dr.adams")
data = load_npz(PNEUMONIA_NPZ, class_names=("normal", "pneumonia"))


def tiny(seed, epochs, n):
    part = data.subset(train=n, val=100, test=100, seed=seed)
    config = TrainConfig(width=8, epochs=epochs, batch_size=64, lr=5e-3, seed=seed,
                         ema_decay=0.0, label_smoothing=0.0, tta=False)
    return artifact_bytes(train(part, config).to_bundle())


admins = SimpleNamespace(model_admin=admin)
active = register_version(admins, tiny(0, 2, 400))
challenger = register_version(admins, tiny(1, 1, 400), activate=False)
approver, _ = User.objects.get_or_create(username="second.admin", defaults={"is_staff": True})
ModelVersion.objects.filter(pk=challenger.pk).update(approved_by=approver)
challenger.refresh_from_db()
model_version_shadow_start(version=challenger, user=admin, reason="Four-eyes approved; "
                           "compare on live chest radiographs before activation")

patient = CareTeamMembership.objects.filter(user=clinician).first().patient
with np.load(PNEUMONIA_NPZ) as npz:
    images, labels = npz["test_images"][:40], npz["test_labels"].ravel()[:40]
files = []
for i, image in enumerate(images):
    buffer = io.BytesIO()
    Image.fromarray(image).resize((224, 224)).save(buffer, format="PNG")
    files.append(upload(f"film{i:02d}.png", buffer.getvalue()))
outcome = scan_upload(patient=patient, uploaded_by=clinician, task=active.task, files=files)
# The job's own function, as the ml worker runs it (if the worker claimed it first, this
# delivery does nothing and the loop waits for the worker).
job_run_in_process(outcome.job)
for _ in range(600):
    outcome.job.refresh_from_db()
    if outcome.job.status in (Job.Status.SUCCEEDED, Job.Status.FAILED):
        break
    time.sleep(0.5)
assert outcome.job.status == Job.Status.SUCCEEDED, outcome.job.error
# The clinician reviews half of the scored films with their true label (a film outside the
# model's scope has no answer to review).
names = ("normal", "pneumonia")
scored = Prediction.objects.filter(model_version=active, risk__isnull=False).order_by("scan_id")
for prediction in scored[:20]:
    index = int(prediction.scan.original_name[4:6])
    review_record(prediction=prediction, reviewer=clinician, label=names[labels[index]])
print(challenger.pk)
"""


def test_model_admin_reads_a_shadow_versions_agreement_dashboard(embedded_stack):
    env = dict(embedded_stack.env)
    setup = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SHADOW_SETUP],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert setup.returncode == 0, setup.stderr[-3000:]
    pk = setup.stdout.split()[-1]
    base = embedded_stack.base_url
    with browser_page(viewport={"width": 1280, "height": 1000}) as page:
        sign_in(
            page,
            base,
            "modeladmin",
            embedded_stack.passwords["modeladmin"],
            totp_secret=embedded_stack.passwords["modeladmin.totp"],
        )
        page.goto(f"{base}/models/versions/{pk}/shadow/")
        page.wait_for_selector(".chart .main-svg", state="attached")
        # Both charts drawn (Plotly draws several svg layers per chart).
        assert page.locator(".chart").count() == 2
        assert page.locator(".chart:has(.main-svg)").count() == 2
        counts = page.locator("[data-shadow-counts]")
        assert int(counts.get_attribute("data-scored")) > 0
        assert page.locator("[data-shadow-clinicians]").count() == 1
        assert page.locator("[data-shadow-confusion] tbody tr").count() >= 1
        assert not page.errors, page.errors
        page.screenshot(path=screenshot_dir() / "registry-shadow.png", full_page=True)
        body = page.locator("body").inner_text()
        assert "film" not in body  # no file name (and so no patient's) on a staff page
