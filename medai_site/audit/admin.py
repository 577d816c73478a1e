from django.contrib import admin
from django.http import HttpRequest

from medai_site.audit.models import AuditEvent
from medai_site.patients.admin_access import PatientBoundAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(PatientBoundAdmin):
    """Read-only: the trail is append-only, so the admin can search it but never change it.
    Events name patients, so reading them is audited like any patient-bound admin page."""

    list_display = [
        "created_at",
        "actor_username",
        "action",
        "outcome",
        "object_repr",
        "patient",
        "ip_address",
    ]
    list_filter = ["action", "outcome"]
    search_fields = ["actor_username", "object_repr", "object_id", "ip_address"]
    date_hierarchy = "created_at"
    list_select_related = ["patient"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return request.user.is_active and request.user.is_superuser
