from django.urls import path

from medai_site.registry import views

app_name = "registry"
urlpatterns = [
    path("shadow/", views.shadow_list_view, name="shadow_list"),
    path("versions/<int:pk>/shadow/", views.shadow_dashboard_view, name="shadow_dashboard"),
    path("versions/<int:pk>/shadow/start/", views.shadow_start_view, name="shadow_start"),
    path("versions/<int:pk>/shadow/stop/", views.shadow_stop_view, name="shadow_stop"),
]
