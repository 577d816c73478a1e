from django.contrib import admin
from django.http import HttpRequest

from diagnosis.models import ImageDataset


@admin.register(ImageDataset)
class ImageDatasetAdmin(admin.ModelAdmin):
    """Data sets for training; registered through the training page (which checks them)."""

    list_display = ["name", "task", "kind", "class_names", "split_sizes", "created_at"]
    list_filter = ["kind", "task"]
    readonly_fields = [
        "name",
        "task",
        "kind",
        "path",
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
