from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from medai_site.core.charts import chart_card
from medai_site.registry import charts
from medai_site.registry.models import ModelActivation, ModelVersion
from medai_site.registry.selectors import (
    model_version_card,
    model_version_headline_metrics,
    model_version_list,
)
from medai_site.registry.services import model_version_retire
from medai_site.registry.shadow_selectors import shadow_card_sections

if TYPE_CHECKING:
    from medai_site.core.roles import AuthenticatedHttpRequest


class ModelActivationInline(admin.TabularInline):
    model = ModelActivation
    fk_name = "version"
    extra = 0
    can_delete = False
    fields = ("activated_at", "kind", "activated_by", "previous", "reason")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    change_form_template = "admin/registry/modelversion/change_form.html"
    list_display = [
        "__str__",
        "task",
        "version",
        "status",
        "key_metrics",
        "created_by",
        "created_at",
        "activated_at",
        "governance",
    ]
    list_filter = ["task", "status"]
    search_fields = ["task", "notes"]
    # Activation and roll-back need a written reason (and activation an approval): they are
    # done on the version's governance page, linked from each row and the change page.
    actions = ["retire"]
    inlines = [ModelActivationInline]
    readonly_fields = [
        "task",
        "version",
        "status",
        "artifact_file",
        "sha256",
        "params",
        "training_data",
        "metrics_summary",
        "created_at",
        "created_by",
        "governance",
        "approved_by",
        "approved_at",
        "activated_by",
        "activated_at",
    ]
    fields = (*readonly_fields[:1], "notes", *readonly_fields[1:])

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Versions are made by training jobs, never typed in by hand.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="artifact")
    def artifact_file(self, obj: ModelVersion) -> str:
        # Shown as a name, not a link: artifacts are never served over HTTP.
        if not obj.artifact:
            return "—"
        size = obj.artifact.size if obj.artifact.storage.exists(obj.artifact.name) else None
        return (
            f"{obj.artifact.name} ({size:,} bytes)"
            if size is not None
            else (f"{obj.artifact.name} (missing!)")
        )

    @admin.display(description="governance")
    def governance(self, obj: ModelVersion) -> str:
        return format_html(
            '<a href="{}">Validation, approval, service</a>',
            reverse("registry:governance", args=[obj.pk]),
        )

    @admin.display(description="metrics")
    def metrics_summary(self, obj: ModelVersion) -> str:
        # Scalars only; curves and matrices are drawn below as charts.
        scalars = model_version_headline_metrics(obj, limit=50)
        return ", ".join(f"{name} {value:.4g}" for name, value in scalars) or "—"

    @admin.display(description="key metrics")
    def key_metrics(self, obj: ModelVersion) -> str:
        return (
            format_html_join(
                ", ",
                "{}&nbsp;{}",
                ((n, f"{v:.3f}") for n, v in model_version_headline_metrics(obj)),
            )
            or "—"
        )

    @admin.action(description="Retire the selected versions (take out of service)")
    def retire(self, request: AuthenticatedHttpRequest, queryset: QuerySet[ModelVersion]) -> None:
        for version in queryset:
            model_version_retire(version=version, user=request.user, request=request)
        self.message_user(request, f"Retired {queryset.count()} version(s).", messages.SUCCESS)

    def render_change_form(
        self, request: HttpRequest, context: dict, *args: Any, **kwargs: Any
    ) -> Any:
        obj = context.get("original")
        if obj is not None:
            # What the version reads and how it flags what it was not trained on.
            context["card"] = [*model_version_card(obj), *shadow_card_sections(version=obj)]
            figures = [
                charts.training_history_figure(obj),
                charts.metrics_bar_figure(obj),
                *charts.evaluation_figures(obj),
                charts.version_comparison_figure(model_version_list(task=obj.task)[:8]),
            ]
            context["charts"] = [
                chart_card(f"metric-chart-{i}", f["layout"]["title"]["text"], f)
                for i, f in enumerate(figures)
                if f is not None
            ]
        return super().render_change_form(request, context, *args, **kwargs)


@admin.register(ModelActivation)
class ModelActivationAdmin(admin.ModelAdmin):
    list_display = [
        "task",
        "version",
        "previous",
        "kind",
        "activated_by",
        "activated_at",
        "reason",
    ]
    list_filter = ["task"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
