"""The population analytics dashboard and its CSV exports.

Researchers and model admins see aggregates over every monitored patient; clinicians see the
same dashboard over their own care teams' patients (the patient selector's scope). Every
figure is an aggregate with small-cell suppression, and every view and export is audited as a
population-level access (no patient on the event).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.charts import chart_card
from medai_site.core.csv_export import csv_response
from medai_site.core.roles import Role, role_required
from remote_care.analytics import charts
from remote_care.analytics.dashboard import (
    EXPORT_TABLES,
    TABLE_TITLES,
    population_dashboard,
    population_table,
)
from remote_care.analytics.filters import SMALL_CELL, PopulationFilter, population_sees_all
from remote_care.analytics.forms import PopulationFilterForm

ANALYTICS_ROLES = (Role.RESEARCHER, Role.MODEL_ADMIN, Role.CLINICIAN)


def _scope(request: HttpRequest) -> str:
    return "all monitored patients" if population_sees_all(user=request.user) else "own patients"


@require_GET
@role_required(*ANALYTICS_ROLES)
def analytics_view(request: HttpRequest) -> HttpResponse:
    """The dashboard for the filter in the query string (defaults: the last 30 days); 400
    with the form's messages on bad dates or ranges."""
    form = PopulationFilterForm(request.GET)
    context: dict = {"form": form, "small_cell": SMALL_CELL, "scope": _scope(request)}
    if not form.is_valid():
        return render(request, "remote_care/analytics.html", context, status=400)
    f: PopulationFilter = form.population_filter()
    dashboard = population_dashboard(user=request.user, f=f)
    audit_record(
        action=AuditEvent.Action.PATIENT_LIST_VIEWED,
        request=request,
        detail={
            "page": "population analytics",
            "scope": context["scope"],
            "filters": f.to_dict(),
            "patients": dashboard.summary.patients,
        },
    )
    found = [
        (
            "risk-over-time",
            f"{dashboard.measure.label} over time",
            charts.risk_over_time_figure(dashboard.chart_periods(), dashboard.measure),
        ),
        (
            "alert-rate",
            "Alerts per 100 patient-days",
            charts.alert_rate_figure(dashboard.chart_alert_periods()),
        ),
        (
            "news2-histogram",
            "NEWS2 distribution",
            charts.news2_histogram_figure(dashboard.chart_histogram()),
        ),
        ("news2-bands", "Clinical-risk bands", charts.bands_figure(dashboard.chart_bands())),
        ("cohorts", "Cohort comparison", charts.cohort_figure(dashboard.chart_cohorts())),
    ]
    context.update(
        {
            "dashboard": dashboard,
            "summary": dashboard.summary_cells,
            "tables": [(k, TABLE_TITLES[k], t) for k, t in dashboard.tables().items()],
            "charts": {
                k: chart_card(k, label, fig, empty="No data in this range.")
                for k, label, fig in found
            },
            "export_query": request.GET.urlencode(),
        }
    )
    return render(request, "remote_care/analytics.html", context)


@require_GET
@role_required(*ANALYTICS_ROLES)
def analytics_export_view(request: HttpRequest) -> HttpResponse:
    """One dashboard table as CSV (?table=cohorts|periods|news2|bands|acknowledge, default
    cohorts), suppressed as on the page, every cell escaped against spreadsheet formulas;
    400 with a plain-text message on a bad filter or table."""
    table_key = request.GET.get("table") or "cohorts"
    if table_key not in EXPORT_TABLES:
        return HttpResponse(
            f"table must be one of {', '.join(EXPORT_TABLES)}.",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    form = PopulationFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponse(form.error_text(), status=400, content_type="text/plain; charset=utf-8")
    f = form.population_filter()
    table = population_table(user=request.user, f=f, table=table_key)
    stem = EXPORT_TABLES[table_key][0]
    audit_record(
        action=AuditEvent.Action.EXPORTED,
        request=request,
        detail={
            "export": "population analytics",
            "table": table_key,
            "format": "csv",
            "scope": _scope(request),
            "filters": f.to_dict(),
            "rows": len(table.rows),
        },
    )
    return csv_response(
        f"{stem}_{f.start.isoformat()}_{f.end.isoformat()}.csv", table.header, table.rows
    )
