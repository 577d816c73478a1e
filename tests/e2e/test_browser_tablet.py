"""Each role's pages at desk (1280 px) and tablet (768 px) width: no sideways page scroll,
the navigation on one row (a menu button on a tablet), screenshots to look at."""

from __future__ import annotations

import pytest

from tests.e2e.browser import browser_page, sign_in
from tests.e2e.layout import check_widths

pytestmark = pytest.mark.e2e

PAGES = {
    "dr.adams": {
        "home": "/",
        "board": "/remote-care/board/",
        "analytics": "/remote-care/analytics/",
        "risk-facts": "/remote-care/risk-model/facts/",
        "worklist": "/diagnosis/worklist/",
        "inbox": "/remote-care/messages/",
    },
    "researcher": {
        "researcher-home": "/",
        "drugs": "/drugs/",
        "predictors": "/drugs/predictors/",
        "cohort": "/treatment/cohort/",
        "progression": "/remote-care/progression/",
    },
    "modeladmin": {
        "modeladmin-home": "/",
        "risk-models": "/remote-care/risk-model/",
        "training": "/diagnosis/training/",
        "fleet": "/jobs/fleet/",
    },
}


@pytest.mark.parametrize("username", list(PAGES))
def test_pages_fit_a_tablet(embedded_stack, username):
    stack = embedded_stack
    totp = stack.passwords.get(f"{username}.totp")
    with browser_page() as page:
        sign_in(page, stack.base_url, username, stack.passwords[username], totp_secret=totp)
        for name, path in PAGES[username].items():
            page.set_viewport_size({"width": 1280, "height": 1024})
            page.goto(stack.base_url + path)
            check_widths(page, name)
        assert not page.errors, page.errors
