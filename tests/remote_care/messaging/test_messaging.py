"""Messaging between patients and care teams, the patient portal and its boundary."""

from __future__ import annotations

import io

import pytest
from django.core import mail
from django.core.files.storage import default_storage
from django.test import Client
from django.urls import reverse
from PIL import Image

from medai_site.audit.models import AuditEvent
from medai_site.core.roles import Role, user_roles
from medai_site.patients.models import PortalAccount
from medai_site.patients.services import (
    PortalAccountError,
    portal_account_create,
    portal_account_revoke,
)
from remote_care.messaging.photos import PhotoRejected, photo_normalise
from remote_care.messaging.selectors import threads_for_clinician, unread_total_for_clinician
from remote_care.messaging.services import MessageRejected, message_send, thread_start
from remote_care.models import Message, Thread
from tests.platform.factories import patient_for
from tests.support.clients import login

pytestmark = pytest.mark.django_db


def jpeg_with_exif(size=(64, 48)) -> bytes:
    image = Image.new("RGB", size, (180, 90, 60))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


@pytest.fixture
def portal(users):
    """Clinician A's patient with an open portal account (password set), and B's patient."""
    patient = patient_for(users.clinician_a)
    user = portal_account_create(
        patient=patient, username="pat_a", email="pat@example.org", created_by=users.clinician_a
    ).account.user
    user.set_password("a-long-portal-password-1")
    user.save()
    other = patient_for(users.clinician_b)
    other_user = portal_account_create(
        patient=other, username="pat_b", email="", created_by=users.clinician_b
    ).account.user
    users.clinician_a.email = "dr.a@example.org"
    users.clinician_a.save()
    return patient, user, other, other_user


def test_photo_is_re_encoded_upright_without_metadata():
    photo = photo_normalise(jpeg_with_exif())
    stored = Image.open(io.BytesIO(photo.data))
    assert stored.format == "JPEG"
    assert not stored.getexif()
    # EXIF orientation 6 is applied to the pixels, so the stored photo is upright.
    assert (stored.width, stored.height) == (48, 64)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"%PDF-1.7 not a photo", "not a JPEG or PNG"),
        (b"GIF89a" + b"\0" * 40, "not a JPEG or PNG"),
        (jpeg_with_exif()[:200], "could not be read"),
    ],
)
def test_photo_rejections_say_why(data, message):
    with pytest.raises(PhotoRejected, match=message):
        photo_normalise(data)


def test_portal_account_is_a_patient_only_user_with_a_one_time_link(users, client):
    patient = patient_for(users.clinician_a)
    invitation = portal_account_create(
        patient=patient, username="jo", email="jo@example.org", created_by=users.clinician_a
    )
    user = invitation.account.user
    assert user_roles(user) == {Role.PATIENT}
    assert not user.has_usable_password()
    # The link opens a set-password form; setting it signs the patient in to the portal.
    response = client.get(invitation.activation_path, follow=True)
    assert response.status_code == 200 and b"Choose your password" in response.content
    form_url = response.redirect_chain[-1][0]
    response = client.post(
        form_url,
        {"new_password1": "Sunny-meadow-4821", "new_password2": "Sunny-meadow-4821"},
    )
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")
    assert client.get(reverse("portal:home")).status_code == 200
    # Used once: the same link no longer works.
    fresh = type(client)()
    response = fresh.get(invitation.activation_path, follow=True)
    assert b"no longer works" in response.content
    with pytest.raises(PortalAccountError, match="already has a portal account"):
        portal_account_create(
            patient=patient, username="jo2", email="", created_by=users.clinician_a
        )
    other = patient_for(users.clinician_a)
    with pytest.raises(PortalAccountError, match="taken"):
        portal_account_create(patient=other, username="JO", email="", created_by=users.clinician_a)


