"""Query-string and form parsing (medai_site.core.query_params) and the views that use it:
bad input is a 400 with a message, never a 500, and error bodies never render as HTML."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from medai_site.core.query_params import (
    BadParameter,
    BoundedDateField,
    BoundedIntegerField,
    bad_request,
    parse_aware_datetime,
    parse_date,
    parse_int,
)
from tests.platform.factories import patient_for
from tests.remote_care.factories import ProgressionAnalysisFactory
from tests.support.clients import login

HOSTILE_INTS = ["²", "١٢", "１２", "9" * 400, "-1", "1.5", " ", "1e3", "0x10", "\x00"]


@pytest.mark.parametrize("raw", HOSTILE_INTS)
def test_parse_int_refuses_what_is_not_ascii_digits_in_range(raw):
    with pytest.raises(BadParameter) as caught:
        parse_int(raw, name="upload")
    message = str(caught.value)
    assert "upload" in message and (not raw.strip() or raw.strip() not in message)


def test_parse_int_reads_ascii_digits():
    assert parse_int("42", name="n") == 42
    assert parse_int(" 7 ", name="n", max_value=10) == 7
    with pytest.raises(BadParameter, match="between 0 and 10"):
        parse_int("11", name="n", max_value=10)


@pytest.mark.parametrize(
    "raw", ["0001-01-01", "9999-12-31", "2024-02-30", "２０２４-01-01", "+10000-01-01", "x"]
)
def test_parse_date_refuses_dates_outside_the_supported_span(raw):
    with pytest.raises(BadParameter):
        parse_date(raw, name="start")


def test_parse_date_and_datetime_read_ordinary_values():
    assert parse_date("2026-03-01", name="start") == date(2026, 3, 1)
    value = parse_aware_datetime("2026-03-01T08:00:00", name="end")
    assert value.tzinfo is not None
    for raw in ("0001-01-01T00:00:00", "9999-12-31T23:59:59+14:00", "٢٠٢٦-01-01T00:00"):
        with pytest.raises(BadParameter):
            parse_aware_datetime(raw, name="end")


def test_bounded_form_fields_give_messages():
    dates = BoundedDateField()
    for raw in ("0001-01-01", "9999-12-31"):
        with pytest.raises(Exception, match="between 1900-01-01"):
            dates.clean(raw)
    numbers = BoundedIntegerField()
    for raw in ("²", "١٢", "9" * 400):
        with pytest.raises(Exception, match="whole number"):
            numbers.clean(raw)
    assert numbers.clean("12") == 12


def test_bad_request_is_plain_text():
    response = bad_request("<b>x</b>")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert response["X-Content-Type-Options"] == "nosniff"


XSS = "<script>alert(document.cookie)</script>"


def test_progression_400_does_not_reflect_the_patient_as_html(users):
    analysis = ProgressionAnalysisFactory(
        created_by=users.researcher,
        results={"patients": {"1": {"observed": 1.0, "predicted": 1.0, "low": 0, "high": 2}}},
    )
    response = login(users.researcher).get(
        reverse("remote_care:progression_detail", args=[analysis.pk]), {"patient": XSS}
    )
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("text/html")
    assert b"<script>" not in response.content


def test_structure_400_does_not_reflect_the_smiles_as_html(users):
    response = login(users.researcher).get(reverse("drugs:structure"), {"smiles": XSS})
    assert response.status_code == 400
    assert not response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("raw", ["²", "9" * 300])
def test_scan_upload_outcome_with_a_non_ascii_digit_is_a_400(users, raw):
    patient = patient_for(users.clinician_a)
    response = login(users.clinician_a).get(
        reverse("diagnosis:patient_scans", args=[patient.pk]), {"upload": raw}
    )
    assert response.status_code == 400
    assert b"digits 0-9" in response.content


@pytest.mark.parametrize("param", ["dataset", "base"])
def test_design_run_form_with_a_non_ascii_digit_is_a_400(users, param):
    response = login(users.researcher).get(reverse("drugs:run_create"), {param: "²"})
    assert response.status_code == 400
    assert b"digits 0-9" in response.content


def test_structure_size_with_non_ascii_digits_is_a_400(users):
    response = login(users.researcher).get(reverse("drugs:structure"), {"smiles": "CCO", "w": "²"})
    assert response.status_code == 400


def test_progression_patient_before_results_is_a_400(users):
    # Found by the URL fuzzer: an analysis without results drew a chart of no patients (500).
    analysis = ProgressionAnalysisFactory(created_by=users.researcher)
    response = login(users.researcher).get(
        reverse("remote_care:progression_detail", args=[analysis.pk]), {"patient": "²"}
    )
    assert response.status_code == 400


def test_shortlist_next_that_is_not_a_path_goes_back_to_the_molecule(users):
    # Found by the URL fuzzer: redirect() read "next" as a URL pattern name (NoReverseMatch).
    from tests.support.world import drug_objects

    _, _, molecule = drug_objects(users)
    for name in ("drugs:shortlist_save", "drugs:shortlist_remove"):
        response = login(users.researcher).post(
            reverse(name, args=[molecule.pk]), {"next": "²", "note": "x"}
        )
        assert response.status_code == 302
        assert response["Location"] == reverse("drugs:molecule_detail", args=[molecule.pk])


@pytest.mark.parametrize(
    "query",
    [
        {"start": "9999-12-25", "end": "9999-12-31"},
        {"start": "0001-01-01", "end": "0001-01-05", "by": "age"},
        {"start": "0001-01-01", "end": "0001-01-05", "age_band": "80+"},
    ],
)
def test_analytics_dates_at_the_limits_of_datetime_are_a_400(users, query):
    for name in ("remote_care:analytics", "remote_care:analytics_export"):
        response = login(users.researcher).get(reverse(name), query)
        assert response.status_code == 400, name
        assert b"between 1900-01-01" in response.content


@pytest.mark.parametrize(
    "query",
    [
        {"end": "0001-01-01T00:00:00"},
        {"end": "0001-01-01T00:00:00+14:00"},
        {"start": "9999-12-31T23:00:00", "end": "9999-12-31T23:59:59"},
        {"points": "١٢٠٠"},
    ],
)
def test_vitals_data_at_the_limits_of_datetime_is_a_400(users, query):
    patient = patient_for(users.clinician_a)
    response = login(users.clinician_a).get(
        reverse("remote_care:vitals_data", args=[patient.pk]), query
    )
    assert response.status_code == 400
    assert "error" in response.json()
