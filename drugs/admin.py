from django.contrib import admin
from django.http import HttpRequest

from drugs.models import DesignRun, MoleculeDataset


@admin.register(MoleculeDataset)
class MoleculeDatasetAdmin(admin.ModelAdmin):
    """Molecule data sets; uploaded and checked through the drug-design pages."""

    list_display = ["name", "source", "status", "n_molecules", "n_invalid", "created_at"]
    list_filter = ["source", "status"]
    readonly_fields = [
        "name",
        "source",
        "status",
        "original_name",
        "path",
        "file",
        "n_lines",
        "n_molecules",
        "n_invalid",
        "n_duplicates",
        "value_columns",
        "sha256",
        "created_by",
        "created_at",
    ]
    exclude = ["upload", "errors", "reference_metrics", "job"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(DesignRun)
class DesignRunAdmin(admin.ModelAdmin):
    """Design runs, read-only: each one's generator version is managed in the registry."""

    list_display = ["name", "kind", "dataset", "generator", "n_unique", "collapse", "created_at"]
    list_filter = ["kind", "collapse"]
    readonly_fields = [
        "name",
        "kind",
        "status",
        "dataset",
        "config",
        "n_samples",
        "base_version",
        "generator",
        "metrics",
        "collapse",
        "n_sampled",
        "n_valid",
        "n_unique",
        "n_novel",
        "created_by",
        "created_at",
        "finished_at",
    ]
    exclude = ["history", "result", "job"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
