"""The task outbox: a job is a row written with the change that needs it and published after commit; with
the broker down the row waits and the caller carries on; the sweep publishes it when the broker is back,
each row once even when two sweeps run at once; the admin, the command and the health check show it.

Publishing goes to a private Redis (tests/faults.py), or to an address nothing listens on for a broker
that is down: the suite's shared Redis is never stopped.
"""

import io
import json
import os
import signal
import threading

import pytest
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.utils import timezone

from programmes.models import RecomputeStatus
from programmes.services import recompute_run_create
from programmes.tasks import recompute_households, recompute_run_execute
from spf.models import OutboxJob
from spf.outbox import OUTBOX_SENT_KEPT, job_queue, jobs_publish, outbox_backlog, outbox_flush
from tests.faults import PrivateRedis, broker_queue_length, celery_broker, free_port, tasks_in_process

RECHECK = "programmes.tasks.recompute_households"


@pytest.fixture
def redis_server():
    server = PrivateRedis().start()
    yield server
    server.stop()


@pytest.fixture
def broker(redis_server, db):
    with celery_broker(redis_server.url):
        yield redis_server


@pytest.fixture
def broker_down(db):
    """A broker address nothing listens on: every publish is refused at once."""
    with celery_broker(f"redis://127.0.0.1:{free_port()}/0"):
        yield


def queued_tasks(redis_server) -> list[tuple[str, str]]:
    """(task, arguments) of the messages in the queue, oldest first (Kombu pushes left, workers pop right)."""
    raw = redis_server.client().lrange("celery", 0, -1)
    return [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in map(json.loads, reversed(raw))]


