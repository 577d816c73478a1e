from __future__ import annotations

from types import SimpleNamespace

import pytest
from _pytest.nodeid import NodeId

from medai_site.core.roles import Role
from tests.diagnosis.model_versions import PNEUMONIA_NPZ, register_version
from tests.platform.factories import UserFactory
from tests.support.clients import login, totp_device_for
from tests.support.worker import job_run_in_process
from tests.support.world import world_build


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    """Under bin/test's parallel processes (--dist loadgroup) every test file runs whole in one
    process (its module fixtures are built once), and so does every test that needs the one
    embedded stack (tests/e2e/conftest.py: a web server, workers and beat), and each ML folder
    whose session fixtures train a model.

    xdist's scheduler reads a test's group from the "@group" end of the node id its worker
    reports. xdist 3.8 writes that end into a field pytest 9.2 no longer reads (pytest-xdist
    issue 1386): every test then went out on its own, module fixtures were built in both
    processes, and both started an embedded stack. So the end is written here, last among the
    hooks, into the structured id pytest 9.2 reads."""
    loadgroup = getattr(config.option, "loadgroup", False)  # set in xdist's workers
    groups = {}
    for item in items:
        path = item.path.relative_to(config.rootpath).as_posix()
        if "embedded_stack" in getattr(item, "fixturenames", ()):
            group = "embedded-stack"
        elif "/ml/" in path:
            group = path.rsplit("/", 1)[0]
        else:
            group = path
        groups[item] = group
        item.add_marker(pytest.mark.xdist_group(group))
        if loadgroup and "@" not in item.nodeid.rsplit("]", 1)[-1]:
            item._id = NodeId.parse(f"{item.nodeid}@{group}")
    # The longest groups go out first (bin/test keeps this order: --no-loadscope-reorder), so
    # that neither process ends with one of them while the other is idle: the browser tests'
    # stack, then the folders whose fixtures train models; the rest in collection order.
    items.sort(key=lambda item: (groups[item] != "embedded-stack", "/ml/" not in groups[item]))


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _force_login_passes_the_second_factor(request, monkeypatch):
    """Signing a test client in (force_login / login) also passes the second factor, with a
    real confirmed TOTP device, for users who need one (model admins, staff, superusers):
    tests of other features then see what a fully signed-in user sees. Tests of the 2FA
    flow itself opt out with @pytest.mark.real_second_factor."""
    if request.node.get_closest_marker("real_second_factor"):
        return
    from django.test.client import ClientMixin
    from django_otp import DEVICE_ID_SESSION_KEY

    from medai_site.core.two_factor import two_factor_required

    original = ClientMixin._login

    def _login(self, user, backend=None):
        original(self, user, backend)
        if two_factor_required(user=user):
            session = self.session
            session[DEVICE_ID_SESSION_KEY] = totp_device_for(user).persistent_id
            session.save()

    monkeypatch.setattr(ClientMixin, "_login", _login)


@pytest.fixture
def users(db):
    """One user per role: two clinicians (A, B), a researcher and a model admin."""
    return SimpleNamespace(
        clinician_a=UserFactory(username="clin_a", roles=[Role.CLINICIAN]),
        clinician_b=UserFactory(username="clin_b", roles=[Role.CLINICIAN]),
        researcher=UserFactory(username="research", roles=[Role.RESEARCHER]),
        model_admin=UserFactory(username="madmin", roles=[Role.MODEL_ADMIN], is_staff=True),
    )


@pytest.fixture
def world(users):
    """One of every object a URL can name, for the authorization matrix and the URL fuzzer
    (tests/support/world.py)."""
    return world_build(users)


@pytest.fixture
def client_for():
    """login(user) -> a test client signed in as that user."""
    return login


@pytest.fixture
def run_job():
    """run_job(job or pk) -> the job after one in-process delivery by its kind's own job
    function (the way a worker runs it), reloaded."""
    return job_run_in_process


@pytest.fixture(scope="session")
def tiny_artifact() -> bytes:
    """Artifact bytes of a small CNN trained for 2 epochs on 400 real images (seconds)."""
    import torch

    from diagnosis.ml.artifact import artifact_bytes
    from diagnosis.ml.data import load_npz
    from diagnosis.ml.train import TrainConfig, train

    torch.set_num_threads(2)
    data = load_npz(PNEUMONIA_NPZ, class_names=("normal", "pneumonia")).subset(
        train=400, val=100, test=100, seed=0
    )
    result = train(
        data,
        TrainConfig(
            width=8,
            epochs=2,
            batch_size=64,
            lr=5e-3,
            seed=0,
            ema_decay=0.0,
            label_smoothing=0.0,
            tta=False,
        ),
    )
    return artifact_bytes(result.to_bundle())


@pytest.fixture
def active_model(db, users, tiny_artifact):
    """The tiny model (its detector, no contract) as the active version of
    diagnosis.pneumonia, with its data set (diagnosis tests, and remote_care photos sent on
    to diagnosis)."""
    from medai_site.registry.loader import clear_model_cache

    yield register_version(users, tiny_artifact)
    clear_model_cache()