def test_clinician_opens_portal_account_from_the_patient_page(
    users, django_capture_on_commit_callbacks
):
    patient = patient_for(users.clinician_a)
    client = login(users.clinician_a)
    url = reverse("remote_care:portal_access", args=[patient.pk])
    assert client.post(url, {"action": "create", "username": "bad name!"}).status_code == 400
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url, {"action": "create", "username": "kim", "email": "k@example.org"}
        )
    assert response.status_code == 302
    page = client.get(reverse("remote_care:patient_monitoring", args=[patient.pk]))
    assert b"/portal/activate/" in page.content
    # Shown once only.
    again = client.get(reverse("remote_care:patient_monitoring", args=[patient.pk]))
    assert b"/portal/activate/" not in again.content
    assert [m.to for m in mail.outbox] == [["k@example.org"]]
    assert patient.mrn not in mail.outbox[0].body
    client.post(url, {"action": "revoke"})
    account = PortalAccount.objects.get(patient=patient)
    assert account.revoked_at is not None and not account.user.is_active


def test_patient_stays_inside_the_portal(users, portal):
    patient, user, other, _ = portal
    client = login(user)
    assert client.get("/").url == reverse("portal:home")
    for url in [
        reverse("patients:list"),
        reverse("patients:detail", args=[patient.pk]),
        reverse("remote_care:board"),
        reverse("jobs:list"),
        reverse("remote_care:inbox"),
    ]:
        assert client.get(url).status_code == 403, url
    home = client.get(reverse("portal:home"))
    assert home.status_code == 200
    assert patient.given_name.encode() in home.content
    assert b"Patients" not in home.content.split(b"<main")[0]  # no staff navigation


