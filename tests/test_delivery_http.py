"""Pushing referrals to an agency's system over real HTTP: a receiver on
127.0.0.1 that verifies signatures, answers 200 or 500, hangs past the
timeout, is down and comes back; the outbox that sends only what committed,
and sends each row once when sweeps overlap."""

import datetime
import threading
import time

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

import spf.celery
from referrals.delivery import (
    ATTEMPT_UNFINISHED,
    DELIVERY_BACKOFF_BASE,
    DELIVERY_LEASE,
    SIGNATURE_TOLERANCE_SECONDS,
    _claim,
    deliveries_due,
    deliveries_sweep,
    delivery_attempt,
    delivery_body,
    delivery_retry,
    signature_is_valid,
)
from referrals.models import Delivery, DeliveryStatus, Notification, Referral
from referrals.services import referral_create
from referrals.tests.delivery_receiver import Receiver, free_port, household_in, programme_of, push_agency

# Tests move the clock forward rather than wait: "later" is past any backoff used here.
LATER = datetime.timedelta(days=1)
# Generous: the push takes milliseconds; a loaded CI machine may be slow to start the worker.
WORKER_WAIT_SECONDS = 60


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def agency(receiver, db):
    return push_agency(url=receiver.url)


@pytest.fixture
def programme(agency, samfya):
    return programme_of(agency, district=samfya)


@pytest.fixture
def household(samfya_village, samfya_officer):
    return household_in(samfya_village, officer=samfya_officer)


@pytest.fixture
def tasks_run_inline():
    """Celery's embedded mode for this test, whatever broker the suite was given: `.delay` runs at once."""
    before = spf.celery.app.conf.task_always_eager
    spf.celery.app.conf.task_always_eager = True
    yield
    spf.celery.app.conf.task_always_eager = before


def refer(household, programme, officer) -> Delivery:
    referral = referral_create(acting_user=officer, household=household, programme=programme, reason="Poor, ill head")
    return Delivery.objects.get(referral=referral)


def attempts_of(delivery: Delivery) -> list[tuple]:
    return list(delivery.attempt_log.order_by("id").values_list("status_code", "error"))


def test_a_referral_reaches_the_agency_signed_with_its_idempotency_key(household, programme, samfya_officer, receiver):
    delivery = refer(household, programme, samfya_officer)

    assert delivery_attempt(delivery_id=delivery.pk) == "delivered"

    (request,) = receiver.received
    assert request.signature_ok
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == delivery.idempotency_key
    assert request.headers["X-SPF-Signature"].startswith("sha256=")
    assert request.payload == delivery.payload
    assert request.payload["event"] == "referral.sent"
    assert request.payload["household"]["number"] == household.number
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_error) == (DeliveryStatus.DELIVERED, 1, "")
    assert delivery.delivered_at is not None
    (attempt,) = delivery.attempt_log.all()
    assert (attempt.status_code, attempt.error) == (200, "")
    assert attempt.latency_ms is not None


def test_a_replayed_request_is_refused_by_the_reference_verifier(household, programme, samfya_officer, receiver):
    delivery = refer(household, programme, samfya_officer)
    delivery_attempt(delivery_id=delivery.pk)
    (request,) = receiver.received
    timestamp, header = request.headers["X-SPF-Timestamp"], request.headers["X-SPF-Signature"]
    sent_at = int(timestamp)

    def valid(body=request.body, secret=receiver.secret, now=sent_at):
        return signature_is_valid(secret, timestamp, body, header, now=now, tolerance=SIGNATURE_TOLERANCE_SECONDS)

    assert valid()
    assert request.body == delivery_body(delivery.payload)
    assert not valid(now=sent_at + SIGNATURE_TOLERANCE_SECONDS + 1), "a replay an hour later must be refused"
    assert not valid(body=request.body.replace(b"Mwansa", b"Banda")), "a changed body must be refused"
    assert not valid(secret="another agency's secret")


