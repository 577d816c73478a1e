"""Root URLs. Every pattern here must have rows in tests/test_authorization_matrix.py."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from medai_site.core import views as core_views

admin.site.site_header = "MedAI administration"
admin.site.site_title = "MedAI admin"
admin.site.index_title = "Models, jobs and audit"

urlpatterns = [
    path("", core_views.home_view, name="home"),
    path("healthz/", core_views.healthz_view, name="healthz"),
    path("accounts/login/", core_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/2fa/", core_views.two_factor_verify_view, name="two_factor_verify"),
    path("accounts/2fa/enrol/", core_views.two_factor_enrol_view, name="two_factor_enrol"),
    path(
        "accounts/2fa/recovery-codes/",
        core_views.two_factor_recovery_codes_view,
        name="two_factor_recovery_codes",
    ),
    path("patients/", include("medai_site.patients.urls")),
    path("jobs/", include("medai_site.jobs.urls")),
    path("models/", include("medai_site.registry.urls")),
    path("diagnosis/", include("diagnosis.urls")),
    path("remote-care/", include("remote_care.urls")),
    path("treatment/", include("treatment.urls")),
    path("portal/", include("remote_care.messaging.portal_urls")),
    path("drugs/", include("drugs.urls")),
    # DICOMweb STOW-RS for PACS and modalities (sender tokens, no session, no CSRF).
    path("dicomweb/", include("diagnosis.pacs.urls")),
    path("admin/", admin.site.urls),
]

handler403 = "medai_site.core.views.permission_denied_view"
