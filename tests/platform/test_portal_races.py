"""Opening a portal account races another request for the same patient or user name: the
unique constraints decide and the loser gets PortalAccountError (a message), never an
IntegrityError 500."""

from __future__ import annotations

from unittest import mock

import pytest
from django.contrib.auth import get_user_model

from medai_site.patients import services
from medai_site.patients.models import PortalAccount
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db


def _checks_pass_anyway(manager):
    """The row the check looks for is committed just after the check: it sees nothing."""
    return mock.patch.object(
        manager, "filter", return_value=mock.Mock(exists=mock.Mock(return_value=False))
    )


def test_a_second_account_for_the_patient_opened_meanwhile_is_refused(users):
    patient = patient_for(users.clinician_a)
    services.portal_account_create(
        patient=patient, username="first", email="", created_by=users.clinician_a
    )
    with _checks_pass_anyway(PortalAccount.objects):
        with pytest.raises(services.PortalAccountError, match="just created"):
            services.portal_account_create(
                patient=patient, username="second", email="", created_by=users.clinician_a
            )
    assert PortalAccount.objects.filter(patient=patient).count() == 1
    assert not get_user_model().objects.filter(username="second").exists()


def test_a_user_name_taken_meanwhile_is_refused(users):
    first, second = patient_for(users.clinician_a), patient_for(users.clinician_a)
    services.portal_account_create(
        patient=first, username="pat", email="", created_by=users.clinician_a
    )
    with _checks_pass_anyway(get_user_model().objects):
        with pytest.raises(services.PortalAccountError, match="just created"):
            services.portal_account_create(
                patient=second, username="pat", email="", created_by=users.clinician_a
            )
    assert not PortalAccount.objects.filter(patient=second).exists()