def test_a_500_is_retried_after_a_backoff_then_delivered(household, programme, samfya_officer, receiver):
    receiver.answers = [500]
    delivery = refer(household, programme, samfya_officer)
    now = timezone.now()

    assert delivery_attempt(delivery_id=delivery.pk, now=now) == "retry scheduled"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and delivery.attempts == 1
    assert now <= delivery.next_attempt_at <= now + DELIVERY_BACKOFF_BASE
    assert delivery.last_error.startswith("HTTP 500")

    assert delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at) == "delivered"
    assert [code for code, _ in attempts_of(delivery)] == [500, 200]
    assert {r.headers["Idempotency-Key"] for r in receiver.received} == {delivery.idempotency_key}


def test_a_row_not_yet_due_is_left_alone(household, programme, samfya_officer, receiver):
    receiver.answers = [500]
    delivery = refer(household, programme, samfya_officer)
    now = timezone.now()
    delivery_attempt(delivery_id=delivery.pk, now=now, backoff_base=datetime.timedelta(hours=1))
    delivery.refresh_from_db()

    assert delivery_attempt(delivery_id=delivery.pk, now=delivery.next_attempt_at - datetime.timedelta(seconds=1)) == (
        "skipped: not due"
    )
    assert len(receiver.received) == 1


def test_a_receiver_slower_than_the_timeout_is_a_failure_with_the_error_logged(
    household, programme, samfya_officer, receiver
):
    receiver.delay = 2.0
    delivery = refer(household, programme, samfya_officer)

    assert delivery_attempt(delivery_id=delivery.pk, timeout=0.2) == "retry scheduled"

    ((status_code, error),) = attempts_of(delivery)
    assert status_code is None
    assert "Timed out" in error
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PENDING and "Timed out" in delivery.last_error


def test_a_receiver_that_is_down_and_comes_back_gets_the_referral(household, samfya, samfya_officer, db):
    port = free_port()
    agency = push_agency(url=f"http://127.0.0.1:{port}/hook")
    delivery = refer(household, programme_of(agency, district=samfya), samfya_officer)
    now = timezone.now()

    assert delivery_attempt(delivery_id=delivery.pk, now=now) == "retry scheduled"
    assert "Connection refused" in attempts_of(delivery)[0][1]

    receiver = Receiver().start(port=port)
    try:
        assert delivery_attempt(delivery_id=delivery.pk, now=now + LATER) == "delivered"
    finally:
        receiver.stop()
    assert len(receiver.received) == 1 and receiver.received[0].signature_ok
    assert [code for code, _ in attempts_of(delivery)] == [None, 200]


def test_after_the_cap_the_delivery_fails_until_staff_retry_it(
    household, programme, samfya_officer, ministry_user, receiver
):
    receiver.answers = [503, 503, 503]
    delivery = refer(household, programme, samfya_officer)
    now = timezone.now()

    outcomes = [delivery_attempt(delivery_id=delivery.pk, now=now + LATER * i, max_attempts=3) for i in range(3)]

    assert outcomes == ["retry scheduled", "retry scheduled", "failed"]
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 3
    assert delivery.last_error.startswith("HTTP 503")
    assert delivery_attempt(delivery_id=delivery.pk, now=now + LATER * 4) == "skipped: failed"
    assert deliveries_due(now=now + LATER * 4) == []
    notice = Notification.objects.get(recipient=samfya_officer, kind="delivery_failed")
    assert delivery.referral.number in notice.message

    delivery_retry(delivery_id=delivery.pk, acting_user=ministry_user)
    assert delivery_attempt(delivery_id=delivery.pk) == "delivered"

    assert [code for code, _ in attempts_of(delivery)] == [503, 503, 503, 200]
    assert len(receiver.processed) == 1, "the agency acted on the referral once"


