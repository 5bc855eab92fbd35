"""The Celery application shared by every app's tasks.

With no broker configured (the embedded default) tasks run eagerly in the web
process; with CELERY_BROKER_URL set they go to Redis and a worker.
"""

import logging
import os

from celery import Celery, bootsteps

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spf.settings.dev")

app = Celery("spf")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)

# What a worker queues each time it connects to the broker (docs/operations.md): the outbox's backlog, so
# jobs queued while Redis was down go out as soon as it is back rather than at the next beat; then the sweeps
# that take up work a killed worker left behind. Each is safe with several workers connecting at once.
CATCH_UP_ON_CONNECT = (
    "spf.tasks.outbox_flush",
    "programmes.tasks.recompute_runs_resume",
    "payments.tasks.payroll_requests_resume",
    "registry.import_jobs_resume",
    "referrals.tasks.deliveries_sweep",
)


class CatchUpOnConnect(bootsteps.StartStopStep):
    """Queue the catch-up jobs as the worker starts, and again whenever it reconnects after losing the broker.

    A step of the worker's consumer, which Celery starts again after every reconnection; the `worker_ready`
    signal would fire once per worker only, and miss Redis coming back under a worker that kept running.
    """

    requires = {"celery.worker.consumer.connection:Connection"}

    def start(self, consumer):
        for name in CATCH_UP_ON_CONNECT:
            try:
                consumer.app.send_task(name)
            except Exception:  # noqa: BLE001 - the worker must go on even if one cannot be queued; beat runs it
                logger.exception("Could not queue %s on connecting to the broker; beat will run it", name)


app.steps["consumer"].add(CatchUpOnConnect)
