"""treatment rows for tests, made directly (no model fitted or run)."""

from __future__ import annotations

import factory

from tests.platform.factories import PatientFactory, UserFactory
from treatment.models import CohortAnalysis, TreatmentAssessment


class TreatmentAssessmentFactory(factory.django.DjangoModelFactory):
    """A pending GBSG2 assessment of ``patient`` with no inputs."""

    class Meta:
        model = TreatmentAssessment

    patient = factory.SubFactory(PatientFactory)
    trial = "gbsg2"
    inputs = factory.LazyFunction(dict)
    created_by = factory.SubFactory(UserFactory)


class CohortAnalysisFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CohortAnalysis

    trial = "gbsg2"
    covariate = "age"
    created_by = factory.SubFactory(UserFactory)
