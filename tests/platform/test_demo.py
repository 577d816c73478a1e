"""seed_demo's registry of the clinical apps' demo seeders."""

from __future__ import annotations

from types import SimpleNamespace

from medai_site.core.demo import DemoRun, demo_seeders, register_demo_seeder


def test_seed_demo_runs_each_apps_seeder_once_in_the_registered_order():
    # Imaging and treatment first, as before the apps registered themselves; monitoring before
    # the risk model the demo puts into service; drug design last.
    names = [f"{s.__module__}.{s.__name__}" for s in demo_seeders()]
    assert names == [
        "diagnosis.demo.demo_imaging_seed",
        "treatment.demo.demo_treatment_seed",
        "remote_care.demo.demo_monitoring_seed",
        "remote_care.demo.demo_risk_seed",
        "drugs.demo.demo_drugs_seed",
    ]
    # AppConfig.ready() may run again (a test runner, a reload): no seeder runs twice.
    register_demo_seeder(demo_seeders()[0], order=10)
    assert len(demo_seeders()) == len(names)


def test_no_monitoring_leaves_the_monitoring_seeder_idle(monkeypatch):
    from remote_care import demo

    def fail(**kwargs):
        raise AssertionError("monitoring was seeded despite --no-monitoring")

    monkeypatch.setattr(demo, "demo_monitoring_ensure", fail)
    run = DemoRun(model_admin=SimpleNamespace(), clinicians=[], train=False, monitoring=False)
    assert demo.demo_monitoring_seed(run) == ""
