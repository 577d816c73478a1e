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
