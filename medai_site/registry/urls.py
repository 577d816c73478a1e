from django.urls import path

from medai_site.registry import shadow_views, views

app_name = "registry"

urlpatterns = [
    path("<int:pk>/governance/", views.governance_view, name="governance"),
    path("<int:pk>/validate/", views.validate_view, name="validate"),
    path("<int:pk>/approve/", views.approve_view, name="approve"),
    path("<int:pk>/activate/", views.activate_view, name="activate"),
    path("<int:pk>/rollback/", views.rollback_view, name="rollback"),
    path("shadow/", shadow_views.shadow_list_view, name="shadow_list"),
    path("versions/<int:pk>/shadow/", shadow_views.shadow_dashboard_view, name="shadow_dashboard"),
    path("versions/<int:pk>/shadow/start/", shadow_views.shadow_start_view, name="shadow_start"),
    path("versions/<int:pk>/shadow/stop/", shadow_views.shadow_stop_view, name="shadow_stop"),
]
