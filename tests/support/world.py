"""The authorization matrix's world: one of every object a URL of MedAI can name, so that
every route can be requested by every role (tests/test_authorization_matrix.py, the URL fuzzer,
the admin privacy tests)."""

from __future__ import annotations

from types import SimpleNamespace

from django.test import Client

from tests.diagnosis.factories import PredictionFactory, ScanFactory, ScanUploadFactory
from tests.drugs.factories import DesignRunFactory, GeneratedMoleculeFactory
from tests.platform.factories import JobFactory, ModelVersionFactory, patient_for
from tests.remote_care.factories import AlertFactory, ObservationFactory, ProgressionAnalysisFactory
from tests.treatment.factories import CohortAnalysisFactory, TreatmentAssessmentFactory


def world_build(users: SimpleNamespace) -> SimpleNamespace:
    """One of every object a URL can name (a patient of clinician A's with a scan, a held scan,
    a prediction, jobs, an assessment, a device, an alert, a cohort, a portal thread, a
    progression analysis and drug rows), and a fresh-client factory per role."""
    patient = patient_for(users.clinician_a)
    job = JobFactory(
        kind="patients.import", title="import", owner=users.clinician_a, patient=patient
    )
    version = ModelVersionFactory(task="t", version=1, metrics={"auc": 0.9})
    upload = ScanUploadFactory(patient=patient, uploaded_by=users.clinician_a)
    scan = ScanFactory(upload=upload)
    write_display(scan)
    held_scan = ScanFactory(
        upload=upload,
        kind="dicom",
        file="scans/held.dcm",
        held=True,
        hold_reason="Held for confirmation.",
    )
    write_display(held_scan)
    prediction = PredictionFactory(scan=scan, model_version=version)
    write_heatmaps(prediction)
    send = dicom_send_for(prediction)
    training = JobFactory(kind="diagnosis.training", title="train", owner=users.model_admin)

    arms = [{"arm": i, "label": label, "value": 0.5, "curve": None} for i, label in enumerate("AB")]
    assessment = TreatmentAssessmentFactory(
        patient=patient,
        model_version=version,
        inputs={"age": 50},
        status="done",
        result={
            "arms": arms,
            "differences": [],
            "recommendation": {"arm": 0, "label": "A", "statement": "-"},
        },
        created_by=users.clinician_a,
    )

    def client_for(role: str) -> Client:
        # A fresh session per request, so signing out (or a lockout) cannot leak into the next.
        client = Client()
        if role != "anonymous":
            client.force_login(
                getattr(users, role), backend="django.contrib.auth.backends.ModelBackend"
            )
        return client

    from remote_care.devices.services import device_register

    device = device_register(patient=patient, label="kit", registered_by=users.clinician_a).device
    alert = AlertFactory(
        observation=ObservationFactory(device=device, heart_rate=140), news2_total=3, reason="pulse"
    )
    cohort = CohortAnalysisFactory(created_by=users.researcher)
    from medai_site.patients.services import portal_account_create
    from remote_care.messaging.services import message_send, thread_start

    users.patient = portal_account_create(
        patient=patient, username="portal_a", email="", created_by=users.clinician_a
    ).account.user
    thread = thread_start(
        patient=patient,
        subject="Wound",
        started_by=users.patient,
        from_patient=True,
        body="How does it look?",
        photo=photo_bytes(),
    )
    message = thread.messages.get()
    message_send(thread=thread, sender=users.clinician_a, from_patient=False, body="Fine.")
    progression = ProgressionAnalysisFactory(created_by=users.researcher)
    drug_dataset, drug_run, molecule = drug_objects(users)
    from diagnosis.models import UnmatchedStudy

    # Sent under another Patient ID, with the world patient's name and birth date: the inbox
    # shows it to the patient's clinicians only.
    unmatched = UnmatchedStudy.objects.create(
        reason="No patient has this Patient ID as MRN.",
        patient_id="X-1",
        patient_name=f"{patient.family_name.upper()}, {patient.given_name}",
        birth_date=patient.birth_date.strftime("%Y%m%d"),
        modality="CT",
    )
    from datetime import timedelta

    from django.utils import timezone

    from medai_site.jobs.models import Worker

    # A worker that stopped reporting an hour ago: the fleet lists it offline, and draining it
    # is refused without asking the broker.
    an_hour_ago = timezone.now() - timedelta(hours=1)
    worker = Worker.objects.create(
        name="ml@world-host",
        host="world-host",
        queues=["ml"],
        pool="prefork",
        started_at=an_hour_ago,
        last_heartbeat=an_hour_ago,
    )
    return SimpleNamespace(
        worker=worker,
        unmatched=unmatched,
        progression=progression,
        thread=thread,
        message=message,
        drug_dataset=drug_dataset,
        drug_run=drug_run,
        molecule=molecule,
        cohort=cohort,
        device=device,
        alert=alert,
        patient=patient,
        job=job,
        version=version,
        client_for=client_for,
        scan=scan,
        held_scan=held_scan,
        prediction=prediction,
        send=send,
        training=training,
        assessment=assessment,
    )


