"""Every write of messaging: threads and messages between patients and their care teams,
photos in messages, and a photo sent on to imaging."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.media import media_writes
from remote_care.models import Message, Thread, ThreadRead

MAX_MESSAGE_CHARS = 5000


class MessageRejected(ValueError):
    """A message that cannot be sent; the message says why."""


def _message_notify(*, message: Message) -> None:
    # Tell the other side there is something to read; e-mail carries no clinical content.
    thread = message.thread
    if message.from_patient:
        team = thread.patient.memberships.select_related("user")
        recipients = [m.user.email for m in team if m.user.email and m.user.is_active]
        subject = "MedAI: new message from a patient in your care team"
        body = "A patient in your care team has sent a message. Sign in to MedAI to read it.\n"
    else:
        account = getattr(thread.patient, "portal_account", None)
        user = account.user if account and account.is_active else None
        recipients = [user.email] if user and user.email else []
        subject = "MedAI: a new message from your care team"
        body = "Your care team has replied. Sign in to the MedAI patient portal to read it.\n"
    if recipients:
        send_mail(
            subject=subject,
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
            fail_silently=True,
        )


def message_send(
    *,
    thread: Thread,
    sender: Any,
    from_patient: bool,
    body: str = "",
    photo: bytes | None = None,
    photo_name: str = "",
    request: Any = None,
) -> Message:
    """Add a message (text and/or a photo) to a thread; MessageRejected for an empty or
    oversized message or a file that is not a photo. The photo is stored metadata-free; the
    sender's own read mark moves past it; the other side is notified after commit."""
    from remote_care.messaging.photos import PhotoRejected, photo_normalise

    body = body.strip()
    if not body and not photo:
        raise MessageRejected("Write a message or attach a photo.")
    if len(body) > MAX_MESSAGE_CHARS:
        raise MessageRejected(
            f"Messages are limited to {MAX_MESSAGE_CHARS} characters; this one has {len(body)}."
        )
    normalised = None
    if photo is not None:
        try:
            normalised = photo_normalise(photo)
        except PhotoRejected as exc:
            raise MessageRejected(str(exc)) from None
    now = timezone.now()
    # No photo, not even a partial one, outlives a failed send (ENOSPC, a rollback).
    with media_writes() as writes, transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=thread.pk)
        message = Message(
            thread=thread,
            sender=sender,
            from_patient=from_patient,
            body=body,
            sent_at=now,
            photo_name=(photo_name or "photo")[:255] if normalised else "",
        )
        if normalised is not None:
            writes.save(message.photo, "photo.jpg", ContentFile(normalised.data))
        message.save()
        thread.last_message_at = now
        thread.save(update_fields=["last_message_at"])
        ThreadRead.objects.update_or_create(
            thread=thread, user=sender, defaults={"last_read_at": now}
        )
        audit_record(
            action=AuditEvent.Action.RECORD_CHANGED,
            actor=sender,
            request=request,
            obj=message,
            patient=thread.patient,
            detail={"message_sent": thread.pk, "photo": bool(normalised)},
        )
        transaction.on_commit(lambda: _message_notify(message=message))
    return message


def thread_start(
    *,
    patient: Any,
    subject: str,
    started_by: Any,
    from_patient: bool,
    body: str = "",
    photo: bytes | None = None,
    photo_name: str = "",
    request: Any = None,
) -> Thread:
    """Open a conversation with its first message; nothing is stored when that message is
    rejected (MessageRejected)."""
    subject = subject.strip()
    if not subject:
        raise MessageRejected("Give the conversation a subject.")
    with media_writes(), transaction.atomic():
        thread = Thread.objects.create(
            patient=patient,
            subject=subject[:200],
            started_by=started_by,
            last_message_at=timezone.now(),
        )
        message_send(
            thread=thread,
            sender=started_by,
            from_patient=from_patient,
            body=body,
            photo=photo,
            photo_name=photo_name,
            request=request,
        )
    return thread


def thread_mark_read(*, thread: Thread, user: Any) -> None:
    """Everything in the thread up to now counts as read by ``user``; idempotent."""
    ThreadRead.objects.update_or_create(
        thread=thread, user=user, defaults={"last_read_at": timezone.now()}
    )


def message_photo_to_scan(*, message: Message, user: Any, task: str, request: Any = None) -> Any:
    """Send a message's photo on to diagnosis as a scan of the thread's patient (classified by
    ``task``'s active model). Returns the diagnosis UploadOutcome; MessageRejected when the
    message has no photo or was forwarded already (one photo, one scan)."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from diagnosis.services import scan_upload

    with transaction.atomic():
        message = (
            Message.objects.select_for_update().select_related("thread__patient").get(pk=message.pk)
        )
        if not message.photo:
            raise MessageRejected("This message has no photo.")
        if message.scan_id is not None:
            raise MessageRejected("This photo has already been sent to diagnosis.")
        with message.photo.open("rb") as handle:
            data = handle.read()
        upload = SimpleUploadedFile(
            message.photo_name or "photo.jpg", data, content_type="image/jpeg"
        )
        outcome = scan_upload(
            patient=message.thread.patient,
            files=[upload],
            uploaded_by=user,
            task=task,
            request=request,
        )
        if not outcome.scans:
            reason = outcome.rejected[0].message if outcome.rejected else "it was not accepted"
            raise MessageRejected(f"Diagnosis did not accept the photo: {reason}")
        message.scan = outcome.scans[0]
        message.save(update_fields=["scan"])
    return outcome
