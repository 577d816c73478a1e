"""The job that sends a prediction's results to one PACS destination (default queue)."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from diagnosis.models import DicomSend
from diagnosis.pacs.outbox import DICOM_SEND_KIND
from diagnosis.pacs.sending import dicom_send_run
from medai_site.jobs.exceptions import JobError
from medai_site.jobs.models import Job
from medai_site.jobs.runtime import Progress, job_row, job_task


@job_task(kind=DICOM_SEND_KIND, label="send to PACS", patient_data=True)
def send_to_pacs(job: Job, progress: Progress) -> dict[str, Any]:
    """Send one DicomSend (its SR, and heat-map capture) with retries; the job fails with the
    send's message when it could not be sent. Idempotent: a send already sent is not sent
    twice."""
    send = job_row(
        DicomSend.objects.select_related("destination"),
        job=job,
        param="send_id",
        missing="The result to send no longer exists.",
    )
    progress.update(10, f"Sending to {send.destination.name}", force=True)
    send = dicom_send_run(send=send)
    if send.status != DicomSend.Status.SENT:
        raise JobError(f"Not sent to {send.destination.name}: {send.last_error}")
    return {
        "summary": f"Sent {len(send.objects_sent)} object(s) to {send.destination.name}.",
        "url": reverse("diagnosis:scan_detail", args=[send.prediction.scan_id]),
    }
