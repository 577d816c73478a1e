from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from medai_site.jobs.kinds import kinds_without_patient_data
from medai_site.jobs.models import Job
from medai_site.jobs.services import job_cancel, jobs_sweep
from medai_site.patients.admin_access import PatientBoundAdmin, admin_clinical_access


@admin.register(Job)
class JobAdmin(PatientBoundAdmin):
    """Jobs for model admins: training, research and import-free work only. Jobs about a
    patient, or of a kind that handles patient data (imports), are for hospital IT alone, and
    every view of them is audited; their identifying fields never reach other staff."""

    identifying_fields = ("patient",)
    list_display = [
        "id",
        "title",
        "kind",
        "owner",
        "patient",
        "status",
        "progress",
        "attempts",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "kind"]
    list_select_related = ["owner", "patient"]
    search_fields = ["title", "kind", "celery_id"]
    readonly_fields = [f.name for f in Job._meta.fields if f.name != "id"]
    actions = ["cancel_jobs", "sweep_now"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Job]:
        jobs = super().get_queryset(request)
        if not admin_clinical_access(request):
            # A kind not registered (or flagged as patient data) stays hidden: fail closed.
            jobs = jobs.filter(kind__in=kinds_without_patient_data())
        return jobs

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        for job in queryset:
            job_cancel(job=job, user=request.user, request=request)
        self.message_user(request, f"Cancellation requested for {queryset.count()} job(s).")

    @admin.action(description="Run the sweeper now (re-enqueue stranded jobs)")
    def sweep_now(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        report = jobs_sweep()
        self.message_user(
            request,
            f"Re-queued {len(report.requeued)}, re-sent {len(report.resent)}, "
            f"failed {len(report.failed)}.",
            messages.INFO,
        )
