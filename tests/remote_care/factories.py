"""remote_care rows for tests. Devices come from the device_register service (it also starts
monitoring), so factories here take a device and derive the patient from it."""

from __future__ import annotations

import factory
from django.utils import timezone

from remote_care.models import Alert, Observation, ProgressionAnalysis, RiskScore
from tests.platform.factories import ModelVersionFactory, UserFactory


def news2_summary(total: int | None, *, any_single_three: bool = False, partial: bool = False):
    """The news2 detail an observation of this total carries (empty without a total)."""
    if total is None:
        return {}
    return {"total": total, "any_single_three": any_single_three, "is_partial": partial}


class ObservationFactory(factory.django.DjangoModelFactory):
    """A set of vital signs from ``device`` (required), by default taken now."""

    class Meta:
        model = Observation

    patient = factory.SelfAttribute("device.patient")
    taken_at = factory.LazyFunction(timezone.now)
    news2_total = None
    news2 = factory.LazyAttribute(lambda o: news2_summary(o.news2_total))


class AlertFactory(factory.django.DjangoModelFactory):
    """An open alert on ``observation`` (required), raised when it was taken."""

    class Meta:
        model = Alert

    patient = factory.SelfAttribute("observation.patient")
    level = Alert.Level.RED_SCORE
    news2_total = factory.LazyAttribute(lambda o: o.observation.news2_total or 0)
    reason = "test"
    raised_at = factory.SelfAttribute("observation.taken_at")


class RiskScoreFactory(factory.django.DjangoModelFactory):
    """A deterioration risk scored on ``observation`` (required)."""

    class Meta:
        model = RiskScore

    patient = factory.SelfAttribute("observation.patient")
    model_version = factory.SubFactory(ModelVersionFactory)
    taken_at = factory.SelfAttribute("observation.taken_at")
    hours_observed = 4


class ProgressionAnalysisFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ProgressionAnalysis

    dataset = "diabetes"
    created_by = factory.SubFactory(UserFactory)
