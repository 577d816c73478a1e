"""Audit: sign-in events, patient views, and an append-only trail (even for raw SQL)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test import Client

from medai_site.audit.models import AuditEvent, AuditImmutableError
from medai_site.audit.services import audit_record
from tests.platform.factories import PASSWORD, patient_for

pytestmark = pytest.mark.django_db


def test_login_logout_and_failed_login_are_audited(users):
    client = Client(REMOTE_ADDR="10.1.2.3")
    client.post("/accounts/login/", {"username": "clin_a", "password": "wrong"})
    client.post("/accounts/login/", {"username": "clin_a", "password": PASSWORD})
    client.post("/accounts/logout/")
    actions = list(
        AuditEvent.objects.order_by("id").values_list(
            "action", "outcome", "actor_username", "ip_address"
        )
    )
    assert actions == [
        ("login_failed", "failure", "clin_a", "10.1.2.3"),
        ("login", "success", "clin_a", "10.1.2.3"),
        ("logout", "success", "clin_a", "10.1.2.3"),
    ]


def test_patient_view_is_audited_and_denied_access_too(users, client_for):
    patient = patient_for(users.clinician_a)
    client_for(users.clinician_a).get(f"/patients/{patient.pk}/")
    client_for(users.clinician_b).get(f"/patients/{patient.pk}/")
    viewed = AuditEvent.objects.get(action="patient_viewed")
    assert viewed.patient == patient and viewed.actor == users.clinician_a
    denied = AuditEvent.objects.get(action="access_denied")
    assert denied.actor == users.clinician_b and denied.outcome == "denied"


def test_patient_list_view_is_audited(users, client_for):
    patient = patient_for(users.clinician_a)
    client_for(users.clinician_a).get("/patients/?q=" + patient.family_name)
    event = AuditEvent.objects.get(action="patient_list_viewed")
    assert event.detail["shown"] == [patient.pk]


def test_audit_events_cannot_be_changed_or_deleted(users):
    event = audit_record(action=AuditEvent.Action.EXPORTED, actor=users.clinician_a)
    event.detail = {"tampered": True}
    with pytest.raises(AuditImmutableError):
        event.save()
    with pytest.raises(AuditImmutableError):
        event.delete()
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.filter(pk=event.pk).update(action="login")
    with pytest.raises(AuditImmutableError):
        AuditEvent.objects.all().delete()


def test_database_refuses_raw_update_and_delete(users):
    event = audit_record(action=AuditEvent.Action.EXPORTED, actor=users.clinician_a)
    for sql in (
        "UPDATE audit_auditevent SET action = 'login' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(sql, [event.pk])
    event.refresh_from_db()
    assert event.action == "exported"


def test_audit_admin_is_read_only(users, client_for, django_user_model):
    superuser = django_user_model.objects.create_superuser("root", password=PASSWORD)
    audit_record(action=AuditEvent.Action.EXPORTED, actor=users.clinician_a)
    client = client_for(superuser)
    assert client.get("/admin/audit/auditevent/").status_code == 200
    event = AuditEvent.objects.first()
    assert client.get(f"/admin/audit/auditevent/{event.pk}/delete/").status_code == 403
    assert client.get("/admin/audit/auditevent/add/").status_code == 403
    # A model admin is staff but not a privacy officer: no access to the trail.
    assert client_for(users.model_admin).get("/admin/audit/auditevent/").status_code == 403


def test_a_refused_object_without_a_patient_is_audited_without_one(users):
    from django.test import RequestFactory

    from medai_site.audit.exceptions import ObjectNotVisible
    from medai_site.audit.services import audit_access_denied
    from tests.platform.factories import ModelVersionFactory

    version = ModelVersionFactory()
    request = RequestFactory().get(f"/somewhere/{version.pk}/")
    request.user = users.researcher
    refusal = ObjectNotVisible("No such version.", model=type(version), pk=version.pk)
    event = audit_access_denied(request=request, refusal=refusal)
    assert (event.action, event.outcome, event.patient_id) == ("access_denied", "denied", None)
    assert event.object_id == str(version.pk) and event.detail["exists"] is True
