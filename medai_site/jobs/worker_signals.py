"""A Celery worker describes itself to the fleet: at start, every few seconds, at shutdown.

Connected from JobsConfig.ready(), which Celery's Django fix-up runs in the worker's main
process before the worker is ready. The heartbeat is a daemon thread of that main process
(the prefork parent only supervises, so the thread never competes with a task), and it reads
the queues the consumer holds *now*, so a drained worker shows the truth.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from typing import Any

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import connection

from medai_site.core.compute import device_describe
from medai_site.jobs import services

logger = logging.getLogger(__name__)

_heartbeat: _WorkerHeartbeat | None = None


def consumed_queues(consumer: Any) -> list[str]:
    """The names of the queues the consumer takes messages from now (none while it
    reconnects to the broker)."""
    task_consumer = getattr(consumer, "task_consumer", None)
    if task_consumer is None:
        return []
    return sorted({queue.name for queue in list(task_consumer.queues)})


def _pool_name(consumer: Any) -> str:
    pool = getattr(consumer, "pool", None)
    # celery.concurrency.prefork.TaskPool -> "prefork" (solo, threads, eventlet, gevent)
    return type(pool).__module__.rsplit(".", 1)[-1] if pool is not None else ""


class _WorkerHeartbeat(threading.Thread):
    """Probes the device, registers the worker, then beats until the worker shuts down."""

    def __init__(self, consumer: Any) -> None:
        super().__init__(daemon=True, name="medai-worker-heartbeat")
        self.consumer = consumer
        self.name_ = str(consumer.hostname)
        self.pid = os.getpid()
        self.stopped = threading.Event()

    def register(self) -> None:
        device = device_describe(declared=settings.MEDAI_WORKER_RESOURCES)
        controller = getattr(self.consumer, "controller", None)
        services.worker_register(
            facts=services.WorkerFacts(
                name=self.name_,
                host=socket.gethostname(),
                pid=self.pid,
                queues=consumed_queues(self.consumer),
                pool=_pool_name(self.consumer),
                concurrency=int(getattr(controller, "concurrency", 0) or 1),
                device_kind=device.kind,
                device=device.detail,
                resources=device.resources,
                resources_declared=device.declared,
                memory_mb=device.memory_mb,
            )
        )

    def run(self) -> None:
        try:
            self.register()
            while not self.stopped.wait(settings.MEDAI_WORKER_HEARTBEAT_SECONDS):
                try:
                    if not services.worker_heartbeat(
                        name=self.name_, pid=self.pid, queues=consumed_queues(self.consumer)
                    ):
                        # The row was removed or taken by a newer process of this node name.
                        self.register()
                except Exception:
                    # A database blip must not end the heartbeat for good; the next beat
                    # reconnects (Django reopens a closed connection on use).
                    logger.warning("worker heartbeat failed", exc_info=True)
                    connection.close()
        except Exception:
            logger.exception("worker registration failed; the fleet page will not list it")
        finally:
            connection.close()


@worker_ready.connect
def _on_worker_ready(sender: Any = None, **kwargs: Any) -> None:
    global _heartbeat
    if sender is None:
        return
    _heartbeat = _WorkerHeartbeat(sender)
    _heartbeat.start()


@worker_shutdown.connect
def _on_worker_shutdown(sender: Any = None, **kwargs: Any) -> None:
    beat = _heartbeat
    if beat is None:
        return
    beat.stopped.set()
    beat.join(timeout=5)
    try:
        services.worker_stopped(name=beat.name_, pid=beat.pid)
    except Exception:
        logger.warning("could not record this worker's shutdown", exc_info=True)
    finally:
        connection.close()
