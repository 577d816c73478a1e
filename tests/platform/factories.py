from __future__ import annotations

import datetime

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from medai_site.core.roles import Role
from medai_site.jobs.models import Job
from medai_site.patients.models import CareTeamMembership, Patient
from medai_site.registry.models import ModelVersion

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: list[Role] | None, **kwargs: object) -> None:
        if create and extracted:
            for role in extracted:
                group, _ = Group.objects.get_or_create(name=str(role))
                self.groups.add(group)
        if create:
            self.save()


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    mrn = factory.Sequence(lambda n: f"MRN{n:06d}")
    given_name = factory.Faker("first_name")
    family_name = factory.Faker("last_name")
    birth_date = factory.Faker(
        "date_between", start_date=datetime.date(1930, 1, 1), end_date=datetime.date(2010, 1, 1)
    )
    sex = Patient.Sex.FEMALE


class ModelVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelVersion

    task = "test.task"
    version = factory.Sequence(lambda n: n + 1)
    status = ModelVersion.Status.READY
    metrics = factory.LazyFunction(lambda: {"auc": 0.9, "accuracy": 0.85})


class CareTeamMembershipFactory(factory.django.DjangoModelFactory):
    """A member (not the responsible clinician) of a patient's care team."""

    class Meta:
        model = CareTeamMembership

    patient = factory.SubFactory(PatientFactory)
    user = factory.SubFactory(UserFactory)
    role = CareTeamMembership.Role.MEMBER


class JobFactory(factory.django.DjangoModelFactory):
    """A queued job; the default kind is the test app's slow job (tests/support/jobs.py)."""

    class Meta:
        model = Job

    kind = "test.slow"
    title = factory.Sequence(lambda n: f"job {n}")
    owner = factory.SubFactory(UserFactory)


def patient_for(user: object, **kwargs: object) -> Patient:
    """A new patient with ``user`` as their responsible clinician."""
    patient = PatientFactory(**kwargs)
    CareTeamMembershipFactory(patient=patient, user=user, role=CareTeamMembership.Role.RESPONSIBLE)
    return patient
