"""One of every object a page of MedAI can show, written into a running embedded stack's
database, so that the accessibility test can open every page each role can open.

Run by tests/e2e/test_browser_accessibility.py as ``manage.py shell -c`` with the stack's own
environment (its SQLite database and var/ folder). The objects come from the authorization
matrix's world (tests/support/world.py); they belong to the demo clinician ``dr.baker``, so
that the other browser tests, which work on ``dr.adams``'s patients, see nothing new. Prints
one JSON line: each object's primary key by the world's attribute name, and the password of
the world patient's portal account."""

from __future__ import annotations

import json
import secrets
from types import SimpleNamespace


def a11y_world_build(*, clinician: str = "dr.baker", other_clinician: str = "dr.adams") -> dict:
    """The world for ``clinician``'s care team: {"pks": {attribute: pk}, "portal": {...}}."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from tests.support.world import world_build

    User = get_user_model()
    users = SimpleNamespace(
        clinician_a=User.objects.get(username=clinician),
        clinician_b=User.objects.get(username=other_clinician),
        researcher=User.objects.get(username="researcher"),
        model_admin=User.objects.get(username="modeladmin"),
    )
    with transaction.atomic():
        world = world_build(users)
        password = secrets.token_urlsafe(12)
        users.patient.set_password(password)
        users.patient.save(update_fields=["password"])
    pks = {
        name: value.pk
        for name, value in vars(world).items()
        if getattr(value, "pk", None) is not None
    }
    return {"pks": pks, "portal": {"username": users.patient.username, "password": password}}


def main() -> None:
    print(json.dumps(a11y_world_build()))
