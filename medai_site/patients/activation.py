"""Portal activation tokens: Django's reset-token scheme, but only for portal accounts and
bound to the account's newest issued link.

A token from Django's default generator (a staff or clinician password reset) never validates
here (another key salt), and issuing a new link invalidates every older one of that account
(the newest link's id is part of the hashed value).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib.auth.tokens import PasswordResetTokenGenerator

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class PortalActivationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "medai_site.patients.activation.PortalActivationTokenGenerator"

    def _make_hash_value(self, user: User, timestamp: int) -> str:
        from medai_site.patients.models import PortalLink

        newest = (
            PortalLink.objects.filter(account__user=user)
            .order_by("-pk")
            .values_list("pk", flat=True)
            .first()
        )
        return f"{super()._make_hash_value(user, timestamp)}|link:{newest}"


portal_activation_tokens = PortalActivationTokenGenerator()
