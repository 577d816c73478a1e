"""Schemathesis against the OpenAPI schema of the device, FHIR and waveform APIs: generated
requests that fit the schema (positive) and that break it (negative), sent with a valid device
token and with a device token of another patient. Never a 5xx; responses match the documented
status codes and bodies; no observation or recording ever lands on a patient other than the
token's own.

MEDAI_FUZZ_EXAMPLES sets the examples per operation, mode and token (small by default, so CI
stays fast); e.g. ``MEDAI_FUZZ_EXAMPLES=500 bin/test tests/remote_care/devices/test_api_fuzz.py -s``
for a longer run. MEDAI_FUZZ_SEED picks another deterministic sequence of cases.
"""

from __future__ import annotations

import copy
import os
import time
import zlib
from collections import Counter
from datetime import timedelta
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hypothesis_settings
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from remote_care.devices.services import device_register
from remote_care.models import Observation, Waveform
from tests.platform.factories import patient_for

pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("MEDAI_FUZZ_EXAMPLES", "6"))
SEED = int(os.environ.get("MEDAI_FUZZ_SEED", "12"))
SCHEMA = "/remote-care/api/schema/"
DEVICE_PATHS = (
    "/remote-care/api/v1/observations/",
    "/remote-care/api/v1/fhir/Bundle/",
    "/remote-care/api/v1/waveforms/",
)


def _name_the_other_patient(body: Any, patient_pk: int, patient_mrn: str, device_pk: int) -> Any:
    """The body with every FHIR Observation naming ``patient`` and its device, and every other
    JSON object carrying a ``patient`` key: what a device posting for someone else would send
    (FHIR has no room for unknown keys, so a Bundle gets only the references)."""
    body = copy.deepcopy(body)
    if isinstance(body, dict):
        if body.get("resourceType") != "Bundle":
            body.setdefault("patient", patient_pk)
        for entry in body.get("entry") or [] if isinstance(body.get("entry"), list) else []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict):
                resource["subject"] = {
                    "reference": f"Patient/{patient_pk}",
                    "identifier": {"value": patient_mrn},
                }
                resource["device"] = {"reference": f"Device/{device_pk}"}
        for item in (
            body.get("observations") or [] if isinstance(body.get("observations"), list) else []
        ):
            if isinstance(item, dict):
                item["patient"] = patient_pk
    return body


_TIME_KEYS = {"taken_at", "effectiveDateTime", "started_at"}


def _with_clock_set(body: Any) -> Any:
    """The body with every timestamp moved into the last 30 days (the minute chosen from the
    generated value, so cases stay distinct): a schema cannot say "not in the future, not
    before 2001", and without this nearly every positive case would stop at that check."""
    if isinstance(body, dict):
        out = {}
        for key, value in body.items():
            if key in _TIME_KEYS and isinstance(value, str):
                minutes = 1 + zlib.crc32(value.encode("utf-8", "replace")) % (30 * 24 * 60)
                value = (timezone.now() - timedelta(minutes=minutes)).isoformat()
            out[key] = _with_clock_set(value)
        return out
    if isinstance(body, list):
        return [_with_clock_set(item) for item in body]
    return body


_REQUEST_KEYS = ("method", "url", "headers", "params", "data", "json", "cookies", "files")


def _send(case: Any) -> schemathesis.Response:
    """Send a generated case through Django's test client (which, unlike a bare WSGI call,
    keeps the test's database connection open) and wrap the answer for schemathesis' checks."""
    kwargs = case.as_transport_kwargs(base_url="http://localhost")
    prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in _REQUEST_KEYS}).prepare()
    url = urlsplit(prepared.url)
    body = prepared.body or b""
    headers = {
        k: v
        for k, v in prepared.headers.items()
        if k.lower() not in {"content-type", "content-length"}
    }
    answer = Client().generic(
        prepared.method,
        f"{url.path}?{url.query}" if url.query else url.path,
        data=body.encode() if isinstance(body, str) else body,
        content_type=prepared.headers.get("Content-Type", ""),
        headers=headers,
    )
    return schemathesis.Response(
        status_code=answer.status_code,
        headers={k: [v] for k, v in answer.headers.items()},
        content=answer.content,
        request=prepared,
        elapsed=0.0,
        verify=True,
    )


