"""Clinician pages for watching many patients: the monitoring board (live rows) and one
patient's vital-sign time series with server-side down-sampling."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from medai_site.audit.exceptions import ObjectNotVisible
from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record
from medai_site.core.charts import chart_card, live_figure
from medai_site.core.pagination import page_of
from medai_site.core.query_params import BadParameter, int_param, parse_aware_datetime
from medai_site.core.roles import Role, role_required
from medai_site.patients.models import Patient
from remote_care.monitoring.board import (
    VitalsWindow,
    board_patients,
    board_rows_for,
    local_naive,
    monitored_patient_get,
    vitals_alerts,
    vitals_level,
    vitals_series,
)
from remote_care.monitoring.charts import news2_sparkline, vitals_figure
from remote_care.physiology.downsample import METHODS as DOWNSAMPLE_METHODS

BOARD_REFRESH_S = 10
#: Patients on one page of the board; the most urgent are always on the first.
BOARD_PAGE_SIZE = 50
VITALS_LABEL = (
    "Vital signs over time: heart rate, SpO2, respiration rate, temperature, blood pressure "
    "and NEWS2 with alert markers"
)
SPARK_HOURS = 24
DEFAULT_POINTS = 1500
MIN_POINTS, MAX_POINTS = 10, 5000
# The range selector's widest choice; longer requests are refused rather than left to run.
MAX_SPAN = timedelta(days=92)
RANGES = (("1h", "1 h"), ("24h", "24 h"), ("7d", "7 d"), ("30d", "30 d"), ("90d", "90 d"))
RANGE_SPANS = {
    "1h": timedelta(hours=1),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
}


def _board_context(request: HttpRequest) -> dict[str, Any]:
    """One page of rows (most urgent first) with sparkline geometry; records one audit event
    per render (polls included, since each shows current patient data)."""
    now = timezone.now()
    pager = page_of(
        request,
        board_patients(user=request.user),
        per_page=BOARD_PAGE_SIZE,
        noun="monitored patient",
    )
    rows = board_rows_for(patients=pager.object_list, now=now)
    start = now - timedelta(hours=SPARK_HOURS)
    for row in rows:
        row.spark = news2_sparkline(row.sparkline, start=start, end=now)
    audit_record(
        action=AuditEvent.Action.PATIENT_LIST_VIEWED,
        request=request,
        detail={
            "page": "monitoring board",
            "patients": len(rows),
            "page_number": pager.page.number,
            "shown": [row.patient.pk for row in rows],
        },
    )
    return {"rows": rows, "pager": pager, "now": now, "refresh_s": BOARD_REFRESH_S}


@require_GET
@role_required(Role.CLINICIAN)
def board_view(request: HttpRequest) -> HttpResponse:
    """The clinician's monitored patients, most urgent first; audited as a list view."""
    return render(request, "remote_care/board.html", _board_context(request))


@require_GET
@role_required(Role.CLINICIAN)
def board_rows_view(request: HttpRequest) -> HttpResponse:
    """The board's table body alone, polled by static/js/board.js (X-MedAI-Poll: 1)."""
    response = render(request, "remote_care/partials/board_rows.html", _board_context(request))
    response["Cache-Control"] = "no-store"
    return response


def _patient_or_404(request: HttpRequest, patient_pk: int) -> Patient:
    try:
        return monitored_patient_get(user=request.user, pk=patient_pk)
    except Patient.DoesNotExist:
        raise ObjectNotVisible(
            "No such patient in your care teams.", model=Patient, pk=patient_pk
        ) from None


