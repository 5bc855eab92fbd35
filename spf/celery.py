"""The Celery application shared by every app's tasks.

With no broker configured (the embedded default) tasks run eagerly in the web
process; with CELERY_BROKER_URL set they go to Redis and a worker.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spf.settings.dev")

app = Celery("spf")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
