from django.urls import path

from medai_site.registry import views

app_name = "registry"

urlpatterns = [
    path("<int:pk>/governance/", views.governance_view, name="governance"),
    path("<int:pk>/validate/", views.validate_view, name="validate"),
    path("<int:pk>/approve/", views.approve_view, name="approve"),
    path("<int:pk>/activate/", views.activate_view, name="activate"),
    path("<int:pk>/rollback/", views.rollback_view, name="rollback"),
]