def dicom_send_for(prediction):
    """A result of ``prediction`` that failed to reach a PACS destination (to send again)."""
    from django.utils import timezone

    from diagnosis.models import DicomDestination, DicomSend

    # Sends only when asked (send again): a world built in the embedded stack must not queue
    # a doomed send for every later classification there (nothing listens on port 104).
    destination = DicomDestination.objects.create(
        name="World PACS",
        called_ae_title="PACS",
        host="127.0.0.1",
        port=104,
        send_after_classification=False,
        send_after_review=False,
    )
    return DicomSend.objects.create(
        prediction=prediction,
        destination=destination,
        revision="not_reviewed::None",
        trigger=DicomSend.Trigger.CLASSIFICATION,
        status=DicomSend.Status.FAILED,
        attempts=3,
        last_error="PACS at 127.0.0.1:104 could not be reached.",
        queued_at=timezone.now(),
    )


def photo_bytes() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 120, 90)).save(buffer, format="JPEG")
    return buffer.getvalue()


def drug_objects(users):
    from django.core.files.base import ContentFile

    from drugs.models import MoleculeDataset
    from drugs.services import molecules_csv_gz

    dataset = MoleculeDataset(name="tiny", status="ready", n_molecules=2)
    rows = [("CCO", "ethanol", {}), ("c1ccccc1O", "phenol", {})]
    dataset.file.save("m.csv.gz", ContentFile(molecules_csv_gz(rows, [])), save=False)
    dataset.save()
    run = DesignRunFactory(dataset=dataset, status="done", created_by=users.researcher)
    molecule = GeneratedMoleculeFactory(run=run, smiles="CCN", qed=0.4, mw=45.1)
    return dataset, run, molecule


def write_heatmaps(prediction) -> None:
    """A 4 x 4 heat-map for the prediction's only frame (the DICOM heat-map export reads it)."""
    import io

    import numpy as np
    from django.core.files.base import ContentFile

    buffer = io.BytesIO()
    np.savez(buffer, heatmap_0=np.eye(4, dtype=np.float16))
    prediction.heatmaps.save("heatmaps.npz", ContentFile(buffer.getvalue()))


def write_display(scan) -> None:
    import io

    import numpy as np
    from django.core.files.storage import default_storage

    buffer = io.BytesIO()
    np.savez(
        buffer,
        windows=np.array([[0.5, 1.0]]),
        inverts=np.array([False]),
        values_0=np.zeros((4, 4), np.float16),
        model_0=np.zeros((4, 4), np.uint8),
    )
    default_storage.save(scan.display.name, io.BytesIO(buffer.getvalue()))


# Which object each route's converters take (default: a job of clinician A's).
