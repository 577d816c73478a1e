"""Match a study received over DICOM to a MedAI patient from its headers, before they are
de-identified: the Patient ID (with its issuer) against the MRN, then the name and birth date
as a second check. A study that matches no patient, several, or fails the second check is not
guessed: the verdict says why, and the caller puts it in the unmatched-studies inbox.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import pydicom
from pydicom.errors import InvalidDicomError

_IDENTITY_TAGS = [
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "StudyInstanceUID",
    "StudyDate",
    "Modality",
]


@dataclass(frozen=True)
class DicomIdentity:
    """Who a DICOM instance says it shows, as sent (PatientName split at ``^``)."""

    patient_id: str
    issuer: str
    family_name: str
    given_name: str
    birth_date: str  # YYYYMMDD as sent, "" when absent
    study_uid: str = ""
    study_date: str = ""
    modality: str = ""

    @property
    def person(self) -> tuple[str, str, str, str]:
        return (self.patient_id, self.issuer, _norm(self.family_name), _norm(self.given_name))

    @property
    def display_name(self) -> str:
        return ", ".join(p for p in (self.family_name.upper(), self.given_name) if p)


@dataclass(frozen=True)
class Candidate:
    """A MedAI patient whose MRN equals the Patient ID; ``in_care`` when some care team has them."""

    pk: int
    family_name: str
    given_name: str
    birth_date: str  # YYYYMMDD
    in_care: bool = True


@dataclass(frozen=True)
class MatchVerdict:
    """The patient the study belongs to (``patient_pk``), or None and why not."""

    patient_pk: int | None
    reason: str = ""


def identity_read(source: bytes | BinaryIO) -> DicomIdentity | None:
    """The identity in a DICOM file's header (the pixel data is not read); None when it is not
    a readable DICOM file."""
    try:
        dataset = pydicom.dcmread(
            io.BytesIO(source) if isinstance(source, bytes) else source,
            stop_before_pixels=True,
            specific_tags=_IDENTITY_TAGS,
        )
    except (InvalidDicomError, ValueError, TypeError, EOFError, OSError, KeyError):
        return None
    return identity_of(dataset)


def identity_of(dataset: pydicom.Dataset) -> DicomIdentity:
    """The identity in a parsed dataset's header."""

    def text(keyword: str) -> str:
        try:
            value = dataset.get(keyword)
        except (ValueError, TypeError, KeyError):
            return ""
        return "" if value is None else str(value).strip()

    parts = (text("PatientName").split("^") + ["", ""])[:2]
    return DicomIdentity(
        patient_id=text("PatientID"),
        issuer=text("IssuerOfPatientID"),
        family_name=parts[0].strip(),
        given_name=parts[1].strip(),
        birth_date=text("PatientBirthDate"),
        study_uid=text("StudyInstanceUID"),
        study_date=text("StudyDate"),
        modality=text("Modality"),
    )


def _norm(name: str) -> str:
    # Case, accents, punctuation and spacing differ between a PACS and a registration desk;
    # the letters do not.
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    return " ".join(re.sub(r"[^a-z0-9 ]+", " ", folded).split())


def _same_person(identity: DicomIdentity, candidate: Candidate) -> bool:
    given = _norm(identity.given_name).split()
    wanted = _norm(candidate.given_name).split()
    return (
        _norm(identity.family_name) == _norm(candidate.family_name)
        and bool(given)
        and bool(wanted)
        and given[0] == wanted[0]
        and identity.birth_date == candidate.birth_date
    )


def family_key(display_name: str) -> str:
    """The family name of a stored "FAMILY, Given" as ``resembles`` compares it ("" if none):
    an index key, so a caller need test only the patients that share it, an MRN or a birth
    date with a study (``resembles`` is true for no other)."""
    return _norm(display_name.partition(",")[0])


def name_key(name: str) -> str:
    """A patient's family name as ``family_key`` gives a study's."""
    return _norm(name)


def resembles(
    *,
    patient_id: str,
    display_name: str,
    birth_date: str,
    mrn: str,
    family_name: str,
    given_name: str,
    patient_birth_date: str,
) -> bool:
    """Whether a waiting study (Patient ID, "FAMILY, Given" as stored, YYYYMMDD) could be this
    patient's: the same MRN, the same name, or the same birth date and one name in common.
    Decides which clinicians see the study in the inbox: only those with such a patient, so a
    study is never shown to a team that has nobody it could belong to."""
    if patient_id and patient_id == mrn:
        return True
    family, _, given = display_name.partition(",")
    same_family = bool(_norm(family)) and _norm(family) == _norm(family_name)
    sent_given, known_given = _norm(given).split(), _norm(given_name).split()
    same_given = bool(sent_given) and bool(known_given) and sent_given[0] == known_given[0]
    same_birth = bool(birth_date) and birth_date == patient_birth_date
    return (same_family and same_given) or (same_birth and (same_family or same_given))


def study_match(
    identities: Sequence[DicomIdentity],
    candidates: Callable[[str], list[Candidate]],
    *,
    issuer: str = "",
) -> MatchVerdict:
    """The patient every instance of a study names, or why none is certain: instances that
    name different people, no Patient ID, an ID from another issuer than ``issuer`` (when
    set), no patient or several with that MRN, a name or birth date that is missing or
    differs, or a patient in no care team. ``candidates`` gives the patients whose MRN is
    the ID it is passed."""
    if not identities:
        return MatchVerdict(None, "No instance of the study could be read.")
    people = {i.person for i in identities}
    if len(people) > 1 or len({i.birth_date for i in identities}) > 1:
        return MatchVerdict(None, "The study's instances name different patients.")
    identity = identities[0]
    if not identity.patient_id:
        return MatchVerdict(None, "The study carries no Patient ID.")
    if issuer and identity.issuer and identity.issuer != issuer:
        return MatchVerdict(
            None, "The Patient ID was issued by another authority than MedAI's MRNs."
        )
    found = candidates(identity.patient_id)
    if not found:
        return MatchVerdict(None, "No patient has this Patient ID as MRN.")
    if len(found) > 1:
        return MatchVerdict(None, "Several patients match this Patient ID.")
    candidate = found[0]
    if not (identity.family_name and identity.given_name and identity.birth_date):
        return MatchVerdict(
            None, "The study lacks the name or birth date needed to confirm the Patient ID."
        )
    if not _same_person(identity, candidate):
        return MatchVerdict(
            None, "The name or birth date differs from those of the patient with this MRN."
        )
    if not candidate.in_care:
        return MatchVerdict(None, "The patient with this MRN is in no care team.")
    return MatchVerdict(candidate.pk)
