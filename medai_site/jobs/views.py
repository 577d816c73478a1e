from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from medai_site.audit.exceptions import ObjectNotVisible
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.pagination import page_of
from medai_site.jobs.charts import throughput_card
from medai_site.jobs.models import Job, Worker
from medai_site.jobs.selectors import (
    fleet_jobs,
    fleet_visible_to,
    job_estimate,
    job_get,
    job_list,
    job_status_payload,
    kind_timings,
    queue_list,
    queue_throughput,
    worker_list,
)
from medai_site.jobs.services import (
    DrainFailed,
    RequeueRefused,
    job_cancel,
    job_requeue,
    worker_drain,
)


def _visible_job(request: HttpRequest, pk: int) -> Job:
    try:
        return job_get(user=request.user, pk=pk)
    except Job.DoesNotExist:
        raise ObjectNotVisible("No such job.", model=Job, pk=pk) from None


# Job ids already audited in this session: the status endpoint is polled every second or so
# while a job runs, so only the first view of a job per session writes an event (the job's
# detail page counts as that view). Bounded, so the session stays small.
AUDITED_JOBS_KEY = "medai_audited_jobs"
AUDITED_JOBS_KEPT = 200


def _audit_job_view(request: HttpRequest, job: Job, *, always: bool) -> None:
    seen = request.session.get(AUDITED_JOBS_KEY, [])
    if always or job.pk not in seen:
        audit_record(
            action=AuditEvent.Action.RECORD_VIEWED,
            request=request,
            obj=job,
            patient=job.patient,
            detail={"view": request.resolver_match.view_name},  # type: ignore[union-attr]  # set for every view
        )
    if job.pk not in seen:
        request.session[AUDITED_JOBS_KEY] = [*seen, job.pk][-AUDITED_JOBS_KEPT:]


@require_GET
def job_list_view(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    if status and status not in Job.Status.values:
        status = None
    pager = page_of(request, job_list(user=request.user, status=status), per_page=50, noun="job")
    jobs = pager.object_list
    patient_jobs = [job for job in jobs if job.patient_id]
    if patient_jobs:
        # Job titles name patients (e.g. by MRN): a list showing any is audited.
        audit_record(
            action=AuditEvent.Action.RECORD_VIEWED,
            request=request,
            detail={
                "list": "jobs",
                "status": status or "",
                "shown": [job.pk for job in patient_jobs],
                "patients": sorted({job.patient_id for job in patient_jobs}),
            },
        )
    return render(
        request,
        "jobs/job_list.html",
        {"jobs": jobs, "pager": pager, "status": status, "statuses": Job.Status.choices},
    )


@require_GET
def job_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = _visible_job(request, pk)
    _audit_job_view(request, job, always=True)
    return render(request, "jobs/job_detail.html", {"job": job, "estimate": job_estimate(job)})


@require_GET
def job_status_view(request: HttpRequest, pk: int) -> JsonResponse:
    job = _visible_job(request, pk)
    _audit_job_view(request, job, always=False)
    response = JsonResponse(job_status_payload(job))
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def job_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = _visible_job(request, pk)
    job = job_cancel(job=job, user=request.user, request=request)
    if request.headers.get("Accept", "").startswith("application/json"):
        return JsonResponse(job_status_payload(job))
    messages.info(request, f"“{job.title}”: {job.get_status_display().lower()}.")
    return redirect("jobs:detail", pk=job.pk)


# --- Fleet (model admins and hospital IT; no patient data) --------------------------------------


def _fleet_only(request: HttpRequest) -> None:
    if not fleet_visible_to(request.user):
        raise PermissionDenied("The fleet page is for model admins and hospital IT.")


@require_GET
def fleet_view(request: HttpRequest) -> HttpResponse:
    _fleet_only(request)
    return render(
        request,
        "jobs/fleet.html",
        {
            "workers": worker_list(),
            "queues": queue_list(),
            "timings": kind_timings(),
            "jobs": fleet_jobs(),
            "chart": throughput_card(queue_throughput()),
        },
    )


@require_POST
def fleet_worker_drain_view(request: HttpRequest, pk: int) -> HttpResponse:
    _fleet_only(request)
    worker = Worker.objects.filter(pk=pk).first()
    if worker is None:
        raise Http404("No such worker.")
    try:
        worker = worker_drain(worker=worker, user=request.user, request=request)
    except DrainFailed as exc:
        messages.error(request, str(exc))
    else:
        messages.info(request, f"{worker.name} is draining: it finishes its jobs, takes no more.")
    return redirect("jobs:fleet")


def _fleet_job(pk: int) -> Job:
    job = Job.objects.filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    return job


@require_POST
def fleet_job_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    _fleet_only(request)
    job = _fleet_job(pk)
    if job.status != Job.Status.QUEUED:
        messages.error(
            request, f"Job #{job.pk} is not queued; only queued jobs are cancelled here."
        )
        return redirect("jobs:fleet")
    job = job_cancel(job=job, user=request.user, request=request)
    messages.info(request, f"Job #{job.pk}: {job.get_status_display().lower()}.")
    return redirect("jobs:fleet")


@require_POST
def fleet_job_requeue_view(request: HttpRequest, pk: int) -> HttpResponse:
    _fleet_only(request)
    job = _fleet_job(pk)
    try:
        job = job_requeue(job=job, user=request.user, request=request)
    except RequeueRefused as exc:
        messages.error(request, f"Job #{job.pk}: {exc}")
    else:
        messages.info(request, f"Job #{job.pk} is queued again.")
    return redirect("jobs:fleet")
