"""The population analytics pages (included into the remote_care namespace)."""

from django.urls import path

from remote_care.analytics import views as analytics_views

urlpatterns = [
    path("", analytics_views.analytics_view, name="analytics"),
    path("export.csv", analytics_views.analytics_export_view, name="analytics_export"),
]