@require_GET
@role_required(Role.CLINICIAN)
def vitals_view(request: HttpRequest, patient_pk: int) -> HttpResponse:
    """The chart page (data comes from vitals_data_view); 404 outside the user's teams."""
    patient = _patient_or_404(request, patient_pk)
    audit_record(
        action=AuditEvent.Action.PATIENT_VIEWED,
        request=request,
        obj=patient,
        patient=patient,
        detail={"page": "vital signs"},
    )
    return render(
        request,
        "remote_care/vitals.html",
        {
            "patient": patient,
            "ranges": RANGES,
            "default_range": "24h",
            "points": DEFAULT_POINTS,
            # Drawn by vitals.js from vitals_data_view, which sends its text alternative too.
            "vitals_chart": chart_card(
                "vitals", VITALS_LABEL, None, empty="Loading the vital signs…"
            ),
        },
    )


class BadQuery(ValueError):
    """A query parameter the vitals data endpoint cannot use; its message goes to the client."""


def _parse_time(raw: str, name: str) -> datetime:
    try:
        return parse_aware_datetime(raw, name=name)
    except BadParameter as exc:
        raise BadQuery(str(exc)) from None


def vitals_window_parse(params: Any, *, now: datetime | None = None) -> VitalsWindow:
    """Validate start/end (or range=1h|24h|7d|30d|90d ending now)/points/method (defaults: the
    last 24 h, 1,500 points, minmaxlttb); raises BadQuery with a message for the client."""
    now = now or timezone.now()
    span_key = params.get("range") or "24h"
    if span_key not in RANGE_SPANS:
        raise BadQuery(f"range must be one of {', '.join(RANGE_SPANS)}.")
    end = _parse_time(params["end"], "end") if params.get("end") else now
    start = (
        _parse_time(params["start"], "start")
        if params.get("start")
        else end - RANGE_SPANS[span_key]
    )
    if start >= end:
        raise BadQuery("start must be before end.")
    if end - start > MAX_SPAN:
        raise BadQuery(f"The range may span at most {MAX_SPAN.days} days.")
    try:
        points = int_param(
            params, "points", default=DEFAULT_POINTS, min_value=MIN_POINTS, max_value=MAX_POINTS
        )
    except BadParameter as exc:
        raise BadQuery(str(exc)) from None
    method = params.get("method") or "minmaxlttb"
    if method not in DOWNSAMPLE_METHODS:
        raise BadQuery(f"method must be one of: {', '.join(DOWNSAMPLE_METHODS)}.")
    return VitalsWindow(start=start, end=end, points=points, method=method)


@require_GET
@role_required(Role.CLINICIAN)
def vitals_data_view(request: HttpRequest, patient_pk: int) -> JsonResponse:
    """JSON for the vitals chart: each series down-sampled to at most ``points`` points (from
    the raw sets or the roll-ups, by the range's length), alert markers and a ready Plotly
    figure; 400 with {"error": message} on bad parameters."""
    patient = _patient_or_404(request, patient_pk)
    try:
        window = vitals_window_parse(request.GET)
    except BadQuery as exc:
        return JsonResponse({"error": str(exc)}, status=400)
    series = vitals_series(patient=patient, window=window)
    alerts = vitals_alerts(patient=patient, window=window)
    audit_record(
        action=AuditEvent.Action.PATIENT_VIEWED,
        request=request,
        obj=patient,
        patient=patient,
        detail={
            "page": "vital signs data",
            "start": window.start.isoformat(),
            "end": window.end.isoformat(),
        },
    )
    response = JsonResponse(
        {
            "start": local_naive(window.start).isoformat(),
            "end": local_naive(window.end).isoformat(),
            "points": window.points,
            "method": window.method,
            # What the points were drawn from: "raw" sets, or "minute" / "hour" roll-ups.
            "level": vitals_level(window),
            "series": {key: s.to_dict() for key, s in series.items()},
            "alerts": [
                {
                    "raised_at": local_naive(a.raised_at).isoformat(),
                    "level": a.level,
                    "news2_total": a.news2_total,
                    "status": a.status,
                }
                for a in alerts
            ],
            "figure": live_figure(
                vitals_figure(series, alerts, start=window.start, end=window.end),
                label=VITALS_LABEL,
            ),
        }
    )
    response["Cache-Control"] = "no-store"
    return response