def _fuzz(
    operation: Any,
    mode: GenerationMode,
    label: str,
    token: str,
    rewrite: Any,
    statuses: Counter,
    errors: list[str],
    stored_for_token: Any = None,
) -> None:
    """Send EXAMPLES generated cases of one operation and mode with ``token``: a 5xx is
    collected in ``errors``; any other answer must match the documented responses. With
    ``stored_for_token`` (a count of the token's rows), a case must store nothing at all: its
    readings claim to be another patient's, and filing them under the token's patient would
    put one patient's data in another's record."""

    @seed(SEED)
    @hypothesis_settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        if mode is GenerationMode.POSITIVE:
            case.body = _with_clock_set(case.body)
        if rewrite is not None:
            case.body = rewrite(case.body)
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token}"}
        before = stored_for_token() if stored_for_token else 0
        response = _send(case)
        if stored_for_token and stored_for_token() != before:
            body = response.request.body or b""
            errors.append(f"{label} {operation.path}: cross-patient write for {body[:300]!r}")
        statuses[(operation.path, label, response.status_code)] += 1
        if response.status_code >= 500:
            body = response.request.body or b""
            errors.append(f"{label} {operation.path}: {response.status_code} for {body[:300]!r}")
            return
        case.validate_response(
            response,
            checks=[status_code_conformance, content_type_conformance, response_schema_conformance],
        )

    started = time.perf_counter()
    run()
    print(f"{operation.path} {label}: {time.perf_counter() - started:.1f} s")


def test_device_apis_survive_fuzzing_and_never_write_across_patients(client, users, settings):
    settings.MEDAI_DEVICE_RATE_LIMIT = None  # the fuzz cases must reach the validation
    cache.clear()
    client.force_login(users.clinician_a)
    schema_dict = client.get(SCHEMA, {"format": "json"}).json()
    schema = schemathesis.openapi.from_dict(schema_dict)

    mine = patient_for(users.clinician_a)
    theirs = patient_for(users.clinician_b)
    own = device_register(patient=mine, label="own kit", registered_by=users.clinician_a)
    other = device_register(patient=theirs, label="their kit", registered_by=users.clinician_b)

    statuses: Counter[tuple[str, str, int]] = Counter()
    errors: list[str] = []

    operations = [op.ok() for op in schema.get_all_operations()]
    operations = [op for op in operations if op.path in DEVICE_PATHS]
    assert sorted(op.path for op in operations) == sorted(DEVICE_PATHS)

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for who, token in (("own", own.token), ("other patient's", other.token)):
                rewrite = (
                    None
                    if who == "own"
                    else partial(
                        _name_the_other_patient,
                        patient_pk=mine.pk,
                        patient_mrn=mine.mrn,
                        device_pk=own.device.pk,
                    )
                )
                # A FHIR entry names its patient: naming another one must store nothing.
                guard = (
                    Observation.objects.filter(device=other.device).count
                    if rewrite is not None and "fhir" in operation.path
                    else None
                )
                _fuzz(
                    operation,
                    mode,
                    f"{mode.value} {who}",
                    token,
                    rewrite,
                    statuses,
                    errors,
                    stored_for_token=guard,
                )

    for key, count in sorted(statuses.items()):
        print(*key, count)
    assert not errors, "\n".join(errors[:5])
    # Nothing crossed over: each patient's rows come from that patient's own device only.
    assert not Observation.objects.exclude(patient=mine).exclude(patient=theirs).exists()
    assert not Observation.objects.filter(patient=mine, device=other.device).exists()
    assert not Observation.objects.filter(patient=theirs, device=own.device).exists()
    assert not Waveform.objects.filter(patient=mine, device=other.device).exists()
    assert not Waveform.objects.filter(patient=theirs, device=own.device).exists()
    # The cases reached the logic: sets were stored, and not everything was refused.
    assert Observation.objects.filter(device=own.device).exists()
    assert Observation.objects.filter(device=other.device).exists()
