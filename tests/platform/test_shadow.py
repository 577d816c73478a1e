"""Shadow mode in the registry: who may start a shadow and when, the scoring helper families
call (idempotent, never raising), the agreement dashboard and its access."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from medai_site.audit.models import AuditEvent
from medai_site.registry.models import ModelShadow, ModelVersion, ShadowResult
from medai_site.registry.shadow import (
    ShadowAnswer,
    ShadowItem,
    model_version_shadow_start,
    model_version_shadow_stop,
    shadow_family_register,
    shadow_models_clear,
    shadow_results_label,
    shadow_run,
)
from medai_site.registry.shadow_selectors import (
    model_version_shadow_record,
    shadow_card_sections,
    shadow_dashboard,
)
from tests.platform.factories import UserFactory
from tests.support.clients import login

pytestmark = pytest.mark.django_db

TASK = "test.shadowed"
UNSCORED = "test.generator"

# A family of the test app: its "model" is the artifact's text, a threshold on the item.
shadow_family_register(label="test family", tasks=lambda: [TASK], reference="test label")
shadow_family_register(
    label="test generator",
    tasks=lambda: [UNSCORED],
    scores_live=False,
    note="each run is its own generation",
)


@pytest.fixture(autouse=True)
def _fresh_models():
    shadow_models_clear()
    yield
    shadow_models_clear()


def _version(users, *, task=TASK, status=ModelVersion.Status.READY, approved=True, cut=0.5):
    from medai_site.registry.services import model_version_register

    version = model_version_register(
        task=task,
        artifact=f"cut={cut}".encode(),
        created_by=users.model_admin,
        metrics={"test_auc": 0.8 + cut / 10},
    )
    # Approval belongs to the governance service (four eyes): a second admin, set directly.
    approver = UserFactory(username=f"approver{version.pk}")
    ModelVersion.objects.filter(pk=version.pk).update(
        status=status, approved_by=approver if approved else None
    )
    version.refresh_from_db()
    return version


@pytest.fixture
def pair(users):
    """An active version and an approved ready one of TASK."""
    active = _version(users, status=ModelVersion.Status.ACTIVE, cut=0.5)
    challenger = _version(users, cut=0.7)
    return active, challenger


def _load(content: bytes) -> float:
    return float(content.decode().split("=")[1])


def _score(version, cut, items):
    return [
        ShadowAnswer(label="high" if i.payload >= cut else "low", score=i.payload) for i in items
    ]


def _items(values, *, cut=0.5):
    return [
        ShadowItem(
            item_type="test.item",
            item_id=str(n),
            active_label="high" if v >= cut else "low",
            active_score=v,
            payload=v,
        )
        for n, v in enumerate(values)
    ]


def _run(active, values):
    return shadow_run(
        task=TASK, active_version=active, items=_items(values), load=_load, score=_score
    )


def test_start_is_refused_unless_approved_not_active_and_a_version_is_in_service(users, pair):
    active, challenger = pair
    unapproved = _version(users, approved=False)
    with pytest.raises(ValidationError, match="not approved"):
        model_version_shadow_start(version=unapproved, user=users.model_admin, reason="try")
    with pytest.raises(ValidationError, match="is the active version"):
        model_version_shadow_start(version=active, user=users.model_admin, reason="try")
    with pytest.raises(ValidationError, match="Say why"):
        model_version_shadow_start(version=challenger, user=users.model_admin, reason="  ")
    lonely = _version(users, task="test.shadowed.other")
    with pytest.raises(ValidationError, match="No live path scores"):
        model_version_shadow_start(version=lonely, user=users.model_admin, reason="try")
    generator = _version(users, task=UNSCORED)
    _version(users, task=UNSCORED, status=ModelVersion.Status.ACTIVE)
    with pytest.raises(ValidationError, match="its own generation"):
        model_version_shadow_start(version=generator, user=users.model_admin, reason="try")
    ModelVersion.objects.filter(pk=active.pk).update(status=ModelVersion.Status.RETIRED)
    with pytest.raises(ValidationError, match="no active version"):
        model_version_shadow_start(version=challenger, user=users.model_admin, reason="try")
    assert not ModelShadow.objects.exists()


def test_one_shadow_per_task_start_and_stop_are_idempotent_and_audited(users, pair):
    active, challenger = pair
    shadow = model_version_shadow_start(
        version=challenger, user=users.model_admin, reason="compare on live scans"
    )
    again = model_version_shadow_start(version=challenger, user=users.model_admin, reason="x")
    assert again.pk == shadow.pk and ModelShadow.objects.count() == 1
    second = _version(users, cut=0.9)
    with pytest.raises(ValidationError, match="already running in shadow"):
        model_version_shadow_start(version=second, user=users.model_admin, reason="too")
    stopped = model_version_shadow_stop(version=challenger, user=users.model_admin, reason="done")
    assert stopped is not None and stopped.stopped_by == users.model_admin
    assert model_version_shadow_stop(version=challenger, user=users.model_admin) is None
    # Now the other version may run.
    model_version_shadow_start(version=second, user=users.model_admin, reason="next")
    events = AuditEvent.objects.filter(detail__has_key="shadow").order_by("id")
    assert [(e.detail["shadow"], e.object_id) for e in events] == [
        ("started", str(challenger.pk)),
        ("stopped", str(challenger.pk)),
        ("started", str(second.pk)),
    ]
    assert events[0].detail["reason"] == "compare on live scans"
    assert events[0].detail["active_version"] == active.version
    assert events[0].actor == users.model_admin and events[0].patient is None


def test_scores_are_stored_once_per_item_and_agreement_counted(users, pair):
    active, challenger = pair
    assert _run(active, [0.1, 0.6]) == 0  # no shadow running: nothing stored
    model_version_shadow_start(version=challenger, user=users.model_admin, reason="go")
    assert _run(active, [0.1, 0.6, 0.8]) == 3
    # A rerun (a redelivered task) stores nothing twice; a new item is added.
    assert _run(active, [0.1, 0.6, 0.8, 0.2]) == 1
    results = ShadowResult.objects.filter(shadow_version=challenger).order_by("item_id")
    assert [(r.active_label, r.shadow_label, r.agrees) for r in results] == [
        ("low", "low", True),
        ("high", "low", False),
        ("high", "high", True),
        ("low", "low", True),
    ]
    assert {r.active_version_id for r in results} == {active.pk}
    assert {r.family for r in results} == {"test family"}


def test_a_failing_shadow_is_logged_and_counted_never_raised(users, pair, caplog):
    active, challenger = pair
    shadow = model_version_shadow_start(version=challenger, user=users.model_admin, reason="go")

    def broken(version, model, items):
        raise RuntimeError("out of memory on the shadow")

    stored = shadow_run(
        task=TASK, active_version=active, items=_items([0.3]), load=_load, score=broken
    )
    assert stored == 0 and not ShadowResult.objects.exists()
    shadow.refresh_from_db()
    assert shadow.failures == 1 and "out of memory" in shadow.last_error
    assert "shadow scoring" in caplog.text
    # A scorer that answers for the wrong number of items is a failure too, not a bad row.
    shadow_run(
        task=TASK,
        active_version=active,
        items=_items([0.3, 0.4]),
        load=_load,
        score=lambda v, m, items: [ShadowAnswer(label="low")],
    )
    shadow.refresh_from_db()
    assert shadow.failures == 2 and not ShadowResult.objects.exists()


def _seeded(users, pair):
    active, challenger = pair
    model_version_shadow_start(version=challenger, user=users.model_admin, reason="go")
    _run(active, [0.1, 0.55, 0.6, 0.8, 0.9])
    # Two of yesterday's: the chart has two days.
    ShadowResult.objects.filter(item_id__in=["0", "1"]).update(
        created_at=timezone.now() - timedelta(days=1)
    )
    # Clinicians labelled two items: only the shadow was right on item 1, both on item 3.
    shadow_results_label(item_type="test.item", item_id=1, label="low")
    shadow_results_label(item_type="test.item", item_id=3, label="high")
    return active, challenger


def test_dashboard_counts_per_class_per_day_and_against_clinicians(users, pair):
    active, challenger = _seeded(users, pair)
    board = shadow_dashboard(version=challenger)
    assert board.active == active
    assert (board.counts.scored, board.counts.agreed) == (5, 3)
    assert board.labels == ["high", "low"]
    rows = {row.label: (row.counts, row.agreed) for row in board.confusion}
    # Active "high" on 4 items: the shadow said high on 2 and low on 2.
    assert rows == {"high": ([2, 2], 2), "low": ([0, 1], 1)}
    assert [(d.scored, d.agreed) for d in board.days] == [(2, 1), (3, 2)]
    c = board.counts
    assert (c.labelled, c.shadow_correct, c.active_correct) == (2, 2, 1)
    assert (c.shadow_accuracy, c.active_accuracy) == (1.0, 0.5)
    assert c.mean_score_gap == pytest.approx(0.0)
    record = model_version_shadow_record(version=challenger)
    assert len(record) == 1 and record[0].running and record[0].counts.scored == 5
    (section,) = shadow_card_sections(version=challenger)
    assert section.key == "shadow" and "5 live items scored" in section.summary
    assert shadow_card_sections(version=active) == []


def test_dashboard_access_matrix(users, pair):
    _, challenger = pair
    url = reverse("registry:shadow_dashboard", args=[challenger.pk])
    for user in (users.clinician_a, users.researcher):
        assert login(user).get(url).status_code == 403
        assert login(user).get(reverse("registry:shadow_list")).status_code == 403
        response = login(user).post(
            reverse("registry:shadow_start", args=[challenger.pk]), {"reason": "x"}
        )
        assert response.status_code == 403
    assert not ModelShadow.objects.exists()
    superuser = UserFactory(username="it", is_superuser=True, is_staff=True)
    for user in (users.model_admin, superuser):
        assert login(user).get(url).status_code == 200
        assert login(user).get(reverse("registry:shadow_list")).status_code == 200
    assert (
        login(users.model_admin).get(reverse("registry:shadow_dashboard", args=[99999])).status_code
        == 404
    )


def test_dashboard_page_shows_agreement_and_start_stop_work(users, pair):
    active, challenger = pair
    client = login(users.model_admin)
    url = reverse("registry:shadow_dashboard", args=[challenger.pk])
    empty = client.get(url)
    assert b"data-shadow-empty" in empty.content and b"Start shadow" in empty.content
    # No reason: a clear 400 with the form's message, nothing started.
    refused = client.post(reverse("registry:shadow_start", args=[challenger.pk]), {"reason": ""})
    assert refused.status_code == 400 and b"This field is required" in refused.content
    # The active version cannot shadow itself: 409 with the reason.
    conflict = client.post(reverse("registry:shadow_start", args=[active.pk]), {"reason": "x"})
    assert conflict.status_code == 409 and b"is the active version" in conflict.content
    started = client.post(
        reverse("registry:shadow_start", args=[challenger.pk]), {"reason": "live check"}
    )
    assert started.status_code == 302 and started["Location"] == url
    _run(active, [0.1, 0.55, 0.6, 0.8, 0.9])
    shadow_results_label(item_type="test.item", item_id=1, label="low")
    page = client.get(url)
    body = page.content.decode()
    assert 'data-scored="5"' in body and 'data-agreed="3"' in body
    assert 'data-class="high"' in body and 'data-labelled="1"' in body
    assert 'id="shadow-days"' in body and 'id="shadow-confusion"' in body
    assert "<script>" not in body  # charts go as json_script data only (strict CSP)
    assert "Stop shadow" in body and "live check" in body
    listing = client.get(reverse("registry:shadow_list")).content.decode()
    assert f'data-shadow-version="{challenger.pk}"' in listing
    stopped = client.post(reverse("registry:shadow_stop", args=[challenger.pk]), {"reason": "ok"})
    assert stopped.status_code == 302
    assert not ModelShadow.objects.filter(stopped_at__isnull=True).exists()
    # The admin's model card carries the shadow record line.
    admin_page = client.get(reverse("admin:registry_modelversion_change", args=[challenger.pk]))
    assert b'data-card-section="shadow"' in admin_page.content


def test_start_needs_csrf(users, pair):
    from django.test import Client

    _, challenger = pair
    client = Client(enforce_csrf_checks=True)
    client.force_login(users.model_admin, backend="django.contrib.auth.backends.ModelBackend")
    response = client.post(reverse("registry:shadow_start", args=[challenger.pk]), {"reason": "x"})
    assert response.status_code == 403 and not ModelShadow.objects.exists()


def test_generator_dashboard_says_why_and_compares_recorded_metrics(users):
    candidate = _version(users, task=UNSCORED, cut=0.2)
    _version(users, task=UNSCORED, status=ModelVersion.Status.ACTIVE, cut=0.4)
    page = login(users.model_admin).get(reverse("registry:shadow_dashboard", args=[candidate.pk]))
    body = page.content.decode()
    assert "its own generation" in body and "data-side-by-side" in body
    assert "test_auc" in body


def test_shadow_periods_are_on_the_governance_timeline_and_release_record(users, pair):
    from medai_site.registry.selectors import model_version_timeline

    active, challenger = pair
    model_version_shadow_start(version=challenger, user=users.model_admin, reason="live trial")
    entries = [e for e in model_version_timeline(version=challenger) if e.kind == "shadow"]
    assert [e.title for e in entries] == ["Shadow mode started (running)"]
    assert entries[0].text == "live trial" and entries[0].actor == users.model_admin.username
    model_version_shadow_stop(version=challenger, user=users.model_admin, reason="enough data")
    titles = {e.title for e in model_version_timeline(version=challenger) if e.kind == "shadow"}
    assert titles == {"Shadow mode started", "Shadow mode stopped"}


def test_putting_a_shadowed_version_into_service_ends_its_shadow(users, pair):
    from tests.support.governance import activate_version

    active, challenger = pair
    model_version_shadow_start(version=challenger, user=users.model_admin, reason="live trial")
    activate_version(challenger, users.model_admin, reason="shadow agreed")
    shadow = ModelShadow.objects.get(version=challenger)
    assert shadow.stopped_at is not None and shadow.stop_reason == "put into service"