def test_patient_cannot_read_another_patients_conversation(users, portal):
    patient, user, other, other_user = portal
    theirs = thread_start(
        patient=other,
        subject="Private",
        started_by=other_user,
        from_patient=True,
        body="secret",
        photo=jpeg_with_exif(),
    )
    message = theirs.messages.get()
    client = login(user)
    assert client.get(reverse("portal:thread", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("portal:photo", args=[message.pk])).status_code == 404
    assert client.post(reverse("portal:thread", args=[theirs.pk]), {"body": "x"}).status_code == 404
    assert theirs.messages.count() == 1
    # Nor can clinician A, outside that patient's care team.
    clinician = login(users.clinician_a)
    assert clinician.get(reverse("remote_care:thread", args=[theirs.pk])).status_code == 404
    assert clinician.get(reverse("remote_care:message_photo", args=[message.pk])).status_code == 404


def test_conversation_with_unread_counts_photos_and_audit(
    users, portal, django_capture_on_commit_callbacks
):
    patient, user, _, _ = portal
    client = login(user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("portal:thread_new"),
            {"subject": "Swollen ankle", "body": "Since yesterday.", "photo": _upload()},
        )
        thread = Thread.objects.get(patient=patient)
        assert response.url == reverse("portal:thread", args=[thread.pk])
        client.post(reverse("portal:thread", args=[thread.pk]), {"body": "It hurts when I walk."})
    # The care team is told by e-mail, without clinical content.
    notices = [m for m in mail.outbox if m.to == ["dr.a@example.org"]]
    assert len(notices) == 2 and "ankle" not in notices[0].body
    for notice in notices:
        for identifier in (patient.mrn, patient.given_name, patient.family_name):
            assert identifier not in notice.subject and identifier not in notice.body
    clinician = users.clinician_a
    assert unread_total_for_clinician(user=clinician) == 2
    inbox = login(clinician).get(reverse("remote_care:inbox"))
    assert b"Swollen ankle" in inbox.content and b'aria-label="2 unread"' in inbox.content
    # The other clinician's inbox does not show it.
    assert (
        b"Swollen ankle" not in login(users.clinician_b).get(reverse("remote_care:inbox")).content
    )
    page = login(clinician).get(reverse("remote_care:thread", args=[thread.pk]))
    assert page.status_code == 200 and b"It hurts when I walk." in page.content
    assert unread_total_for_clinician(user=clinician) == 0
    assert AuditEvent.objects.filter(
        actor=clinician, patient=patient, action=AuditEvent.Action.PATIENT_VIEWED
    ).exists()
    photo_message = thread.messages.exclude(photo="").get()
    photo = login(clinician).get(reverse("remote_care:message_photo", args=[photo_message.pk]))
    assert photo["Content-Type"] == "image/jpeg" and photo["Cache-Control"] == "private, no-store"
    assert not Image.open(io.BytesIO(b"".join(photo.streaming_content))).getexif()
    # The reply is unread for the patient until they open the thread.
    login(clinician).post(reverse("remote_care:thread", args=[thread.pk]), {"body": "Call us."})
    assert b'aria-label="1 unread"' in client.get(reverse("portal:home")).content
    client.get(reverse("portal:thread", args=[thread.pk]))
    assert b"unread" not in client.get(reverse("portal:home")).content
    assert [t.unread for t in threads_for_clinician(user=clinician)] == [0]


def test_bad_messages_are_refused_and_store_nothing(users, portal):
    patient, user, _, _ = portal
    client = login(user)
    response = client.post(reverse("portal:thread_new"), {"subject": "Hi", "body": ""})
    assert response.status_code == 400 and b"Write a message or attach a photo" in response.content
    response = client.post(
        reverse("portal:thread_new"),
        {"subject": "Scan", "body": "", "photo": _upload(b"%PDF-1.4 nope", "scan.pdf")},
    )
    assert response.status_code == 400 and b"not a JPEG or PNG" in response.content
    response = client.post(reverse("portal:thread_new"), {"subject": "", "body": "x"})
    assert response.status_code == 400
    assert not Thread.objects.exists() and not Message.objects.exists()
    with pytest.raises(MessageRejected, match="limited to"):
        thread_start(
            patient=patient, subject="Long", started_by=user, from_patient=True, body="x" * 6000
        )
    assert not Thread.objects.exists()
    assert not default_storage.exists("messages")


def test_photo_goes_on_to_diagnosis_once(users, portal, active_model):
    patient, user, _, _ = portal
    thread = thread_start(
        patient=patient,
        subject="Photo of my X-ray film",
        started_by=user,
        from_patient=True,
        photo=jpeg_with_exif((96, 96)),
        photo_name="film.jpg",
    )
    message = thread.messages.get()
    client = login(users.clinician_a)
    url = reverse("remote_care:message_photo_to_scan", args=[message.pk])
    assert client.post(url, {"task": "nope"}).status_code == 400
    response = client.post(url, {"task": active_model.task})
    assert response.status_code == 302 and "/diagnosis/" in response.url
    message.refresh_from_db()
    assert message.scan is not None and message.scan.patient == patient
    assert message.scan.original_name == "film.jpg"
    again = client.post(url, {"task": active_model.task}, follow=True)
    assert b"already been sent to diagnosis" in again.content
    # A clinician outside the care team cannot forward it.
    assert login(users.clinician_b).post(url, {"task": active_model.task}).status_code == 404


def test_revoked_patient_is_signed_out(users, portal):
    patient, user, _, _ = portal
    client = login(user)
    assert client.get(reverse("portal:home")).status_code == 200
    portal_account_revoke(
        account=PortalAccount.objects.get(user=user), revoked_by=users.clinician_a
    )
    response = client.get(reverse("portal:home"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_clinician_starts_a_conversation(users, portal, django_capture_on_commit_callbacks):
    patient, user, _, _ = portal
    client = login(users.clinician_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("remote_care:thread_new", args=[patient.pk]),
            {"subject": "Your readings", "body": "Please take your BP twice a day."},
        )
    thread = Thread.objects.get(patient=patient)
    assert response.url == reverse("remote_care:thread", args=[thread.pk])
    assert mail.outbox[-1].to == ["pat@example.org"]
    message_send(thread=thread, sender=user, from_patient=True, body="OK")
    assert [m.from_patient for m in thread.messages.all()] == [False, True]


def _upload(data: bytes | None = None, name: str = "ankle.jpg"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data or jpeg_with_exif(), content_type="image/jpeg")


# --- Portal takeover (issue #12, defect 6) -------------------------------------------------


def _set_password_via(client, path: str, password: str = "Sunny-meadow-4821"):  # noqa: S107
    """Open an activation link and submit a new password; the final response."""
    response = client.get(path, follow=True)
    if b'name="new_password1"' not in response.content:
        return response
    return client.post(
        response.redirect_chain[-1][0], {"new_password1": password, "new_password2": password}
    )


def _activation_paths(text: str) -> list[str]:
    import re

    return re.findall(r"/portal/activate/[^/\s]+/[^/\s]+/", text)


def test_clinician_cannot_see_or_use_a_reissued_link_of_an_activated_account(
    users, portal, django_capture_on_commit_callbacks
):
    patient, user, _, _ = portal  # activated: the patient has set a password
    client = login(users.clinician_a)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("remote_care:portal_access", args=[patient.pk]), {"action": "link"}
        )
    assert response.status_code == 302
    page = client.get(reverse("remote_care:patient_monitoring", args=[patient.pk]))
    assert _activation_paths(page.content.decode()) == []
    assert "e-mailed to the patient" in page.content.decode()
    # The link went to the patient's address on file, and only there.
    assert [m.to for m in mail.outbox] == [["pat@example.org"]]
    (emailed,) = _activation_paths(mail.outbox[0].body)
    user.refresh_from_db()
    assert user.check_password("a-long-portal-password-1")


def test_reissue_for_an_activated_account_without_address_is_refused(users, portal):
    patient, user, _, _ = portal
    user.email = ""
    user.save(update_fields=["email"])
    client = login(users.clinician_a)
    response = client.post(
        reverse("remote_care:portal_access", args=[patient.pk]), {"action": "link"}
    )
    assert response.status_code == 400
    assert "no e-mail address on file" in response.content.decode()
    page = client.get(reverse("remote_care:patient_monitoring", args=[patient.pk]))
    assert _activation_paths(page.content.decode()) == []
    assert not mail.outbox
    user.refresh_from_db()
    assert user.check_password("a-long-portal-password-1")


@pytest.mark.parametrize("whose", ["clinician_a", "model_admin", "superuser"])
def test_activation_refuses_reset_tokens_of_users_who_are_not_portal_accounts(users, whose):
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from tests.platform.factories import UserFactory

    if whose == "superuser":
        victim = UserFactory(username="it_admin", is_staff=True, is_superuser=True)
    else:
        victim = getattr(users, whose)
    victim.set_password("the-real-owners-password-9")
    victim.save()
    path = reverse(
        "portal:activate",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(victim.pk)),
            "token": default_token_generator.make_token(victim),
        },
    )
    response = _set_password_via(Client(), path, "attacker-chosen-pass-77")
    assert b"no longer works" in response.content
    victim.refresh_from_db()
    assert victim.check_password("the-real-owners-password-9")


