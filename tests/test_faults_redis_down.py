"""Redis down: pages and the API keep working, the jobs they queue wait in the outbox, and when Redis is
back a worker and the outbox sweep run every one of them.

The Celery app of the test's process is pointed at a private Redis, which the test stops (the suite's Redis
is shared and never touched). With it down, an officer registers a household (its eligibility is to be
re-checked), refers it to an agency (a delivery to the agency's system), uploads an import, and ministry
staff start a recompute; every answer is the normal one. Then Redis starts again: the worker that ran all
along reconnects and queues the outbox sweep, which publishes the backlog. Nothing is done by hand, and the
results are in the database.
"""

import csv
import io

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from programmes.models import EligibilityResult, Programme, ProgrammeStatus, RecomputeRun, RecomputeStatus
from programmes.services import programme_set_rules
from referrals.models import Delivery, DeliveryStatus, Referral
from referrals.tests.delivery_receiver import Receiver, programme_of, push_agency
from referrals.tests.makers import make_agency, make_programme
from registry.models import Household, ImportJob, ImportStatus
from spf.models import OutboxJob

from .faults import PrivateRedis, celery_broker, tasks_in_process, wait_for, worker_in_this_process

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.CELERY_BROKER_URL, reason="needs Redis (set CELERY_BROKER_URL)"),
]


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def redis_server():
    server = PrivateRedis().start()
    yield server
    server.stop()


@pytest.fixture
def uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def waiting(task: str) -> list:
    return list(OutboxJob.objects.filter(task=task, sent_at__isnull=True).values_list("args", flat=True))


def import_file(village) -> SimpleUploadedFile:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["household_ref", "village_code", "relationship", "first_name", "last_name", "sex", "date_of_birth"]
    )
    writer.writerow(["A", village.code, "head", "Grace", "Banda", "F", "1970-02-03"])
    writer.writerow(["A", village.code, "child", "Peter", "Banda", "M", "2010-05-01"])
    return SimpleUploadedFile("households.csv", buffer.getvalue().encode(), content_type="text/csv")


def test_with_redis_down_pages_and_the_api_answer_and_every_job_runs_when_it_returns(
    client, redis_server, receiver, uploads_in_tmp, samfya, samfya_village, samfya_officer, ministry_user
):
    with tasks_in_process():
        cash = make_programme(code="SCT", agency=make_agency("MCDSS"), districts=[samfya])
        programme_set_rules(acting_user=ministry_user, programme=cash, eligibility_rule="household.size >= 2")
        waiver = programme_of(push_agency(url=receiver.url), district=samfya)
    assert Programme.objects.filter(status=ProgrammeStatus.ACTIVE).count() == 2

    with celery_broker(redis_server.url), worker_in_this_process():
        # A worker is running when Redis goes down, and stays up through the outage.
        redis_server.stop()
        client.force_login(samfya_officer)

        registered = client.post(
            "/api/v1/households/",
            {
                "village": samfya_village.code,
                "members": [
                    {
                        "first_name": "Mary",
                        "last_name": "Mwansa",
                        "sex": "F",
                        "date_of_birth": "1980-05-17",
                        "relationship": "head",
                    },
                    {
                        "first_name": "Bupe",
                        "last_name": "Mwansa",
                        "sex": "F",
                        "date_of_birth": "2012-03-02",
                        "relationship": "child",
                    },
                ],
            },
            content_type="application/json",
        )
        assert registered.status_code == 201, registered.content
        household = Household.objects.get(number=registered.json()["number"])
        assert waiting("programmes.tasks.recompute_households") == [[[household.pk]]]

        referred = client.post(
            "/api/v1/referrals/",
            {"household": household.number, "programme": waiver.code, "reason": "Sick head, no income"},
            content_type="application/json",
        )
        assert referred.status_code == 201, referred.content
        # The delivery is its own outbox row; the send after commit failed quietly and the row waits.
        delivery = Delivery.objects.get(referral__household=household)
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 0)

        uploaded = client.post(reverse("imports:new"), {"file": import_file(samfya_village), "mode": "all_or_nothing"})
        job = ImportJob.objects.get()
        assert uploaded.status_code == 302 and uploaded.url == reverse("imports:detail", args=[job.pk])
        assert job.status == ImportStatus.PENDING and waiting("registry.import_run") == [[job.pk]]

        for page in (reverse("frontdesk:household", args=[household.pk]), "/api/v1/households/"):
            assert client.get(page).status_code == 200, page

        ministry_user.is_staff = True
        ministry_user.save(update_fields=["is_staff"])
        client.force_login(ministry_user)
        # The dashboard asks for a first count of its districts as it opens (left to the beat job, Redis being down).
        assert client.get("/dashboard/").status_code == 200
        started = client.post(reverse("admin:programmes_programme_recompute", args=[cash.pk]))
        assert started.status_code == 302
        run = RecomputeRun.objects.filter(programme=cash).latest("pk")
        assert run.status == RecomputeStatus.PENDING and waiting("programmes.tasks.recompute_run_execute") == [[run.pk]]

        health = client.get("/healthz")
        assert health.status_code == 200
        assert health.json()["broker"] == "down" and health.json()["jobs_waiting"] >= 3

        redis_server.start()
        # Nothing is done by hand: the worker reconnects and, as it does on every connection, queues the outbox
        # sweep and the deliveries sweep (spf/celery.py), which publish what waited.
        wait_for(lambda: _run_done(run), what="the recompute to run")
        wait_for(lambda: _import_done(job), what="the import to run")
        wait_for(
            lambda: EligibilityResult.objects.filter(household=household, programme=cash).exists(),
            what="the household's eligibility to be checked",
        )
        wait_for(
            lambda: Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.DELIVERED).exists(),
            what="the referral to reach the agency",
        )
        wait_for(lambda: not OutboxJob.objects.filter(sent_at__isnull=True).exists(), what="the outbox to empty")
        health = client.get("/healthz").json()
        assert (health["broker"], health["jobs_waiting"]) == ("up", 0)

    assert Household.objects.filter(members__first_name="Grace").exists()
    assert [request.headers["Idempotency-Key"] for request in receiver.received] == [delivery.idempotency_key]
    assert receiver.received[0].payload["referral"]["number"] == Referral.objects.get(household=household).number


def _run_done(run) -> bool:
    run.refresh_from_db(fields=["status"])
    return run.status == RecomputeStatus.DONE


def _import_done(job) -> bool:
    job.refresh_from_db(fields=["status"])
    assert job.status not in (ImportStatus.FAILED, ImportStatus.REJECTED), job.message
    return job.status == ImportStatus.DONE
