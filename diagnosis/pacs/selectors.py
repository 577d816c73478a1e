"""Reads for received DICOM studies (match candidates, the unmatched-studies inbox) and for
results sent to PACS destinations."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet

from diagnosis.imaging.patient_match import Candidate, family_key, name_key, resembles
from diagnosis.models import DicomSend, DicomWebSender, UnmatchedStudy
from diagnosis.selectors import active_versions, scan_list
from medai_site.core.roles import Role, has_role
from medai_site.patients.models import Patient
from medai_site.patients.selectors import patient_list

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from medai_site.core.roles import AnyUser


def mrn_candidates(patient_id: str) -> list[Candidate]:
    """The patients whose MRN is ``patient_id`` (exactly), with whether a care team has them."""
    patients = Patient.objects.filter(mrn=patient_id).prefetch_related("memberships")
    return [
        Candidate(
            pk=p.pk,
            family_name=p.family_name,
            given_name=p.given_name,
            birth_date=p.birth_date.strftime("%Y%m%d"),
            in_care=bool(p.memberships.all()),
        )
        for p in patients
    ]


def receiver_task() -> str:
    """The model task received studies are classified with: MEDAI_DICOM_TASK when set, else the
    first imaging model in service, else "" (none is: the scans are stored and wait for the
    first model put into service). A header that fits another model's contract better is
    routed there."""
    from django.conf import settings

    if settings.MEDAI_DICOM_TASK:
        return str(settings.MEDAI_DICOM_TASK)
    first = active_versions().order_by("task").values_list("task", flat=True).first()
    return first or ""


def unmatched_study_list(*, user: AnyUser) -> QuerySet[UnmatchedStudy]:
    """Studies waiting for a patient that could be one of the clinician's care-team patients
    (same MRN, same name, or same birth date and one name: ``resembles``); none for other
    roles. A study that resembles nobody in any team waits, unseen, until its patient is
    registered or joins a team (its sender's identifiers belong to no team's patient)."""
    if not getattr(user, "is_authenticated", False) or not has_role(user, Role.CLINICIAN):
        return UnmatchedStudy.objects.none()
    patients = [
        (p.mrn, p.family_name, p.given_name, p.birth_date.strftime("%Y%m%d"))
        for p in patient_list(user=user).only("mrn", "family_name", "given_name", "birth_date")
    ]
    waiting = UnmatchedStudy.objects.filter(status=UnmatchedStudy.Status.WAITING)
    visible = [
        study.pk
        for study in waiting.only("pk", "patient_id", "patient_name", "birth_date")
        if any(
            resembles(
                patient_id=study.patient_id,
                display_name=study.patient_name,
                birth_date=study.birth_date,
                mrn=mrn,
                family_name=family,
                given_name=given,
                patient_birth_date=born,
            )
            for mrn, family, given, born in patients
        )
    ]
    return waiting.filter(pk__in=visible)


def unmatched_study_get(*, user: AnyUser, pk: int) -> UnmatchedStudy:
    """One waiting study; UnmatchedStudy.DoesNotExist once assigned or for non-clinicians."""
    return unmatched_study_list(user=user).get(pk=pk)


def hospital_it(user: AnyUser) -> bool:
    """Whether ``user`` is hospital IT (an active superuser): the one role that may see the
    identifiers of a study no care team could claim, to route it (model admins and
    researchers never see identifiers)."""
    return bool(getattr(user, "is_authenticated", False) and user.is_active and user.is_superuser)


def _claimed(studies: list[UnmatchedStudy]) -> set[int]:
    # resembles() needs the same MRN, family name or birth date, so the studies are indexed
    # by those and each care-team patient is compared only with studies sharing one.
    index: dict[tuple[str, str], list[UnmatchedStudy]] = defaultdict(list)
    for study in studies:
        for key in (("id", study.patient_id), ("family", family_key(study.patient_name))):
            if key[1]:
                index[key].append(study)
        if study.birth_date:
            index[("born", study.birth_date)].append(study)
    in_care = (
        Patient.objects.filter(
            memberships__user__is_active=True, memberships__user__groups__name=Role.CLINICIAN
        )
        .distinct()
        .values_list("mrn", "family_name", "given_name", "birth_date")
    )
    claimed: set[int] = set()
    for mrn, family, given, born in in_care.iterator(chunk_size=2000):
        born_text = born.strftime("%Y%m%d")
        keys = (("id", mrn), ("family", name_key(family)), ("born", born_text))
        for study in {s for key in keys for s in index.get(key, ())}:
            if study.pk not in claimed and resembles(
                patient_id=study.patient_id,
                display_name=study.patient_name,
                birth_date=study.birth_date,
                mrn=mrn,
                family_name=family,
                given_name=given,
                patient_birth_date=born_text,
            ):
                claimed.add(study.pk)
    return claimed


def unmatched_study_unclaimed_list(*, user: AnyUser, limit: int = 500) -> list[UnmatchedStudy]:
    """Waiting studies that resemble no patient of any clinician's care team (so no clinician
    sees them in the inbox), newest first, for hospital IT; [] for anyone else."""
    if not hospital_it(user):
        return []
    waiting = list(
        UnmatchedStudy.objects.filter(status=UnmatchedStudy.Status.WAITING).prefetch_related(
            "instances"
        )[:limit]
    )
    claimed = _claimed(waiting)
    return [study for study in waiting if study.pk not in claimed]


def unmatched_study_unclaimed_get(*, user: AnyUser, pk: int) -> UnmatchedStudy:
    """One waiting study no care team could claim, for hospital IT;
    UnmatchedStudy.DoesNotExist otherwise."""
    if not hospital_it(user):
        raise UnmatchedStudy.DoesNotExist
    study = UnmatchedStudy.objects.get(pk=pk, status=UnmatchedStudy.Status.WAITING)
    if _claimed([study]):
        raise UnmatchedStudy.DoesNotExist
    return study


def assignable_patients(*, user: AnyUser) -> QuerySet[Patient]:
    """The patients a study may be assigned to by ``user``: those of their care teams."""
    return patient_list(user=user)


def dicomweb_senders() -> QuerySet[DicomWebSender]:
    """Every DICOMweb sender, active and revoked, by name."""
    return DicomWebSender.objects.order_by("name")


def dicomweb_sender_named(name: str) -> DicomWebSender | None:
    """The DICOMweb sender of that exact name, or None."""
    return DicomWebSender.objects.filter(name=name).first()


def prediction_sends(*, prediction: Any) -> list[DicomSend]:
    """The prediction's sends to PACS destinations, newest first (the caller has checked that
    the user may see the prediction)."""
    return list(
        DicomSend.objects.filter(prediction=prediction)
        .select_related("destination", "job")
        .order_by("-queued_at", "-pk")
    )


def dicom_send_get(*, user: User, pk: int) -> DicomSend:
    """One send of a prediction of the user's patients; DicomSend.DoesNotExist otherwise."""
    return DicomSend.objects.select_related("destination", "prediction__scan__patient").get(
        pk=pk, prediction__scan__in=scan_list(user=user)
    )