def test_a_worker_that_dies_during_the_call_leaves_the_row_to_the_sweep_after_its_lease(
    household, programme, samfya_officer, receiver
):
    delivery = refer(household, programme, samfya_officer)
    now = timezone.now()
    _claim(delivery_id=delivery.pk, now=now, lease=DELIVERY_LEASE)  # ... and the worker stops here.

    assert deliveries_due(now=now + DELIVERY_LEASE / 2) == []
    assert delivery_attempt(delivery_id=delivery.pk, now=now + DELIVERY_LEASE / 2) == "skipped: not due"
    assert deliveries_due(now=now + DELIVERY_LEASE) == [delivery.pk]
    assert delivery_attempt(delivery_id=delivery.pk, now=now + DELIVERY_LEASE) == "delivered"

    assert attempts_of(delivery) == [(None, ATTEMPT_UNFINISHED), (200, "")]


@pytest.mark.django_db(transaction=True)
def test_the_outbox_row_exists_only_after_commit_and_a_rollback_sends_nothing(
    household, programme, samfya_officer, receiver, tasks_run_inline
):
    class ChangedMyMind(Exception):
        pass

    with pytest.raises(ChangedMyMind), transaction.atomic():
        refer(household, programme, samfya_officer)
        raise ChangedMyMind
    assert not Referral.objects.exists() and not Delivery.objects.exists()
    assert deliveries_sweep() == 0
    assert receiver.received == []

    with transaction.atomic():
        delivery = refer(household, programme, samfya_officer)
        assert receiver.received == [], "nothing leaves before the commit"
        if connection.vendor == "postgresql":
            assert rows_seen_by_another_connection() == 0
    # After the commit the send runs (inline here, on a worker in production).
    assert len(receiver.received) == 1
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED


def rows_seen_by_another_connection() -> int:
    seen = []

    def count():
        try:
            seen.append(Delivery.objects.count())
        finally:
            connection.close()

    thread = threading.Thread(target=count)
    thread.start()
    thread.join()
    return seen[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_each_delivery_once(samfya, samfya_village, samfya_officer, tasks_run_inline):
    # The agency's system is down when the referrals are made: each after-commit
    # send fails, and the rows wait for the sweep.
    port = free_port()
    programme = programme_of(push_agency(url=f"http://127.0.0.1:{port}/hook"), district=samfya)
    for name in ("Mwansa", "Banda", "Phiri", "Tembo", "Zulu", "Mulenga"):
        refer(household_in(samfya_village, officer=samfya_officer, last_name=name), programme, samfya_officer)
    assert Delivery.objects.filter(status=DeliveryStatus.PENDING, attempts=1).count() == 6
    # It comes back, slow enough that the two sweeps overlap; the retries are due.
    receiver = Receiver(delay=0.1).start(port=port)
    Delivery.objects.update(next_attempt_at=timezone.now())
    start = threading.Barrier(2)
    queued = []

    def sweep():
        try:
            start.wait()
            queued.append(deliveries_sweep())
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=sweep) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        receiver.stop()

    assert sum(queued) >= 6
    assert sorted(r.headers["Idempotency-Key"] for r in receiver.received) == sorted(
        Delivery.objects.values_list("idempotency_key", flat=True)
    )
    assert set(Delivery.objects.values_list("status", flat=True)) == {DeliveryStatus.DELIVERED}
    assert sorted(Delivery.objects.values_list("attempts", flat=True)) == [2] * 6
    assert all(delivery.attempt_log.count() == 2 for delivery in Delivery.objects.all())


@pytest.mark.celery_worker
@pytest.mark.skipif(not settings.CELERY_BROKER_URL, reason="needs a broker (set CELERY_BROKER_URL)")
@pytest.mark.django_db(transaction=True)
def test_a_referral_is_pushed_by_a_real_worker_after_commit(household, programme, samfya_officer, receiver):
    from celery.contrib.testing.worker import start_worker

    with spf.celery.app.connection_for_write() as broker:
        # Messages left by an earlier, interrupted run would be picked up first.
        broker.default_channel.queue_purge("celery")
    with start_worker(spf.celery.app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        delivery = refer(household, programme, samfya_officer)
        deadline = time.monotonic() + WORKER_WAIT_SECONDS
        while time.monotonic() < deadline and not receiver.received:
            time.sleep(0.1)

    assert len(receiver.received) == 1 and receiver.received[0].signature_ok
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED
