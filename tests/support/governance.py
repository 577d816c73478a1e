"""Putting a version into service in tests the way the product requires: the first version of
a task by bootstrap, a later one after a second model admin's approval."""

from __future__ import annotations

from typing import Any


def second_model_admin() -> Any:
    """A model admin other than the ``users`` fixture's (four eyes), created once."""
    from django.contrib.auth import get_user_model

    from medai_site.core.roles import Role
    from tests.platform.factories import UserFactory

    existing = get_user_model().objects.filter(username="madmin2").first()
    return existing or UserFactory(username="madmin2", roles=[Role.MODEL_ADMIN], is_staff=True)


def activate_version(version: Any, user: Any, reason: str = "test fixture") -> Any:
    """Approve ``version`` by a second model admin when the task has served before (with the
    recorded override: fixtures do not wait for validation jobs), then put it into service."""
    from medai_site.registry.services import (
        model_task_bootstrappable,
        model_version_activate,
        model_version_approve,
    )

    if not model_task_bootstrappable(task=version.task) and not version.approvals.exists():
        model_version_approve(
            version=version, user=second_model_admin(), reason=reason, override=True
        )
    return model_version_activate(version=version, user=user, reason=reason)
