"""An import queued on the real broker and run by a real Celery worker: the
path production takes (web process queues, worker writes), end to end."""

import time

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

import spf.celery
from registry.imports import FINISHED_STATUSES, import_submit
from registry.models import ChangeEntry, Household, ImportJob, ImportMode, ImportStatus

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.skipif(not settings.CELERY_BROKER_URL, reason="needs a broker (set CELERY_BROKER_URL)"),
]

# Generous: the import takes well under a second; a loaded CI machine may be slow to start the worker.
WAIT_SECONDS = 60


@pytest.fixture
def uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_a_queued_import_is_run_by_the_worker(transactional_db, uploads_in_tmp, samfya_officer, samfya_village):
    rows = [
        "household_ref,village_code,relationship,first_name,last_name,sex,date_of_birth,national_id",
        f"A,{samfya_village.code},head,Mary,Mwansa,F,1980-05-17,123456/10/1",
        f"A,{samfya_village.code},child,Bupe,Mwansa,F,2012-03-02,",
        f"B,{samfya_village.code},head,John,Tembo,M,1975,",
    ]
    upload = SimpleUploadedFile("worker.csv", "\n".join(rows).encode())

    with spf.celery.app.connection_for_write() as connection:
        # Messages left by an earlier, interrupted run would be picked up first.
        connection.default_channel.queue_purge("celery")
    with start_worker_for_test():
        job = import_submit(acting_user=samfya_officer, upload=upload, mode=ImportMode.ALL_OR_NOTHING)
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if job.status in FINISHED_STATUSES:
                break
            time.sleep(0.2)

    assert job.status == ImportStatus.DONE, (job.status, job.message, job.errors)
    assert (job.households_created, job.members_created) == (2, 3)
    assert sorted(Household.objects.values_list("number", flat=True)) == ["SAM-000001", "SAM-000002"]
    assert Household.objects.get(number="SAM-000001").head.national_id == "123456/10/1"
    assert ChangeEntry.objects.filter(import_job=job).count() == 5
    assert ImportJob.objects.get(pk=job.pk).finished_at is not None


def start_worker_for_test():
    from celery.contrib.testing.worker import start_worker

    return start_worker(spf.celery.app, perform_ping_check=False, pool="solo", loglevel="WARNING")
