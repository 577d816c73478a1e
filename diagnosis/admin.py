from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from diagnosis.models import DicomDestination, ImageDataset
from diagnosis.pacs.forms import DicomDestinationForm
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
