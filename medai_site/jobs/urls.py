from django.urls import path

from medai_site.jobs import views

app_name = "jobs"
urlpatterns = [
    path("", views.job_list_view, name="list"),
    path("<int:pk>/", views.job_detail_view, name="detail"),
    path("<int:pk>/status/", views.job_status_view, name="status"),
    path("<int:pk>/cancel/", views.job_cancel_view, name="cancel"),
]
