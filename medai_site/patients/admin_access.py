"""Admin access to patient-bound rows: staff without clinical access (model admins, and any
researcher made staff) never see them or their identifying fields; hospital IT (superusers)
may, and every admin view or change of such a row is audited with its patient."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.patients.models import Patient


def admin_clinical_access(request: HttpRequest) -> bool:
    """True for admin users who may see patient identifiers: hospital IT (superusers) only;
    model admins manage models and jobs, not patients."""
    user = request.user
    return bool(user.is_active and user.is_superuser)


if TYPE_CHECKING:  # what the mixin extends, for the type checker; at run time, the MRO
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = object


class PatientBoundAdminMixin(_ModelAdmin):
    """Mix into a ModelAdmin whose rows may belong to a patient.

    ``patient_path`` is the ORM path from the row to its patient ("" when the row is the
    patient); ``identifying_fields`` are the fields (and lookups) that show or search by the
    patient. Staff without clinical access get only rows with no patient, without those fields.
    """

    patient_path: str = "patient"
    identifying_fields: Sequence[str] = ("patient",)

    # --- scoping -------------------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        if admin_clinical_access(request):
            return queryset
        if not self.patient_path:
            return queryset.none()
        return queryset.filter(**{f"{self.patient_path}__isnull": True})

    def _hides(self, request: HttpRequest, name: Any) -> bool:
        if admin_clinical_access(request) or not isinstance(name, str):
            return False
        root = name.split("__", 1)[0].lstrip("^=@")
        return root in self.identifying_fields or name.lstrip("^=@") in self.identifying_fields

    def _without_identifiers(self, request: HttpRequest, names: Sequence[Any]) -> list[Any]:
        kept: list[Any] = []
        for name in names:
            if isinstance(name, list | tuple):  # several fields on one line of a fieldset
                line = self._without_identifiers(request, name)
                if line:
                    kept.append(tuple(line))
            elif not self._hides(request, name):
                kept.append(name)
        return kept

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return self._without_identifiers(request, super().get_list_display(request))

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        return self._without_identifiers(request, super().get_list_filter(request))

    def get_search_fields(self, request: HttpRequest) -> list[Any]:
        return self._without_identifiers(request, super().get_search_fields(request))

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> list[Any]:
        return self._without_identifiers(request, super().get_fields(request, obj))

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[Any]:
        return self._without_identifiers(request, super().get_readonly_fields(request, obj))

    def get_fieldsets(self, request: HttpRequest, obj: Model | None = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        return [
            (name, {**options, "fields": self._without_identifiers(request, options["fields"])})
            for name, options in fieldsets
        ]

    # --- auditing ------------------------------------------------------------------------

    def _patients_of(self, pks: Sequence[Any]) -> dict[int, list[str]]:
        """Patient pk -> the pks of the rows (among ``pks``) that belong to that patient."""
        path = self.patient_path or "pk"
        rows = self.model._default_manager.filter(pk__in=list(pks)).values_list("pk", path)
        owned: dict[int, list[str]] = defaultdict(list)
        for pk, patient_id in rows:
            if patient_id is not None:
                owned[patient_id].append(str(pk))
        return owned

    def _audit_patients(
        self, request: HttpRequest, pks: Sequence[Any], action: str, detail: dict[str, Any]
    ) -> None:
        owned = self._patients_of(pks)
        patients = Patient.objects.in_bulk(list(owned))
        for patient_id, row_ids in sorted(owned.items()):
            audit_record(
                action=action,
                request=request,
                patient=patients[patient_id],
                detail={
                    "via": "admin",
                    "model": self.model._meta.label,
                    "ids": row_ids,
                    **detail,
                },
            )

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}) or {}
        changelist = changelist.get("cl")
        if changelist is not None and response.status_code == 200:
            # One event per patient whose rows the page shows (the list shows up to a page).
            self._audit_patients(
                request,
                [row.pk for row in changelist.result_list],
                AuditEvent.Action.RECORD_VIEWED,
                {"page": "changelist", "query": request.GET.get("q", "")[:200]},
            )
        return response

    def _audit_object_page(self, request: HttpRequest, object_id: str, page: str) -> None:
        obj = self.get_object(request, object_id)
        if obj is not None:
            self._audit_patients(request, [obj.pk], AuditEvent.Action.RECORD_VIEWED, {"page": page})

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: Any = None
    ) -> HttpResponse:
        response = super().change_view(request, object_id, form_url, extra_context)
        if response.status_code == 200:
            self._audit_object_page(request, object_id, "change")
        return response

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        response = super().history_view(request, object_id, extra_context)
        if response.status_code == 200:
            self._audit_object_page(request, object_id, "history")
        return response

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: Any = None
    ) -> HttpResponse:
        response = super().delete_view(request, object_id, extra_context)
        if request.method == "GET" and response.status_code == 200:
            # The confirmation page lists the row and everything deleted with it.
            self._audit_object_page(request, object_id, "delete")
        return response

    def log_addition(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._audit_patients(
            request, [obj.pk], AuditEvent.Action.RECORD_CHANGED, {"added": True, "change": message}
        )
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: Model, message: Any) -> Any:
        self._audit_patients(
            request, [obj.pk], AuditEvent.Action.RECORD_CHANGED, {"change": message}
        )
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: QuerySet) -> Any:
        # Called before the rows go, so their patients can still be read.
        self._audit_patients(
            request,
            list(queryset.values_list("pk", flat=True)),
            AuditEvent.Action.RECORD_CHANGED,
            {"deleted": True},
        )
        return super().log_deletions(request, queryset)


class PatientBoundAdmin(PatientBoundAdminMixin, admin.ModelAdmin):
    """A ModelAdmin for a patient-bound model (see PatientBoundAdminMixin)."""