def test_activation_refuses_a_deactivated_portal_user_with_a_valid_looking_token(users):
    patient = patient_for(users.clinician_a)
    invitation = portal_account_create(
        patient=patient, username="lee", email="", created_by=users.clinician_a
    )
    portal_account_revoke(account=invitation.account, revoked_by=users.clinician_a)
    response = _set_password_via(Client(), invitation.activation_path)
    assert b"no longer works" in response.content
    invitation.account.user.refresh_from_db()
    assert not invitation.account.user.has_usable_password()


def test_a_newer_link_replaces_older_ones_and_every_issue_is_recorded(users, client):
    from medai_site.patients.models import PortalLink
    from medai_site.patients.services import portal_link_issue

    patient = patient_for(users.clinician_a)
    first = portal_account_create(
        patient=patient, username="sam", email="", created_by=users.clinician_a
    )
    # Never activated: the clinician may still be shown a link (to hand to the patient).
    second = portal_link_issue(account=first.account, issued_by=users.clinician_b)
    assert second.activation_path and second.activation_path != first.activation_path
    response = _set_password_via(type(client)(), first.activation_path)
    assert b"no longer works" in response.content
    response = _set_password_via(client, second.activation_path)
    assert response.status_code == 302 and response["Location"] == reverse("portal:home")

    links = list(PortalLink.objects.filter(account=first.account).order_by("pk"))
    assert [(link.issued_by, link.channel) for link in links] == [
        (users.clinician_a, PortalLink.Channel.SHOWN),
        (users.clinician_b, PortalLink.Channel.SHOWN),
    ]
    assert links[0].used_at is None and links[1].used_at is not None
    first.account.refresh_from_db()
    assert first.account.activated_at is not None
    issued = AuditEvent.objects.filter(detail__portal_account="link_issued").order_by("pk")
    assert [(e.actor_id, e.detail["channel"]) for e in issued] == [
        (users.clinician_a.pk, "shown"),
        (users.clinician_b.pk, "shown"),
    ]
    # Once activated, a further link is e-mail only: with no address it is refused.
    with pytest.raises(PortalAccountError, match="no e-mail address on file"):
        portal_link_issue(account=first.account, issued_by=users.clinician_a)
    assert PortalLink.objects.filter(account=first.account).count() == 2


