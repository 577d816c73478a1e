from django.contrib import admin
from django.http import HttpRequest

from diagnosis.models import ImageDataset


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
