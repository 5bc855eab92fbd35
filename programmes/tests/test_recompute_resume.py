"""A recompute run whose worker died is taken up again, and only that one: a run another worker holds is
left to it, a run merely waiting is not queued twice, and a run whose message was lost is queued again."""

import datetime

import pytest
from django.utils import timezone

from programmes.models import RecomputeRun, RecomputeStatus
from programmes.services import RECOMPUTE_PENDING_LOST_AFTER, recompute_run_execute, recompute_runs_resume
from spf.models import OutboxJob
from spf.running import RunningJob
from tests.faults import celery_broker, free_port, job_held_by_another_worker

pytestmark = pytest.mark.postgres

EXECUTE = "programmes.tasks.recompute_run_execute"


@pytest.fixture
def broker_down(db):
    """Jobs are written to the outbox; nothing is published (nothing listens at that address)."""
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        yield


def queued_runs() -> list[int]:
    return sorted(args[0] for args in OutboxJob.objects.filter(task=EXECUTE).values_list("args", flat=True))


def test_a_running_run_without_a_worker_is_queued_again_and_one_in_hand_is_not(broker_down):
    orphan = RecomputeRun.objects.create(reason="nightly", status=RecomputeStatus.RUNNING)
    in_hand = RecomputeRun.objects.create(reason="rules changed", status=RecomputeStatus.RUNNING)

    with job_held_by_another_worker(RunningJob.RECOMPUTE_RUN, in_hand.pk):
        assert recompute_runs_resume() == [orphan.pk]

    assert queued_runs() == [orphan.pk]


def test_a_run_waiting_long_with_no_job_anywhere_is_queued_again(broker_down):
    now = timezone.now()
    lost = RecomputeRun.objects.create(reason="message lost with Redis's data", status=RecomputeStatus.PENDING)
    waiting_in_outbox = RecomputeRun.objects.create(reason="queued while Redis was down")
    OutboxJob.objects.create(task=EXECUTE, args=[waiting_in_outbox.pk])
    just_queued = RecomputeRun.objects.create(reason="a moment ago")
    RecomputeRun.objects.filter(pk__in=[lost.pk, waiting_in_outbox.pk]).update(
        created_at=now - RECOMPUTE_PENDING_LOST_AFTER - datetime.timedelta(minutes=1)
    )

    assert recompute_runs_resume(now=now) == [lost.pk]
    assert queued_runs() == sorted([lost.pk, waiting_in_outbox.pk])
    assert just_queued.pk not in queued_runs()


def test_a_run_whose_worker_died_is_carried_out_from_its_first_step(db):
    run = RecomputeRun.objects.create(
        reason="nightly", status=RecomputeStatus.RUNNING, total_steps=4, done_steps=1, households_assessed=50
    )

    run = recompute_run_execute(run_id=run.pk)

    assert run.status == RecomputeStatus.DONE and "Taken up again" in run.message
    assert (run.done_steps, run.households_assessed) == (0, 0)  # no programme: nothing to assess


def test_a_run_another_worker_is_carrying_out_is_left_alone(db):
    run = RecomputeRun.objects.create(reason="nightly", status=RecomputeStatus.RUNNING, done_steps=1)

    with job_held_by_another_worker(RunningJob.RECOMPUTE_RUN, run.pk):
        again = recompute_run_execute(run_id=run.pk)

    assert (again.status, again.done_steps, again.message) == (RecomputeStatus.RUNNING, 1, "")