def test_a_job_is_written_with_its_change_and_published_once_that_commits(broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            job = job_queue(task=recompute_households, args=[[11, 12]])
            assert OutboxJob.objects.get().sent_at is None
            assert broker_queue_length(broker) == 0

    job.refresh_from_db()
    assert job.sent_at is not None and (job.attempts, job.last_error) == (1, "")
    assert queued_tasks(broker) == [(RECHECK, "[[11, 12]]")]


def test_the_job_of_a_change_rolled_back_is_never_written_nor_sent(broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as after_commit:
        with pytest.raises(RuntimeError), transaction.atomic():
            job_queue(task=recompute_households, args=[[11]])
            raise RuntimeError("the change failed")

    assert after_commit == [] and not OutboxJob.objects.exists()
    assert broker_queue_length(broker) == 0


def test_with_the_broker_down_the_job_waits_and_the_caller_carries_on(broker_down, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = job_queue(task=recompute_households, args=[[11]])
    with django_capture_on_commit_callbacks(execute=True):
        second = job_queue(task=recompute_households, args=[[12]])

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.sent_at is None and first.attempts == 1 and "refused" in first.last_error
    # The broker just failed: the next job is left to the sweep rather than tried again at once.
    assert second.sent_at is None and second.attempts == 0
    assert outbox_backlog()["pending"] == 2


def test_the_sweep_publishes_the_waiting_jobs_oldest_first_once_the_broker_is_back(broker, db):
    for household_id in (1, 2, 3):
        OutboxJob.objects.create(task=RECHECK, args=[[household_id]], attempts=4, last_error="Connection refused")
    OutboxJob.objects.create(task=RECHECK, args=[[9]], sent_at=timezone.now())

    report = outbox_flush()

    assert (report.sent, report.failed, report.error) == (3, 0, "")
    assert queued_tasks(broker) == [(RECHECK, "[[1]]"), (RECHECK, "[[2]]"), (RECHECK, "[[3]]")]
    assert not OutboxJob.objects.filter(sent_at__isnull=True).exists()
    assert set(OutboxJob.objects.exclude(args=[[9]]).values_list("attempts", "last_error")) == {(5, "")}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_publish_each_job_once(broker):
    jobs = [OutboxJob.objects.create(task=RECHECK, args=[[household_id]]) for household_id in (1, 2, 3)]
    locked, release = threading.Event(), threading.Event()

    def another_sweep_holds_the_first_job():
        with transaction.atomic():
            OutboxJob.objects.select_for_update().get(pk=jobs[0].pk)
            locked.set()
            release.wait(30)
        connection.close()

    other = threading.Thread(target=another_sweep_holds_the_first_job)
    other.start()
    assert locked.wait(30)
    try:
        # The row another sweep holds is skipped, not waited for, and not sent twice.
        assert outbox_flush().sent == 2
    finally:
        release.set()
        other.join(30)
    assert outbox_flush().sent == 1
    assert sorted(queued_tasks(broker)) == [(RECHECK, "[[1]]"), (RECHECK, "[[2]]"), (RECHECK, "[[3]]")]


def test_sent_jobs_are_deleted_after_a_week_and_waiting_ones_never(broker_down):
    now = timezone.now()
    old = OutboxJob.objects.create(
        task=RECHECK, args=[[1]], sent_at=now - OUTBOX_SENT_KEPT - timezone.timedelta(hours=1)
    )
    recent = OutboxJob.objects.create(task=RECHECK, args=[[2]], sent_at=now - timezone.timedelta(days=1))
    waiting = OutboxJob.objects.create(task=RECHECK, args=[[3]], created_at=now - timezone.timedelta(days=30))

    report = outbox_flush(now=now)

    assert report.purged == 1 and report.sent == 0 and "refused" in report.error
    assert set(OutboxJob.objects.values_list("pk", flat=True)) == {recent.pk, waiting.pk}
    assert not OutboxJob.objects.filter(pk=old.pk).exists()


def test_without_a_broker_the_task_runs_in_process_after_commit_as_before(db, django_capture_on_commit_callbacks):
    run = recompute_run_create(reason="a demo machine")
    with tasks_in_process(), django_capture_on_commit_callbacks(execute=True):
        assert job_queue(task=recompute_run_execute, args=[run.pk]) is None
    run.refresh_from_db()
    assert run.status == RecomputeStatus.DONE and not OutboxJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_hung_broker_fails_the_publish_instead_of_holding_the_caller(broker):
    """Redis stopped (SIGSTOP) takes connections and never answers: the socket timeouts end the wait."""
    job = OutboxJob.objects.create(task=RECHECK, args=[[1]])
    outcome = {}
    os.kill(broker.process.pid, signal.SIGSTOP)
    try:

        def publish():
            try:
                outcome["report"] = jobs_publish(job_ids=[job.pk])
            finally:
                connection.close()

        # In a thread, so that a publish with no timeout fails this test instead of hanging the suite.
        publishing = threading.Thread(target=publish)
        publishing.start()
        publishing.join(60)
    finally:
        os.kill(broker.process.pid, signal.SIGCONT)
    assert not publishing.is_alive(), "publishing to a hung broker never returned"
    assert "Timeout" in outcome["report"].error
    job.refresh_from_db()
    assert job.sent_at is None and "Timeout" in job.last_error


# --- what the operator sees -----------------------------------------------------------------------------


def test_the_health_check_stays_ok_when_only_the_broker_is_down(client, broker_down):
    OutboxJob.objects.create(task=RECHECK, args=[[1]], created_at=timezone.now() - timezone.timedelta(minutes=5))

    answer = client.get("/healthz")

    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["database"], body["broker"], body["jobs_waiting"]) == ("ok", "up", "down", 1)
    assert body["oldest_job_waiting_seconds"] >= 300


def test_the_health_check_says_the_broker_answers(client, broker, db):
    assert client.get("/healthz").json()["broker"] == "up"


def test_without_a_broker_the_health_check_says_so(client, db):
    with tasks_in_process():
        assert client.get("/healthz").json()["broker"] == "none"


def test_ministry_staff_publish_waiting_jobs_from_the_admin(client, broker, ministry_user):
    waiting = OutboxJob.objects.create(task=RECHECK, args=[[1]], attempts=3, last_error="Connection refused")
    sent = OutboxJob.objects.create(task=RECHECK, args=[[2]], sent_at=timezone.now())
    client.force_login(ministry_user)

    listed = client.get("/admin/spf/outboxjob/?state=waiting")
    assert listed.status_code == 200 and "Connection refused" in listed.content.decode()
    response = client.post(
        "/admin/spf/outboxjob/", {"action": "publish_now", "_selected_action": [waiting.pk, sent.pk]}, follow=True
    )

    assert [str(m) for m in response.context["messages"]] == ["Published to the workers: 1 job."]
    waiting.refresh_from_db()
    assert waiting.sent_at is not None and queued_tasks(broker) == [(RECHECK, "[[1]]")]


def test_staff_who_may_only_view_are_not_offered_publishing(client, samfya_officer, db):
    from django.contrib.auth.models import Permission

    samfya_officer.is_staff = True
    samfya_officer.save(update_fields=["is_staff"])
    samfya_officer.user_permissions.add(Permission.objects.get(codename="view_outboxjob"))
    OutboxJob.objects.create(task=RECHECK, args=[[1]])
    client.force_login(samfya_officer)

    page = client.get("/admin/spf/outboxjob/")

    assert page.status_code == 200 and "publish_now" not in page.content.decode()


def test_the_flush_command_publishes_and_says_what_still_waits(broker, db):
    OutboxJob.objects.create(task=RECHECK, args=[[1]])
    out = io.StringIO()
    call_command("outbox_flush", stdout=out)
    assert out.getvalue().strip() == "1 job published, none still waiting."


def test_the_flush_command_fails_while_the_broker_is_down(broker_down):
    OutboxJob.objects.create(task=RECHECK, args=[[1]], created_at=timezone.now() - timezone.timedelta(seconds=90))
    with pytest.raises(CommandError, match="did not take them"):
        call_command("outbox_flush", stdout=io.StringIO())
    assert OutboxJob.objects.get().attempts == 1
