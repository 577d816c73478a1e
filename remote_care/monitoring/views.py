"""The patient's remote-monitoring page (devices, readings, alerts, messages, risk) and its
device and alert actions."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from medai_site.audit.exceptions import ObjectNotVisible
from medai_site.core.charts import chart_card
from medai_site.core.pagination import page_of
from medai_site.core.query_params import bad_request
from medai_site.core.roles import Role, role_required
from medai_site.patients.pages import PatientPage, patient_page
from remote_care.devices.forms import DeviceForm
from remote_care.devices.selectors import device_get, devices_for, observations_recent
from remote_care.devices.services import device_register, device_revoke
from remote_care.messaging.forms import PortalInviteForm
from remote_care.messaging.selectors import portal_account_for, threads_for_patient
from remote_care.models import Alert, Device
from remote_care.monitoring.charts import risk_history_figure
from remote_care.monitoring.selectors import alert_get, alerts_for, news2_history
from remote_care.monitoring.services import alert_transition
from remote_care.risk.selectors import risk_history


@require_http_methods(["GET", "POST"])
@role_required(Role.CLINICIAN)
@patient_page("remote monitoring")
def patient_monitoring_view(request: HttpRequest, page: PatientPage) -> HttpResponse:
    patient = page.patient
    form = DeviceForm(request.POST or None)
    issued = None
    status = 200
    if request.method == "POST":
        if form.is_valid():
            issued = device_register(
                patient=patient,
                label=form.cleaned_data["label"],
                registered_by=request.user,
                request=request,
            )
            form = DeviceForm()
            status = 201
        else:
            status = 400
    page.viewed()
    risk_points = risk_history(patient=patient, since=timezone.now() - timedelta(days=7))
    news2_points = news2_history(patient=patient, since=timezone.now() - timedelta(days=7))
    # "Insufficient data" sets have no risk to plot; the page lists them instead.
    risk_figure = risk_history_figure(
        [(r.taken_at, r.risk) for r in risk_points if r.risk is not None], news2_points
    )
    risk_insufficient = [r for r in reversed(risk_points) if r.risk is None]
    alerts_pager = page_of(
        request, alerts_for(patient=patient), per_page=20, noun="alert", param="alerts_page"
    )
    return render(
        request,
        "remote_care/patient_monitoring.html",
        {
            "patient": patient,
            "form": form,
            "issued": issued,
            "devices": devices_for(patient=patient),
            "observations": observations_recent(patient=patient),
            "alerts": alerts_pager.object_list,
            "alerts_pager": alerts_pager,
            "threads": threads_for_patient(patient=patient, user=request.user)[:10],
            "portal_account": portal_account_for(patient=patient),
            # A portal sign-in link is shown once, on the page after it was issued.
            "portal_link": request.session.pop("portal_link", None),
            "portal_form": PortalInviteForm(),
            "risk_latest": risk_points[-1] if risk_points else None,
            "risk_insufficient": risk_insufficient,
            "risk_count": len(risk_points),
            "risk_chart": risk_figure
            and chart_card("risk-history", "Model risk and NEWS2", risk_figure),
        },
        status=status,
    )


@require_POST
@role_required(Role.CLINICIAN)
def device_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        device = device_get(user=request.user, pk=pk)
    except Device.DoesNotExist:
        raise ObjectNotVisible("No such device among your patients.", model=Device, pk=pk) from None
    device_revoke(device=device, user=request.user, request=request)
    messages.success(request, f"{device.label}: token revoked; the device can no longer post.")
    return redirect("remote_care:patient_monitoring", patient_pk=device.patient_id)


@require_POST
@role_required(Role.CLINICIAN)
def alert_action_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        alert = alert_get(user=request.user, pk=pk)
    except Alert.DoesNotExist:
        raise ObjectNotVisible("No such alert among your patients.", model=Alert, pk=pk) from None
    action = request.POST.get("action", "")
    if action not in {"acknowledge", "escalate", "resolve"}:
        return bad_request("Unknown action; use acknowledge, escalate or resolve.")
    try:
        alert_transition(alert=alert, action=action, user=request.user, request=request)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Alert {action}d.")
    return redirect("remote_care:patient_monitoring", patient_pk=alert.patient_id)
