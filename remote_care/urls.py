from django.contrib.auth.decorators import login_not_required
from django.urls import include, path

from remote_care.devices import api
from remote_care.messaging import views as messaging_views
from remote_care.monitoring import board_views, views
from remote_care.progression import views as progression_views
from remote_care.risk import views as risk_views

app_name = "remote_care"
urlpatterns = [
    # Devices authenticate with their own tokens, not a session.
    path(
        "api/v1/observations/",
        login_not_required(api.ObservationsView.as_view()),
        name="api_observations",
    ),
    path("patients/<int:patient_pk>/", views.patient_monitoring_view, name="patient_monitoring"),
    path("devices/<int:pk>/revoke/", views.device_revoke_view, name="device_revoke"),
    path("alerts/<int:pk>/", views.alert_action_view, name="alert_action"),
    path("board/", board_views.board_view, name="board"),
    path("analytics/", include("remote_care.analytics.urls")),
    path("board/rows/", board_views.board_rows_view, name="board_rows"),
    path("patients/<int:patient_pk>/vitals/", board_views.vitals_view, name="vitals"),
    path(
        "patients/<int:patient_pk>/vitals/data/",
        board_views.vitals_data_view,
        name="vitals_data",
    ),
]

# FHIR R4, waveforms (device tokens) and the API's schema and docs (clinicians and staff).
from remote_care.devices import api_fhir  # noqa: E402

urlpatterns += [
    path(
        "api/v1/fhir/Bundle/",
        login_not_required(api_fhir.FhirBundleView.as_view()),
        name="api_fhir_bundle",
    ),
    path(
        "api/v1/waveforms/",
        login_not_required(api.WaveformsView.as_view()),
        name="api_waveforms",
    ),
    path(
        "patients/<int:patient_pk>/fhir/",
        api_fhir.patient_fhir_export_view,
        name="patient_fhir_export",
    ),
    path("api/schema/", api.api_schema_view, name="api_schema"),
    path("api/docs/", api.api_docs_view, name="api_docs"),
]

# Messaging between patients and their care teams, and the patients' portal accounts.
urlpatterns += [
    path("messages/", messaging_views.inbox_view, name="inbox"),
    path("messages/<int:pk>/", messaging_views.thread_view, name="thread"),
    path(
        "patients/<int:patient_pk>/messages/new/",
        messaging_views.thread_new_view,
        name="thread_new",
    ),
    path("messages/photos/<int:pk>/", messaging_views.message_photo_view, name="message_photo"),
    path(
        "messages/photos/<int:pk>/to-scan/",
        messaging_views.message_photo_to_scan_view,
        name="message_photo_to_scan",
    ),
    path(
        "patients/<int:patient_pk>/portal/",
        messaging_views.portal_access_view,
        name="portal_access",
    ),
]

# The deterioration model: training and comparison (model admins), facts card (clinicians).
urlpatterns += [
    path("risk-model/", risk_views.risk_models_view, name="risk_models"),
    path("risk-model/facts/", risk_views.risk_model_facts_view, name="risk_model_facts"),
    path(
        "patients/<int:patient_pk>/risk/fhir.json",
        risk_views.patient_risk_fhir_view,
        name="risk_fhir",
    ),
]

# Disease-progression analyses (research).
urlpatterns += [
    path("progression/", progression_views.progression_view, name="progression"),
    path(
        "progression/<int:pk>/",
        progression_views.progression_detail_view,
        name="progression_detail",
    ),
]
