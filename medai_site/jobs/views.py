from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from medai_site.jobs.models import Job
from medai_site.jobs.selectors import job_get, job_list, job_status_payload
from medai_site.jobs.services import job_cancel


def _visible_job(request: HttpRequest, pk: int) -> Job:
    try:
        return job_get(user=request.user, pk=pk)
    except Job.DoesNotExist:
        raise Http404("No such job.") from None


@require_GET
def job_list_view(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or None
    if status and status not in Job.Status.values:
        status = None
    jobs = job_list(user=request.user, status=status)[:100]
    return render(
        request,
        "jobs/job_list.html",
        {"jobs": jobs, "status": status, "statuses": Job.Status.choices},
    )


@require_GET
def job_detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    job = _visible_job(request, pk)
    return render(request, "jobs/job_detail.html", {"job": job})


@require_GET
def job_status_view(request: HttpRequest, pk: int) -> JsonResponse:
    job = _visible_job(request, pk)
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
