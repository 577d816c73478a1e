from django.urls import path

from treatment import views

app_name = "treatment"
urlpatterns = [
    path("patients/<int:patient_pk>/", views.patient_options_view, name="patient_options"),
    path(
        "patients/<int:patient_pk>/assessments/<int:pk>/",
        views.assessment_view,
        name="assessment",
    ),
    path(
        "patients/<int:patient_pk>/assessments/<int:pk>/plan/",
        views.plan_create_view,
        name="plan_create",
    ),
    path("patients/<int:patient_pk>/fhir.json", views.patient_fhir_view, name="patient_fhir"),
    path("training/", views.training_view, name="training"),
    path("cohort/", views.cohort_view, name="cohort"),
    path("cohort/genomics/", views.genomics_start_view, name="cohort_genomics"),
    path("cohort/<int:pk>/", views.cohort_detail_view, name="cohort_detail"),
]
