"""DICOMweb (PS3.18) at /dicomweb/: STOW-RS only, for senders with a token."""

from django.urls import path

from diagnosis.pacs import api

app_name = "dicomweb"
urlpatterns = [
    path("studies", api.stow_view, name="stow"),
    path("studies/<str:study_uid>", api.stow_view, name="stow_study"),
]
