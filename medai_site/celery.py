"""The Celery app: ``default`` for light work, ``ml`` for PyTorch / scikit-learn work on CPUs,
``gpu`` for work that prefers or requires a GPU (medai_site.jobs.routing picks per job).

Run a worker per queue (see Procfile and README): ``ml`` and ``gpu`` workers use concurrency
1 and prefetch 1 (per GPU, so one process owns one device); ``default`` workers take the rest.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_process_init
from kombu import Exchange, Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "medai_site.settings.local")

app = Celery("medai_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each queue has its own direct exchange and routing key, so a message for one queue can
# never be copied into the other.
app.conf.task_queues = (
    Queue("default", Exchange("default", type="direct"), routing_key="default"),
    Queue("ml", Exchange("ml", type="direct"), routing_key="ml"),
    Queue("gpu", Exchange("gpu", type="direct"), routing_key="gpu"),
)
app.conf.task_default_exchange = "default"
app.conf.task_default_routing_key = "default"
app.conf.task_routes = ("medai_site.jobs.kinds.route_task",)
app.conf.task_create_missing_queues = False
app.autodiscover_tasks()


@app.on_after_configure.connect
def _ensure_broker_folders(sender: Celery, **kwargs: object) -> None:
    # kombu's filesystem transport fails on the first send if its folders do not exist yet.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)


@worker_process_init.connect
def _configure_torch(**kwargs: object) -> None:
    from medai_site.core.compute import configure_worker_process

    configure_worker_process()


@worker_process_init.connect
def _freeze_startup_objects(**kwargs: object) -> None:
    # After the parent imported the tasks and forked this child, before its first task.
    from medai_site.core.startup import gc_freeze_after_startup

    gc_freeze_after_startup()
