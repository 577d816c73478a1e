from django.urls import path

from medai_site.jobs import views

app_name = "jobs"
urlpatterns = [
    path("", views.job_list_view, name="list"),
    path("<int:pk>/", views.job_detail_view, name="detail"),
    path("<int:pk>/status/", views.job_status_view, name="status"),
    path("<int:pk>/cancel/", views.job_cancel_view, name="cancel"),
    path("fleet/", views.fleet_view, name="fleet"),
    path("fleet/workers/<int:pk>/drain/", views.fleet_worker_drain_view, name="fleet_drain"),
    path("fleet/jobs/<int:pk>/cancel/", views.fleet_job_cancel_view, name="fleet_cancel"),
    path("fleet/jobs/<int:pk>/requeue/", views.fleet_job_requeue_view, name="fleet_requeue"),
]
