"""Users and role groups in the admin: every grant or revocation of a role, a permission,
superuser or staff status is audited; portal users (patients) are patient-bound rows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest

from medai_site.core.access import (
    access_deletion_record,
    group_change_record,
    group_permissions_snapshot,
    user_access_change_record,
    user_access_snapshot,
)
from medai_site.patients.admin_access import PatientBoundAdminMixin

if TYPE_CHECKING:
    # The class get_user_model() returns (settings.AUTH_USER_MODEL), for annotations.
    from django.contrib.auth.models import User as UserRow

    from medai_site.core.roles import AuthenticatedHttpRequest

User = get_user_model()

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(PatientBoundAdminMixin, UserAdmin):
    """Django's user admin, audited; a patient's portal user is shown to hospital IT only."""

    patient_path = "portal_account__patient"
    identifying_fields = ()

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if request.GET.get("model_name") == "careteammembership":
            # The care-team picker offers staff users only, never a patient's portal user
            # (whose names are the patient's).
            queryset = queryset.filter(is_active=True, portal_account__isnull=True)
        return queryset, may_have_duplicates

    def save_model(  # type: ignore[override]  # the admin serves signed-in staff only
        self, request: AuthenticatedHttpRequest, obj: UserRow, form: ModelForm, change: bool
    ) -> None:
        # Read before the save: roles and permissions are saved later, in save_related.
        form._medai_access_before = user_access_snapshot(user=obj)  # type: ignore[attr-defined]  # carried from save_model to save_related
        super().save_model(request, obj, form, change)

    def save_related(  # type: ignore[override]  # the admin serves signed-in staff only
        self, request: AuthenticatedHttpRequest, form: ModelForm, formsets: Any, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        portal = getattr(form.instance, "portal_account", None)
        user_access_change_record(
            user=form.instance,
            before=form._medai_access_before,  # type: ignore[attr-defined]  # carried from save_model to save_related
            changed_by=request.user,
            request=request,
            patient=portal.patient if portal is not None else None,
        )

    def log_deletions(  # type: ignore[override]  # the admin serves signed-in staff only
        self, request: AuthenticatedHttpRequest, queryset: QuerySet
    ) -> Any:
        for user in queryset:
            access_deletion_record(obj=user, changed_by=request.user, request=request)
        return super().log_deletions(request, queryset)


@admin.register(Group)
class AuditedGroupAdmin(GroupAdmin):
    """Role groups: each change of a role's permissions (so of every member's) is audited."""

    def save_model(  # type: ignore[override]  # the admin serves signed-in staff only
        self, request: AuthenticatedHttpRequest, obj: Group, form: ModelForm, change: bool
    ) -> None:
        stored = Group.objects.filter(pk=obj.pk).values_list("name", flat=True).first()
        form._medai_group_before = (stored or obj.name, group_permissions_snapshot(group=obj))  # type: ignore[attr-defined]  # carried from save_model to save_related
        super().save_model(request, obj, form, change)

    def save_related(  # type: ignore[override]  # the admin serves signed-in staff only
        self, request: AuthenticatedHttpRequest, form: ModelForm, formsets: Any, change: bool
    ) -> None:
        super().save_related(request, form, formsets, change)
        before_name, before = form._medai_group_before  # type: ignore[attr-defined]  # carried from save_model to save_related
        group_change_record(
            group=form.instance,
            before_name=before_name,
            before=before,
            changed_by=request.user,
            request=request,
        )

    def log_deletions(  # type: ignore[override]  # the admin serves signed-in staff only
        self, request: AuthenticatedHttpRequest, queryset: QuerySet
    ) -> Any:
        for group in queryset:
            access_deletion_record(obj=group, changed_by=request.user, request=request)
        return super().log_deletions(request, queryset)
