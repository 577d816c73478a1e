"""Demo data for seed_demo: the first GBSG2 treatment model."""

from __future__ import annotations

from typing import Any

from medai_site.core.demo import DemoRun
from medai_site.jobs.models import Job
from treatment.services import model_train_start, task_name


def demo_treatment_ensure(*, user: Any, train: bool) -> str:
    """If ``train`` and GBSG2 has no treatment model and none is training, queue a Cox run that
    goes into service when done. Idempotent; returns a line for the console ("" if nothing)."""
    from medai_site.registry.models import ModelVersion

    if not train or ModelVersion.objects.filter(task=task_name("gbsg2")).exists():
        return ""
    if Job.objects.filter(kind="treatment.training", status__in=["queued", "running"]).exists():
        return ""
    model_train_start(trial="gbsg2", kind="cox", activate=True, user=user)
    return "queued the GBSG2 treatment model (Cox, about a minute; in service when done)"


def demo_treatment_seed(run: DemoRun) -> str:
    """seed_demo's treatment step: :func:`demo_treatment_ensure` for the demo model admin."""
    return demo_treatment_ensure(user=run.model_admin, train=run.train)
