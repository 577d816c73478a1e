from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest, HttpResponse

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.patients.admin_access import PatientBoundAdmin
from medai_site.patients.models import CareTeamMembership, Patient
from medai_site.patients.services import (
    care_team_add,
    care_team_membership_change,
    care_team_remove,
)

if TYPE_CHECKING:
    from medai_site.core.roles import AuthenticatedHttpRequest


class CareTeamInline(admin.TabularInline):
    model = CareTeamMembership
    fk_name = "patient"
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = ["added_at", "added_by"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user":
            # A patient's portal user is never a member of anyone's care team.
            kwargs["queryset"] = get_user_model()._default_manager.filter(
                is_active=True, portal_account__isnull=True
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Patient)
class PatientAdmin(PatientBoundAdmin):
    """Care-team assignment for hospital IT (superusers only); clinicians use the UI. Every
    view is audited, and every care-team change names who added or removed whom."""

    patient_path = ""  # the row is the patient
    identifying_fields = ("mrn", "given_name", "family_name", "birth_date")
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

    def save_formset(  # type: ignore[override]  # the admin serves signed-in staff only
        self,
        request: "AuthenticatedHttpRequest",
        form: ModelForm,
        formset: BaseInlineFormSet,
        change: bool,
    ) -> None:
        if formset.model is not CareTeamMembership:
            super().save_formset(request, form, formset, change)
            return
        # Through the care-team services, so each addition, removal and role change is
        # audited as such (the admin's own log records only "changed").
        formset.save(commit=False)
        for membership in formset.deleted_objects:
            care_team_remove(membership=membership, removed_by=request.user, request=request)
        for membership, _fields in formset.changed_objects:
            care_team_membership_change(
                membership=membership,
                user=membership.user,
                role=membership.role,
                changed_by=request.user,
                request=request,
            )
        for membership in formset.new_objects:
            care_team_add(
                patient=form.instance,
                user=membership.user,
                role=membership.role,
                added_by=request.user,
                request=request,
            )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # The search itself is audited too (what IT looked for), besides each patient shown.
        audit_record(
            action=AuditEvent.Action.PATIENT_LIST_VIEWED,
            request=request,
            detail={"via": "admin", "query": request.GET.get("q", "")},
        )
        return super().changelist_view(request, extra_context)
