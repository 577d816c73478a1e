"""The main navigation each role sees: its sections, their order and the unread badges."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from medai_site.core.roles import Role
from medai_site.patients.services import portal_account_create
from remote_care.messaging.services import message_send, thread_start
from tests.platform.factories import UserFactory, patient_for

pytestmark = pytest.mark.django_db

NAV = re.compile(r'<nav class="mainnav"[^>]*>(.*?)</nav>', re.S)
LINK = re.compile(
    r'<a href="([^"]*)"( aria-current="page")?>([^<]*)'
    r'(?: <span class="nav-badge" aria-label="(\d+) unread">\d+</span>)?</a>'
)


def rendered_nav(user, path: str = "/") -> list[tuple[str, str, bool, int]]:
    """(label, url, current, badge) for each link of the navigation drawn on ``path``."""
    client = Client()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    nav = NAV.search(response.content.decode())
    assert nav is not None
    links = LINK.findall(nav.group(1))
    assert len(links) == nav.group(1).count("<a ")
    return [(label, url, bool(current), int(badge or 0)) for url, current, label, badge in links]


def rendered_bar(user, path: str = "/") -> list[str | tuple[str, list[str]]]:
    """The bar as drawn on ``path``: each plain link's label, or (group, [its labels])."""
    client = Client()
    client.force_login(user)
    nav = NAV.search(client.get(path).content.decode())
    assert nav is not None
    bar: list[str | tuple[str, list[str]]] = []
    for group, menu, link in TOP.findall(nav.group(1)):
        if group:
            bar.append((group, [label for _, _, label, _ in LINK.findall(menu)]))
        else:
            bar.append(LINK.findall(link)[0][2])
    return bar


TOP = re.compile(
    r'<details class="navgroup"><summary[^>]*>([^<]*)(?:<span[^>]*>\d+</span>)?</summary>'
    r'<div class="navmenu">(.*?)</div></details>|(<a .*?</a>)',
    re.S,
)


def test_each_role_sees_its_sections_in_order(users):
    assert rendered_nav(users.clinician_a) == [
        ("Home", "/", True, 0),
        ("Patients", "/patients/", False, 0),
        ("Worklist", "/diagnosis/worklist/", False, 0),
        ("Unmatched studies", "/diagnosis/inbox/", False, 0),
        ("Model monitoring", "/diagnosis/monitoring/", False, 0),
        ("Monitoring", "/remote-care/board/", False, 0),
        ("Messages", "/remote-care/messages/", False, 0),
        ("Population", "/remote-care/analytics/", False, 0),
        ("Jobs", "/jobs/", False, 0),
    ]
    assert rendered_nav(users.researcher) == [
        ("Home", "/", True, 0),
        ("Cohorts", "/treatment/cohort/", False, 0),
        ("Progression", "/remote-care/progression/", False, 0),
        ("Population", "/remote-care/analytics/", False, 0),
        ("Drug design", "/drugs/", False, 0),
        ("Jobs", "/jobs/", False, 0),
    ]
    assert rendered_nav(users.model_admin) == [
        ("Home", "/", True, 0),
        ("Model monitoring", "/diagnosis/monitoring/", False, 0),
        ("Training", "/diagnosis/training/", False, 0),
        ("Treatment models", "/treatment/training/", False, 0),
        ("Cohorts", "/treatment/cohort/", False, 0),
        ("Risk model", "/remote-care/risk-model/", False, 0),
        ("Progression", "/remote-care/progression/", False, 0),
        ("Population", "/remote-care/analytics/", False, 0),
        ("Drug design", "/drugs/", False, 0),
        ("Jobs", "/jobs/", False, 0),
        ("Fleet", "/jobs/fleet/", False, 0),
        ("Admin", "/admin/", False, 0),
    ]
    both = UserFactory(username="both", roles=[Role.CLINICIAN, Role.RESEARCHER])
    assert [label for label, *_ in rendered_nav(both)] == [
        "Home",
        "Patients",
        "Worklist",
        "Unmatched studies",
        "Model monitoring",
        "Monitoring",
        "Messages",
        "Cohorts",
        "Progression",
        "Population",
        "Drug design",
        "Jobs",
    ]
    nobody = UserFactory(username="norole", roles=[])
    assert rendered_nav(nobody) == [("Home", "/", True, 0), ("Jobs", "/jobs/", False, 0)]
    # Hospital IT (a superuser, no role) gets the studies no care team could claim, and the
    # fleet of workers (as model admins do).
    it_admin = UserFactory(username="it_admin", is_staff=True, is_superuser=True)
    assert rendered_nav(it_admin) == [
        ("Home", "/", True, 0),
        ("Unclaimed studies", "/diagnosis/inbox/unclaimed/", False, 0),
        ("Jobs", "/jobs/", False, 0),
        ("Fleet", "/jobs/fleet/", False, 0),
        ("Admin", "/admin/", False, 0),
    ]


