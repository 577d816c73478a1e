"""Site-wide writes: role groups and their permissions."""

from __future__ import annotations

from django.contrib.auth.models import Group, Permission

from medai_site.core.roles import Role

# Django-admin permissions each role's group carries (app_label.codename): the platform's
# here, the clinical apps' added by register_role_permissions from their AppConfig.ready().
ROLE_PERMISSIONS: dict[Role, list[str]] = {
    Role.CLINICIAN: [],
    Role.RESEARCHER: [],
    Role.PATIENT: [],
    Role.MODEL_ADMIN: [
        "registry.view_modelversion",
        "registry.change_modelversion",
        "registry.view_modelactivation",
        "jobs.view_job",
        "jobs.change_job",
    ],
}


def register_role_permissions(*, role: Role, permissions: list[str]) -> None:
    """Add Django-admin permissions (app_label.codename) to ``role``'s group from the next
    roles_ensure on (it runs after every migrate); idempotent."""
    for code in permissions:
        if code not in ROLE_PERMISSIONS[role]:
            ROLE_PERMISSIONS[role].append(code)


def roles_ensure() -> None:
    """Create the role groups and give them their permissions; idempotent."""
    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=str(role))
        perms = []
        for code in codes:
            app_label, codename = code.split(".")
            perm = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if perm is not None:
                perms.append(perm)
        group.permissions.add(*perms)
