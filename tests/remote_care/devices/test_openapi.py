"""The remote-care API's OpenAPI schema and Swagger UI: offline (local static files only), no
inline script under the CSP, readable by clinicians and staff only."""

from __future__ import annotations

import re

import pytest
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db
SCHEMA = "/remote-care/api/schema/"
DOCS = "/remote-care/api/docs/"


def test_schema_lists_the_device_endpoints(client, users):
    client.force_login(users.clinician_a)
    response = client.get(SCHEMA, {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    paths = schema["paths"]
    for path in (
        "/remote-care/api/v1/observations/",
        "/remote-care/api/v1/fhir/Bundle/",
        "/remote-care/api/v1/waveforms/",
    ):
        assert "post" in paths[path], path
        assert paths[path]["post"]["security"] == [{"deviceToken": []}]
    assert schema["components"]["securitySchemes"]["deviceToken"]["scheme"] == "bearer"
    waveform = schema["components"]["schemas"]["Waveform"]["properties"]
    assert {"kind", "sampling_rate", "started_at", "samples"} <= set(waveform)


def test_docs_page_is_offline_and_csp_clean(client, users):
    client.force_login(users.model_admin)
    response = client.get(DOCS)
    assert response.status_code == 200
    html = response.content.decode()
    csp = response["Content-Security-Policy"]
    script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
    assert script_src.split() == ["script-src", "'self'"]
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
    assert scripts and all(body.strip() == "" and "src=" in attrs for attrs, body in scripts)
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers either
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(u.startswith("/static/") for u in urls), urls
    for url in urls:  # every referenced asset ships with the installed packages or the repo
        assert finders.find(url.removeprefix("/static/")), url
    assert 'data-schema-url="/remote-care/api/schema/?format=json"' in html


@pytest.mark.parametrize(
    ("who", "status"),
    [("clinician_a", 200), ("model_admin", 200), ("researcher", 403)],
)
def test_who_may_read_the_docs(client, users, who, status):
    client.force_login(getattr(users, who))
    assert client.get(DOCS).status_code == status
    assert client.get(SCHEMA).status_code == status


def test_docs_need_a_session(client):
    for url in (SCHEMA, DOCS):
        assert client.get(url).status_code == 302


def test_schema_describes_every_device_field_exactly(client, users):
    """A vendor generating a client (or a fuzzer) learns the real contract from the schema."""
    client.force_login(users.clinician_a)
    schema = client.get(SCHEMA, {"format": "json"}).json()
    components = schema["components"]["schemas"]
    paths = schema["paths"]

    observations = paths["/remote-care/api/v1/observations/"]["post"]
    request = observations["requestBody"]["content"]["application/json"]["schema"]
    post = components[request["$ref"].rsplit("/", 1)[1]]
    assert post["oneOf"] == [
        {"$ref": "#/components/schemas/Observation"},
        {"$ref": "#/components/schemas/ObservationBatch"},
    ]
    batch = components["ObservationBatch"]["properties"]["observations"]
    assert (batch["minItems"], batch["maxItems"]) == (1, 10_000)
    fields = components["Observation"]["properties"]
    assert components["Observation"]["required"] == ["taken_at"]
    assert fields["taken_at"] == {**fields["taken_at"], "type": "string", "format": "date-time"}
    assert (fields["heart_rate"]["minimum"], fields["heart_rate"]["maximum"]) == (20, 300)
    assert "beats/min" in fields["heart_rate"]["description"]
    assert (fields["spo2"]["minimum"], fields["spo2"]["maximum"]) == (50, 100)
    assert (fields["temperature"]["minimum"], fields["temperature"]["maximum"]) == (25, 45)
    assert "°C" in fields["temperature"]["description"]
    assert components["ConsciousnessEnum"]["enum"] == ["A", "C", "V", "P", "U"]
    for code in ("200", "201", "400", "401", "413", "415", "429"):
        assert "application/json" in observations["responses"][code]["content"], code
    result = components["ObservationsResult"]["properties"]
    assert {"stored", "duplicates", "rejected", "alerts", "news2"} <= set(result)

    fhir = paths["/remote-care/api/v1/fhir/Bundle/"]["post"]
    body = fhir["requestBody"]["content"]
    assert body["application/fhir+json"]["schema"] == {"$ref": "#/components/schemas/FhirBundle"}
    bundle = components["FhirBundle"]
    assert bundle["additionalProperties"] is False
    assert components["FhirBundleTypeEnum"]["enum"] == ["batch", "transaction", "collection"]
    assert bundle["properties"]["entry"]["maxItems"] == 60_000
    observation = components["FhirObservation"]["properties"]
    assert {"code", "subject", "device", "effectiveDateTime", "valueQuantity", "component"} <= set(
        observation
    )
    assert observation["effectiveDateTime"]["format"] == "date-time"
    subject = components["FhirPatientReference"]["properties"]["reference"]
    assert subject["pattern"].startswith("^Patient/")
    codes = components["FhirCoding"]["properties"]["code"]
    code_enum = components[codes["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"]
    assert {"8867-4", "59408-5", "9279-1", "8310-5", "85354-9"} <= set(code_enum)
    for code in ("200", "201", "400", "401", "413", "429"):
        assert code in fhir["responses"], code

    waveform = components["Waveform"]["properties"]
    assert (waveform["sampling_rate"]["minimum"], waveform["sampling_rate"]["maximum"]) == (
        25,
        2000,
    )
    assert waveform["samples"]["maxItems"] == 300_000
    assert waveform["samples"]["items"]["type"] == "number"
    responses = paths["/remote-care/api/v1/waveforms/"]["post"]["responses"]
    for code in ("202", "400", "401", "413", "429"):
        assert code in responses, code
