"""FHIR R4 (R4B models of fhir.resources) for every result MedAI produces: the model version
as a Device, the Provenance that names it (and the clinician who verified the result, by role
and MedAI user id, never by name), and the validated collection Bundle. Imaging, treatment
assessments and deterioration risk scores build their own resources and share these, so a
model version has one identity in every export.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle

from medai_ml.uids import keyed_uid
from medai_site.registry.models import ModelVersion

DICOM_UID = "urn:dicom:uid"
MEDAI_USER = "urn:medai:user"
MEDAI_SHA256 = "urn:medai:model-artifact-sha256"
PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
# Fixed namespace for the resources' ids: the same result gives the same ids in every export.
NAMESPACE = uuid.UUID("5b0f3f7e-6f0e-4f57-9d1e-6a7d3c9b1e21")
# A keyless namespace: the same model artifact has the same device UID on every install.
DEVICE_UID_KEY = b"medai-model-device-observer-uid"


def resource_urn(*parts: object) -> str:
    """The stable urn:uuid of the resource named by ``parts`` (e.g. "finding", pk)."""
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, ':'.join(str(p) for p in parts))}"


def resource_id(urn: str) -> str:
    """The resource id inside a urn:uuid."""
    return urn.removeprefix("urn:uuid:")


def model_device_uid(version: ModelVersion) -> str:
    """The model version as a DICOM device observer UID (and FHIR Device identifier)."""
    return keyed_uid(f"{version.task}:{version.version}:{version.sha256}", DEVICE_UID_KEY)


def model_device_urn(version_pk: int) -> str:
    """The fullUrl of the model version's Device in a bundle."""
    return resource_urn("device", version_pk)


def device_resource(version: ModelVersion) -> dict[str, Any]:
    """The model version as a Device (identified by its DICOM device UID and artifact hash)."""
    identifiers = [{"system": DICOM_UID, "value": f"urn:oid:{model_device_uid(version)}"}]
    if version.sha256:
        identifiers.append({"system": MEDAI_SHA256, "value": version.sha256})
    return {
        "resourceType": "Device",
        "id": resource_id(model_device_urn(version.pk)),
        "identifier": identifiers,
        "manufacturer": "MedAI",
        "deviceName": [{"name": version.task, "type": "model-name"}],
        "version": [{"value": str(version.version)}],
    }


def provenance_resource(
    *,
    targets: Sequence[str],
    recorded: datetime,
    version_pk: int,
    verifier_id: int | None = None,
    entities: Iterable[dict[str, Any]] = (),
) -> dict[str, Any]:
    """A Provenance of ``targets`` (fullUrls): the model version is the author and, when a
    clinician verified the result, that clinician (MedAI user id) is the verifier."""
    agents: list[dict[str, Any]] = [
        {
            "type": {"coding": [{"system": PARTICIPANT, "code": "author"}]},
            "who": {"reference": model_device_urn(version_pk)},
        }
    ]
    if verifier_id is not None:
        agents.append(
            {
                "type": {"coding": [{"system": PARTICIPANT, "code": "verifier"}]},
                "who": {
                    "type": "Practitioner",
                    "identifier": {"system": MEDAI_USER, "value": str(verifier_id)},
                    "display": "Clinician (MedAI role)",
                },
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "Provenance",
        "target": [{"reference": urn} for urn in targets],
        "recorded": recorded.isoformat(),
        "agent": agents,
    }
    listed = list(entities)
    if listed:
        resource["entity"] = listed
    return resource


def collection_bundle(
    entries: Iterable[tuple[str, dict[str, Any]]], versions: Iterable[ModelVersion]
) -> dict[str, Any]:
    """A collection Bundle (JSON-ready, validated by fhir.resources) of ``entries``
    ((fullUrl, resource) pairs) and one Device per distinct model version in ``versions``."""
    listed = [{"fullUrl": urn, "resource": resource} for urn, resource in entries]
    devices: dict[int, ModelVersion] = {}
    for version in versions:
        devices.setdefault(version.pk, version)
    listed.extend(
        {"fullUrl": model_device_urn(pk), "resource": device_resource(version)}
        for pk, version in devices.items()
    )
    bundle = Bundle.parse_obj({"resourceType": "Bundle", "type": "collection", "entry": listed})
    return json.loads(bundle.json())
