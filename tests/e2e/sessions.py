"""Signing in to the running embedded stack over HTTP."""

from __future__ import annotations

import requests


def login_session(stack, username: str) -> requests.Session:
    session = requests.Session()
    session.get(stack.base_url + "/accounts/login/", timeout=10)
    response = session.post(
        stack.base_url + "/accounts/login/",
        data={
            "username": username,
            "password": stack.passwords[username],
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": stack.base_url + "/accounts/login/"},
        timeout=10,
    )
    totp_secret = stack.passwords.get(f"{username}.totp")
    if totp_secret is not None:
        from tests.e2e.browser import totp_code

        response = session.post(
            stack.base_url + "/accounts/2fa/",
            data={
                "code": totp_code(totp_secret),
                "csrfmiddlewaretoken": session.cookies["csrftoken"],
            },
            headers={"Referer": response.url},
            timeout=10,
        )
    assert response.url.rstrip("/") == stack.base_url, "sign-in failed"
    return session
