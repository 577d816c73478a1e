from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.test import Client

from medai_site.core.roles import Role
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def users(db):
    """One user per role: two clinicians (A, B), a researcher and a model admin."""
    return SimpleNamespace(
        clinician_a=UserFactory(username="clin_a", roles=[Role.CLINICIAN]),
        clinician_b=UserFactory(username="clin_b", roles=[Role.CLINICIAN]),
        researcher=UserFactory(username="research", roles=[Role.RESEARCHER]),
        model_admin=UserFactory(username="madmin", roles=[Role.MODEL_ADMIN], is_staff=True),
    )


def login(user) -> Client:
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


@pytest.fixture
def client_for():
    return login
