"""An import whose worker died is taken up again from the start, and only that one: an import another worker
holds is left to it, and one whose message was lost is queued again. Nothing is ever written twice."""

import datetime

import pytest
from django.utils import timezone

from registry.imports import IMPORT_PENDING_LOST_AFTER, import_job_run, import_jobs_resume, import_submit
from registry.models import Household, ImportJob, ImportMode, ImportStatus
from registry.tests.test_imports import csv_file, two_households
from spf.models import OutboxJob
from spf.running import RunningJob
from tests.faults import celery_broker, free_port, job_held_by_another_worker

pytestmark = pytest.mark.postgres

RUN = "registry.import_run"


@pytest.fixture(autouse=True)
def uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def broker_down(db):
    """Jobs are written to the outbox; nothing is published (nothing listens at that address)."""
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        yield


def queued_imports() -> list[int]:
    return sorted(args[0] for args in OutboxJob.objects.filter(task=RUN).values_list("args", flat=True))


def submitted(officer, village) -> ImportJob:
    job = import_submit(acting_user=officer, upload=csv_file(two_households(village)), mode=ImportMode.ALL_OR_NOTHING)
    OutboxJob.objects.filter(task=RUN).delete()  # its first message: lost with the worker in these stories
    return job


def test_an_import_whose_worker_died_runs_again_from_the_start_and_writes_once(
    broker_down, samfya_officer, samfya_village
):
    job = submitted(samfya_officer, samfya_village)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.APPLYING, processed_rows=3)

    assert import_jobs_resume() == [job.pk]
    job.refresh_from_db()
    assert (job.status, job.processed_rows) == (ImportStatus.PENDING, 0)
    assert queued_imports() == [job.pk]

    done = import_job_run(job_id=job.pk)  # what the queued message does on a worker
    assert done.status == ImportStatus.DONE and done.households_created == 2
    assert Household.objects.count() == 2
    assert import_jobs_resume() == [] and import_job_run(job_id=job.pk) is None


def test_an_import_another_worker_holds_is_left_to_it(broker_down, samfya_officer, samfya_village):
    job = submitted(samfya_officer, samfya_village)
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.VALIDATING)

    with job_held_by_another_worker(RunningJob.HOUSEHOLD_IMPORT, job.pk):
        assert import_jobs_resume() == []
        assert import_job_run(job_id=job.pk) is None

    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.VALIDATING and queued_imports() == []


def test_an_import_waiting_long_with_no_message_is_queued_again(broker_down, samfya_officer, samfya_village):
    now = timezone.now()
    lost = submitted(samfya_officer, samfya_village)
    waiting_in_outbox = submitted(samfya_officer, samfya_village)
    just_now = submitted(samfya_officer, samfya_village)
    OutboxJob.objects.create(task=RUN, args=[waiting_in_outbox.pk])
    ImportJob.objects.filter(pk__in=[lost.pk, waiting_in_outbox.pk]).update(
        created_at=now - IMPORT_PENDING_LOST_AFTER - datetime.timedelta(minutes=1)
    )

    assert import_jobs_resume(now=now) == [lost.pk]
    assert queued_imports() == sorted([lost.pk, waiting_in_outbox.pk])
    assert just_now.pk not in queued_imports()
