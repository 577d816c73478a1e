from django.urls import path

from medai_site.patients import views

app_name = "patients"
urlpatterns = [
    path("", views.patient_list_view, name="list"),
    path("new/", views.patient_create_view, name="create"),
    path("import/", views.patient_import_view, name="import"),
    path("<int:pk>/", views.patient_detail_view, name="detail"),
]
