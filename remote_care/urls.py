from django.contrib.auth.decorators import login_not_required
from django.urls import include, path

from remote_care import api, board_views, views

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
    path("analytics/", include("remote_care.analytics_urls")),
    path("board/rows/", board_views.board_rows_view, name="board_rows"),
    path("patients/<int:patient_pk>/vitals/", board_views.vitals_view, name="vitals"),
    path(
        "patients/<int:patient_pk>/vitals/data/",
        board_views.vitals_data_view,
        name="vitals_data",
    ),
]

# FHIR R4, waveforms (device tokens) and the API's schema and docs (clinicians and staff).
from remote_care import api_fhir  # noqa: E402

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
