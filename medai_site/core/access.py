"""Who holds which access (roles, permissions, superuser and staff status), and the audit
record of each change to it: a privacy review asks who granted whom what, and when."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group
from django.db import transaction

from medai_site.audit.models import AuditEvent
from medai_site.audit.services import audit_record

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass(frozen=True)
class UserAccess:
    roles: frozenset[str] = field(default_factory=frozenset)
    permissions: frozenset[str] = field(default_factory=frozenset)
    is_superuser: bool = False
    is_staff: bool = False
    is_active: bool = False


def _codes(permissions: Any) -> frozenset[str]:
    return frozenset(
        f"{app}.{codename}"
        for app, codename in permissions.values_list("content_type__app_label", "codename")
    )


def user_access_snapshot(*, user: User) -> UserAccess:
    """The user's access as stored now (a user not saved yet holds none)."""
    if user.pk is None:
        return UserAccess()
    stored = type(user)._default_manager.get(pk=user.pk)
    return UserAccess(
        roles=frozenset(stored.groups.values_list("name", flat=True)),
        permissions=_codes(stored.user_permissions),
        is_superuser=stored.is_superuser,
        is_staff=stored.is_staff,
        is_active=stored.is_active,
    )


def user_access_changes(*, before: UserAccess, after: UserAccess) -> dict[str, Any]:
    """What changed between two snapshots, in the words of the audit event ({} if nothing)."""
    changes: dict[str, Any] = {}
    for key, old, new in (
        ("roles", before.roles, after.roles),
        ("permissions", before.permissions, after.permissions),
    ):
        if new - old:
            changes[f"{key}_granted"] = sorted(new - old)
        if old - new:
            changes[f"{key}_revoked"] = sorted(old - new)
    for key in ("is_superuser", "is_staff", "is_active"):
        old_flag, new_flag = getattr(before, key), getattr(after, key)
        if old_flag != new_flag:
            changes[key.removeprefix("is_")] = {"from": old_flag, "to": new_flag}
    return changes


@transaction.atomic
def user_access_change_record(
    *,
    user: User,
    before: UserAccess,
    changed_by: User,
    request: Any = None,
    patient: Any = None,
) -> AuditEvent | None:
    """Audit what changed in ``user``'s access since ``before`` (read now from the database);
    returns the event, or None when nothing changed. Safe to call after any save."""
    changes = user_access_changes(before=before, after=user_access_snapshot(user=user))
    if not changes:
        return None
    return audit_record(
        action=AuditEvent.Action.RECORD_CHANGED,
        actor=changed_by,
        request=request,
        obj=user,
        patient=patient,
        detail={"access_of": user.get_username(), **changes},
    )


def group_permissions_snapshot(*, group: Group) -> frozenset[str]:
    """The role group's permissions as stored now."""
    if group.pk is None:
        return frozenset()
    return _codes(Group.objects.get(pk=group.pk).permissions)


@transaction.atomic
def group_change_record(
    *,
    group: Group,
    before_name: str,
    before: frozenset[str],
    changed_by: User,
    request: Any = None,
) -> AuditEvent | None:
    """Audit a role group's renaming and the permissions granted to or revoked from it (so
    from every member); returns the event, or None when nothing changed."""
    after = group_permissions_snapshot(group=group)
    changes: dict[str, Any] = {}
    if before_name != group.name:
        changes["renamed"] = {"from": before_name, "to": group.name}
    if after - before:
        changes["permissions_granted"] = sorted(after - before)
    if before - after:
        changes["permissions_revoked"] = sorted(before - after)
    if not changes:
        return None
    return audit_record(
        action=AuditEvent.Action.RECORD_CHANGED,
        actor=changed_by,
        request=request,
        obj=group,
        detail={"role": group.name, **changes},
    )


@transaction.atomic
def access_deletion_record(*, obj: Any, changed_by: User, request: Any = None) -> AuditEvent:
    """Audit the deletion of a user (with the roles they held) or of a role group (with its
    members, who all lose it); call before the row goes."""
    detail: dict[str, Any]
    if isinstance(obj, Group):
        detail = {
            "role_deleted": obj.name,
            "members": sorted(obj.user_set.values_list("username", flat=True)),
        }
    else:
        access = user_access_snapshot(user=obj)
        detail = {
            "user_deleted": obj.get_username(),
            "roles_revoked": sorted(access.roles),
            "superuser": access.is_superuser,
        }
    return audit_record(
        action=AuditEvent.Action.RECORD_CHANGED,
        actor=changed_by,
        request=request,
        obj=obj,
        detail=detail,
    )
