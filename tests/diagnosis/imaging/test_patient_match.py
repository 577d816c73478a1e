"""Patient matching of a received study (pure: no database)."""

from __future__ import annotations

from diagnosis.imaging.patient_match import Candidate, DicomIdentity, study_match

MARIE = Candidate(pk=7, family_name="Curie", given_name="Marie", birth_date="19671107")


def ident(**kw) -> DicomIdentity:
    base = dict(
        patient_id="M1", issuer="", family_name="CURIE", given_name="MARIE", birth_date="19671107"
    )
    return DicomIdentity(**{**base, **kw})


def by_mrn(*found: Candidate):
    return lambda patient_id: list(found) if patient_id == "M1" else []


def test_id_name_and_birth_date_agree():
    assert study_match([ident(), ident()], by_mrn(MARIE)).patient_pk == 7
    # Case, accents and a middle name do not matter; the letters do.
    assert study_match([ident(given_name="Marié Salomea")], by_mrn(MARIE)).patient_pk == 7


def test_nothing_is_guessed():
    cases = {
        "different patients": [ident(), ident(patient_id="M2")],
        "no Patient ID": [ident(patient_id="")],
        "No patient": [ident(patient_id="M9")],
        "lacks the name": [ident(birth_date="")],
        "differs": [ident(given_name="PIERRE")],
    }
    for words, identities in cases.items():
        verdict = study_match(identities, by_mrn(MARIE))
        assert verdict.patient_pk is None and words in verdict.reason, words
    assert "differs" in study_match([ident(birth_date="19671108")], by_mrn(MARIE)).reason
    assert "Several" in study_match([ident()], by_mrn(MARIE, MARIE)).reason
    lone = Candidate(
        pk=8, family_name="Curie", given_name="Marie", birth_date="19671107", in_care=False
    )
    assert "no care team" in study_match([ident()], by_mrn(lone)).reason


def test_an_id_from_another_issuer_never_matches_an_mrn():
    verdict = study_match([ident(issuer="OTHER-HOSP")], by_mrn(MARIE), issuer="MEDAI")
    assert verdict.patient_pk is None and "another authority" in verdict.reason
    assert study_match([ident(issuer="MEDAI")], by_mrn(MARIE), issuer="MEDAI").patient_pk == 7
