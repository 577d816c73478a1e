from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.patients.models import CareTeamMembership, Patient


class CareTeamInline(admin.TabularInline):
    model = CareTeamMembership
    fk_name = "patient"
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = ["added_at", "added_by"]


@admin.register(Patient)
class PatientAdmin(admin.ModelAdmin):
    """Care-team assignment for hospital IT (superusers only); clinicians use the UI."""

    list_display = ["mrn", "family_name", "given_name", "birth_date", "sex", "source"]
    search_fields = ["mrn", "family_name"]
    inlines = [CareTeamInline]
    readonly_fields = ["clinical_facts", "created_at", "created_by"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        patient = Patient.objects.filter(pk=object_id).first()
        if patient is not None:
            audit_record(
                action=AuditEvent.Action.PATIENT_VIEWED,
                request=request,
                obj=patient,
                patient=patient,
                detail={"via": "admin"},
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        audit_record(
            action=AuditEvent.Action.PATIENT_LIST_VIEWED,
            request=request,
            detail={"via": "admin", "query": request.GET.get("q", "")},
        )
        return super().changelist_view(request, extra_context)
