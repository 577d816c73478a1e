from django.urls import path

from diagnosis import views
from diagnosis.pacs import views as pacs_views

app_name = "diagnosis"
urlpatterns = [
    path("patients/<int:patient_pk>/scans/", views.patient_scans_view, name="patient_scans"),
    path("scans/<int:pk>/", views.scan_detail_view, name="scan_detail"),
    path("scans/<int:pk>/hold/", views.scan_hold_view, name="scan_hold"),
    path("scans/<int:pk>/frames/<int:index>/", views.scan_frame_view, name="scan_frame"),
    path("scans/<int:pk>/review/", views.scan_review_view, name="scan_review"),
    path("scans/<int:pk>/score-anyway/", views.scan_override_view, name="scan_override"),
    path("scans/<int:pk>/fhir.json", views.scan_fhir_view, name="scan_fhir"),
    path("patients/<int:patient_pk>/fhir.json", views.patient_fhir_view, name="patient_fhir"),
    path("predictions/<int:pk>/sr.dcm", views.prediction_sr_view, name="prediction_sr"),
    path("predictions/<int:pk>/sc.dcm", views.prediction_sc_view, name="prediction_sc"),
    path("sends/<int:pk>/send-again/", pacs_views.send_again_view, name="send_again"),
    path("worklist/", views.worklist_view, name="worklist"),
    path("inbox/", pacs_views.inbox_view, name="inbox"),
    path("inbox/<int:pk>/", pacs_views.inbox_assign_view, name="inbox_assign"),
    path("inbox/unclaimed/", pacs_views.unclaimed_view, name="inbox_unclaimed"),
    path(
        "inbox/unclaimed/<int:pk>/discard/",
        pacs_views.unclaimed_discard_view,
        name="inbox_discard",
    ),
    path("monitoring/", views.monitoring_view, name="monitoring"),
    path("training/", views.training_view, name="training"),
    path("training/<int:pk>/", views.training_job_view, name="training_job"),
    path("datasets/new/", views.dataset_create_view, name="dataset_create"),
    path("datasets/upload/", views.dataset_upload_view, name="dataset_upload"),
    path("datasets/from-reviews/", views.dataset_from_reviews_view, name="dataset_from_reviews"),
]
