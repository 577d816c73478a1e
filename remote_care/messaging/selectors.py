"""Reads of messaging: threads, messages and unread counts, scoped to the care team or the
patient signed in to the portal."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery

from medai_site.patients.models import PortalAccount
from medai_site.patients.selectors import patient_list
from remote_care.models import Message, Thread, ThreadRead


def _with_unread(threads: QuerySet[Thread], *, user: Any) -> QuerySet[Thread]:
    # Unread = messages from the other side after the user's read mark (all of them when the
    # user never opened the thread), counted in the database.
    last_read = ThreadRead.objects.filter(thread=OuterRef("pk"), user=user).values("last_read_at")[
        :1
    ]
    return threads.annotate(
        read_mark=Subquery(last_read),
    ).annotate(
        unread=Count(
            "messages",
            filter=~Q(messages__sender=user)
            & (Q(read_mark__isnull=True) | Q(messages__sent_at__gt=F("read_mark"))),
        )
    )


def threads_for_clinician(*, user: Any, unread_only: bool = False) -> QuerySet[Thread]:
    """Conversations of the user's patients, most recent first, each with ``unread``."""
    threads = _with_unread(
        Thread.objects.filter(patient__in=patient_list(user=user)).select_related("patient"),
        user=user,
    )
    if unread_only:
        threads = threads.filter(unread__gt=0)
    return threads.order_by("-last_message_at")


def threads_for_patient(*, patient: Any, user: Any) -> QuerySet[Thread]:
    """A patient's own conversations, most recent first, each with ``unread`` for ``user``."""
    return _with_unread(Thread.objects.filter(patient=patient), user=user).order_by(
        "-last_message_at"
    )


def thread_get_for_clinician(*, user: Any, pk: int) -> Thread:
    """A conversation of one of the user's patients; Thread.DoesNotExist otherwise."""
    return Thread.objects.select_related("patient").get(pk=pk, patient__in=patient_list(user=user))


def thread_get_for_patient(*, patient: Any, pk: int) -> Thread:
    """One of the patient's own conversations; Thread.DoesNotExist otherwise."""
    return Thread.objects.select_related("patient").get(pk=pk, patient=patient)


def thread_messages(*, thread: Thread) -> QuerySet[Message]:
    """The thread's messages, oldest first."""
    return thread.messages.select_related("sender", "scan")


def message_get_for_clinician(*, user: Any, pk: int) -> Message:
    """A message in a conversation of one of the user's patients."""
    return Message.objects.select_related("thread__patient").get(
        pk=pk, thread__patient__in=patient_list(user=user)
    )


def message_get_for_patient(*, patient: Any, pk: int) -> Message:
    """A message in one of the patient's own conversations."""
    return Message.objects.select_related("thread__patient").get(pk=pk, thread__patient=patient)


def unread_total_for_clinician(*, user: Any) -> int:
    """Unread messages across the user's patients' conversations (the inbox badge)."""
    return sum(t.unread for t in threads_for_clinician(user=user, unread_only=True))


def portal_patient(*, user: Any) -> Any:
    """The patient whose portal account ``user`` is; PortalAccount.DoesNotExist otherwise."""
    return (
        PortalAccount.objects.select_related("patient")
        .get(user=user, revoked_at__isnull=True)
        .patient
    )


def unread_total_for_patient(*, patient: Any, user: Any) -> int:
    """Unread messages from the care team in the patient's conversations."""
    return sum(t.unread for t in threads_for_patient(patient=patient, user=user) if t.unread)


def unread_nav_badges(*, user: Any, portal: bool) -> dict[str, int]:
    """The navigation's unread-message badges for ``user`` (by URL name): the portal's
    Messages for a patient signed in to it, the inbox for a clinician, none otherwise."""
    from medai_site.core.roles import Role, has_role

    if portal:
        try:
            patient = portal_patient(user=user)
        except PortalAccount.DoesNotExist:
            return {}
        return {"portal:messages": unread_total_for_patient(patient=patient, user=user)}
    if has_role(user, Role.CLINICIAN):
        return {"remote_care:inbox": unread_total_for_clinician(user=user)}
    return {}


def portal_account_for(*, patient: Any) -> PortalAccount | None:
    """The patient's portal account with its user, or None."""
    return PortalAccount.objects.filter(patient=patient).select_related("user").first()
