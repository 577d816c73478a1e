from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from medai_site.jobs.models import Job
from medai_site.jobs.services import job_cancel, jobs_sweep


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "title",
        "kind",
        "owner",
        "status",
        "progress",
        "attempts",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "kind"]
    search_fields = ["title", "kind", "celery_id"]
    readonly_fields = [f.name for f in Job._meta.fields if f.name != "id"]
    actions = ["cancel_jobs", "sweep_now"]

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