def test_less_used_sections_are_grouped_so_no_bar_is_long(users):
    # A model admin had 12 sections in one bar (it wrapped at 1280 px); now 8 entries.
    assert rendered_bar(users.model_admin) == [
        "Home",
        ("Imaging", ["Model monitoring", "Training"]),
        ("Treatment", ["Treatment models", "Cohorts"]),
        ("Remote care", ["Risk model", "Progression", "Population"]),
        "Drug design",
        "Jobs",
        "Fleet",
        "Admin",
    ]
    # Daily work stays one click away; a group of one section is that plain link.
    assert rendered_bar(users.clinician_a) == [
        "Home",
        "Patients",
        "Worklist",
        ("Imaging", ["Unmatched studies", "Model monitoring"]),
        "Monitoring",
        "Messages",
        "Population",
        "Jobs",
    ]
    assert rendered_bar(users.researcher) == [
        "Home",
        "Cohorts",
        ("Remote care", ["Progression", "Population"]),
        "Drug design",
        "Jobs",
    ]
    for user in (users.clinician_a, users.researcher, users.model_admin):
        assert len(rendered_bar(user)) <= 8


def test_a_group_is_marked_current_when_one_of_its_sections_is(users):
    client = Client()
    client.force_login(users.model_admin)
    html = client.get(reverse("diagnosis:training")).content.decode()
    assert '<summary class="current">Imaging</summary>' in html
    assert '<summary class="current">Treatment</summary>' not in html


def test_the_current_section_is_marked(users):
    nav = rendered_nav(users.clinician_a, path=reverse("remote_care:board"))
    assert [label for label, _, current, _ in nav if current] == ["Monitoring"]


def test_unread_messages_are_counted_on_the_clinician_and_portal_menus(users):
    patient = patient_for(users.clinician_a)
    portal_user = portal_account_create(
        patient=patient, username="pat_a", email="", created_by=users.clinician_a
    ).account.user
    thread = thread_start(
        patient=patient, subject="Ankle", started_by=portal_user, from_patient=True, body="Swollen"
    )
    message_send(thread=thread, sender=portal_user, from_patient=True, body="Worse today")
    assert ("Messages", "/remote-care/messages/", False, 2) in rendered_nav(users.clinician_a)
    assert ("Messages", "/remote-care/messages/", False, 0) in rendered_nav(users.clinician_b)
    assert rendered_nav(portal_user, path=reverse("portal:home")) == [
        ("My health", "/portal/", True, 0),
        ("Messages", "/portal/messages/", False, 0),
    ]
    message_send(
        thread=thread, sender=users.clinician_a, from_patient=False, body="Keep it raised."
    )
    assert ("Messages", "/portal/messages/", False, 1) in rendered_nav(
        portal_user, path=reverse("portal:home")
    )


def test_only_the_deepest_section_is_current(users):
    nav = rendered_nav(users.model_admin, path=reverse("jobs:fleet"))
    assert [label for label, _, current, _ in nav if current] == ["Fleet"]
    nav = rendered_nav(users.model_admin, path=reverse("jobs:list"))
    assert [label for label, _, current, _ in nav if current] == ["Jobs"]


def test_the_bar_has_a_menu_button_for_narrow_screens(users):
    """On a tablet the sections fold behind a button that names the navigation it opens
    (static/js/nav.js, a module: no inline script)."""
    client = Client()
    client.force_login(users.clinician_a)
    html = client.get("/").content.decode()
    button = re.search(r"<button[^>]*data-nav-toggle[^>]*>Menu</button>", html)
    assert button is not None
    assert 'aria-controls="mainnav"' in button.group(0)
    assert 'aria-expanded="false"' in button.group(0)
    assert '<nav class="mainnav" id="mainnav"' in html
    assert re.search(r'<script type="module" src="/static/js/nav\.[0-9a-f.]*js"></script>', html)
