"""Signed-in test clients."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.test import Client


def login(user: AbstractBaseUser) -> Client:
    """A test client signed in as ``user`` (past the second factor, see tests/conftest.py)."""
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return client


def totp_device_for(user: AbstractBaseUser):
    """The user's confirmed authenticator (a test one is enrolled if they have none)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user, confirmed=True).first() or (
        TOTPDevice.objects.create(user=user, name="test authenticator", confirmed=True)
    )
