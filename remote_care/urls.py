from django.contrib.auth.decorators import login_not_required
from django.urls import path

from remote_care import api, views

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
]