def test_long_conversation_opens_on_its_newest_page_above_the_reply_form(users, portal):
    """Pages run oldest to newest; without ?page= both sides see the newest messages with
    the reply form under them, and a bad page number never fails."""
    from datetime import timedelta

    from django.utils import timezone

    patient, portal_user, _, _ = portal
    thread = thread_start(
        patient=patient,
        subject="Knee",
        started_by=users.clinician_a,
        from_patient=False,
        body="msg-00",
    )
    start = timezone.now() - timedelta(hours=2)
    Message.objects.bulk_create(
        Message(
            thread=thread,
            sender=portal_user if n % 2 else users.clinician_a,
            from_patient=bool(n % 2),
            body=f"msg-{n:02d}",
            sent_at=start + timedelta(minutes=n),
        )
        for n in range(1, 65)
    )
    pages = {
        "clinician": (login(users.clinician_a), reverse("remote_care:thread", args=[thread.pk])),
        "patient": (login(portal_user), reverse("portal:thread", args=[thread.pk])),
    }
    for side, (client, url) in pages.items():
        newest = client.get(url).content.decode()
        assert "Showing 61–65 of 65 messages" in newest, side
        assert "msg-64" in newest and "msg-59" not in newest, side
        assert newest.index("msg-64") < newest.index("<h2>Reply</h2>"), side
        assert 'id="latest"' in newest and "Earlier messages" in newest, side
        oldest = client.get(url, {"page": "1"}).content.decode()
        assert "Showing 1–30 of 65 messages" in oldest, side
        assert "msg-00" not in oldest  # thread_start's message was sent now: the newest
        assert "msg-01" in oldest and "msg-31" not in oldest and 'id="latest"' not in oldest
        assert "<h2>Reply</h2>" in oldest  # the form stays usable on every page
        for bad, shown in [("abc", "61–65"), ("0", "1–30"), ("999", "61–65"), ("-2", "1–30")]:
            response = client.get(url, {"page": bad})
            assert response.status_code == 200, (side, bad)
            assert f"Showing {shown} of 65" in response.content.decode(), (side, bad)
    for side, (client, url) in pages.items():
        reply = client.post(url + "?page=1", {"body": f"reply from the {side}"})
        assert reply.status_code == 302 and reply.url.endswith("#latest")
        assert f"reply from the {side}" in client.get(reply.url).content.decode()
