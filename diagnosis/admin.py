from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from diagnosis.models import DicomDestination, DicomWebSender, ImageDataset
from diagnosis.pacs.forms import DicomDestinationForm
from diagnosis.pacs.services import dicomweb_sender_issue, dicomweb_sender_revoke
from diagnosis.services import dataset_delete


@admin.register(ImageDataset)
class ImageDatasetAdmin(admin.ModelAdmin):
    """Data sets for training; registered through the training page (which checks them)."""

    list_display = ["name", "task", "kind", "status", "class_names", "split_sizes", "created_at"]
    list_filter = ["kind", "status", "task"]
    # Status, place and preview come only from the check job: editing them here would let a
    # data set skip its check or point somewhere it was never checked.
    readonly_fields = [
        "name",
        "task",
        "kind",
        "status",
        "message",
        "path",
        "uploaded",
        "preview",
        "file",
        "class_names",
        "split_sizes",
        "image_shape",
        "sha256",
        "created_by",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def delete_model(self, request: HttpRequest, obj: ImageDataset) -> None:
        # Through the service, so an uploaded data set's files go with its row.
        dataset_delete(dataset=obj, user=request.user, request=request)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for dataset in queryset:
            dataset_delete(dataset=dataset, user=request.user, request=request)


class DicomWebSenderForm(forms.ModelForm):
    class Meta:
        model = DicomWebSender
        fields = ["name"]
        help_texts = {
            "name": "The PACS or modality, e.g. 'Radiology PACS'. Its token is shown once."
        }


@admin.register(DicomWebSender)
class DicomWebSenderAdmin(admin.ModelAdmin):
    """STOW-RS senders for hospital IT (superusers only): adding one issues its token, shown
    once on the next page; revoking is an action. Tokens are stored only as hashes."""

    form = DicomWebSenderForm
    list_display = ["name", "token_prefix", "active", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["active"]
    readonly_fields = [
        "token_prefix",
        "active",
        "created_by",
        "created_at",
        "last_used_at",
        "revoked_at",
    ]
    actions = ["revoke_senders"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # Revoked, never deleted: the audit trail names the sender.
        return False

    def save_model(
        self, request: HttpRequest, obj: DicomWebSender, form: Any, change: bool
    ) -> None:
        # The form has checked the name (required, at most 64 characters, not taken).
        issued = dicomweb_sender_issue(name=obj.name, created_by=request.user, request=request)
        obj.pk = issued.sender.pk
        obj.token_prefix = issued.sender.token_prefix
        # Kept on this request's object only (the admin instance is shared between threads).
        obj.issued_token = issued.token  # type: ignore[attr-defined]  # set for response_add

    def response_add(
        self, request: HttpRequest, obj: DicomWebSender, post_url_continue: Any = None
    ) -> HttpResponse:
        # The token exists only in this response: it is never stored, logged or put in a
        # message cookie.
        return TemplateResponse(
            request,
            "admin/diagnosis/dicomwebsender/issued.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "sender": obj,
                "token": getattr(obj, "issued_token", ""),
                "title": f"Token for {obj.name}",
            },
        )

    @admin.action(description="Revoke the selected senders' tokens")
    def revoke_senders(self, request: HttpRequest, queryset: QuerySet) -> None:
        for sender in queryset:
            dicomweb_sender_revoke(sender=sender, user=request.user, request=request)
        self.message_user(request, f"Revoked {queryset.count()} sender token(s).")


@admin.register(DicomDestination)
class DicomDestinationAdmin(admin.ModelAdmin):
    """PACS destinations for MedAI's results, set up by hospital IT (superusers only): the
    secret is written, never shown back."""

    form = DicomDestinationForm
    list_display = [
        "name",
        "kind",
        "enabled",
        "send_after_classification",
        "send_after_review",
        "source_ae_title",
    ]
    list_filter = ["kind", "enabled"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return self.has_module_permission(request)
