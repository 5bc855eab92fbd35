"""Delivery to agencies, without the network: signing, the backoff, which rows
the sweep takes, the staff's retry and its guards, the admin where staff see
failed deliveries, and the agency's updates coming back (idempotent)."""

import datetime
import random

import pytest
from django.contrib.admin.models import LogEntry
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

import referrals.delivery_admin  # noqa: F401  (registers the admin, as referrals.admin does)
from programmes.models import Agency
from referrals.delivery import (
    deliveries_due,
    delivery_attempt,
    delivery_retry,
    retry_delay,
    signature_for,
    signature_is_valid,
)
from referrals.models import Delivery, DeliveryAttempt, DeliveryStatus, ReferralEvent, ReferralStatus
from referrals.services import referral_create, referral_transition
from referrals.tests.delivery_receiver import free_port, household_in, programme_of, push_agency
from registry.tests.factories import UserFactory
from spf.models import Role

S = ReferralStatus
NOW = 1_767_225_600  # 2026-01-01 00:00 UTC, as a receiver's clock


@pytest.fixture
def agency(db):
    # Nothing listens there: a test that sent by mistake would log a refused connection.
    return push_agency(url=f"http://127.0.0.1:{free_port()}/hook")


@pytest.fixture
def referral(agency, samfya, samfya_village, samfya_officer):
    programme = programme_of(agency, district=samfya)
    household = household_in(samfya_village, officer=samfya_officer)
    return referral_create(acting_user=samfya_officer, household=household, programme=programme)


@pytest.fixture
def delivery(referral):
    return Delivery.objects.get(referral=referral)


@pytest.fixture
def agency_system(agency, samfya):
    """The agency's MIS: a service user, programme officer of the agency, with an API token."""
    return UserFactory(username="nhima_system", role=Role.PROGRAMME_OFFICER, agency=agency, districts=[samfya])


def failed(delivery: Delivery) -> Delivery:
    Delivery.objects.filter(pk=delivery.pk).update(
        status=DeliveryStatus.FAILED, attempts=15, last_error="HTTP 503: down"
    )
    delivery.refresh_from_db()
    return delivery


# --- signing ---------------------------------------------------------------------------


def test_a_signature_is_the_hmac_of_timestamp_dot_body():
    # A fixed vector agencies can check their own code against (docs/delivery.md).
    expected = "sha256=7d4120fcebf444efab10ba7cd6c651bf463cefb039db5fad37ff9f7231ac8a4a"
    assert signature_for("s3cret", 1767225600, b'{"a":1}') == expected
    assert signature_for("s3cret", "1767225600", b'{"a":1}') == expected


def test_the_reference_verifier_accepts_a_fresh_signed_request():
    body = b'{"event":"referral.sent"}'
    header = signature_for("s3cret", NOW, body)
    assert signature_is_valid("s3cret", str(NOW), body, header, now=NOW + 10, tolerance=300)


@pytest.mark.parametrize(
    "what, timestamp, body, now",
    [
        ("an old request replayed", NOW, b'{"event":"referral.sent"}', NOW + 301),
        ("a timestamp from the future", NOW, b'{"event":"referral.sent"}', NOW - 301),
        ("a changed body", NOW, b'{"event":"referral.cancelled"}', NOW),
        ("a timestamp changed to look fresh", NOW + 600, b'{"event":"referral.sent"}', NOW + 600),
        ("no timestamp", "", b'{"event":"referral.sent"}', NOW),
    ],
)
def test_the_reference_verifier_refuses(what, timestamp, body, now):
    header = signature_for("s3cret", NOW, b'{"event":"referral.sent"}')
    assert not signature_is_valid("s3cret", timestamp, body, header, now=now, tolerance=300), what


def test_the_reference_verifier_refuses_another_secret_and_a_malformed_header():
    body = b"{}"
    assert not signature_is_valid("other", NOW, body, signature_for("s3cret", NOW, body), now=NOW, tolerance=300)
    assert not signature_is_valid("s3cret", NOW, body, "sha256=zz", now=NOW, tolerance=300)
    assert not signature_is_valid("s3cret", NOW, body, "", now=NOW, tolerance=300)
    assert not signature_is_valid("s3cret", NOW, body, "sha256=é", now=NOW, tolerance=300)


# --- backoff ---------------------------------------------------------------------------


def test_the_backoff_grows_exponentially_under_a_cap_with_full_jitter():
    base, cap = datetime.timedelta(seconds=30), datetime.timedelta(hours=6)
    rng = random.Random(2026)
    for attempt in range(1, 25):
        ceiling = min(cap, base * 2 ** (attempt - 1))
        delays = [retry_delay(attempt, base=base, cap=cap, rng=rng) for _ in range(200)]
        assert all(datetime.timedelta(0) <= d <= ceiling for d in delays)
        # Full jitter: spread over the whole range, not bunched at the ceiling.
        assert min(delays) < ceiling / 4 and max(delays) > ceiling * 3 / 4


# --- which rows go -----------------------------------------------------------------------


def test_only_pending_rows_that_are_due_are_swept_oldest_first(referral, delivery, samfya_village, samfya_officer):
    now = timezone.now()
    other = referral_create(
        acting_user=samfya_officer,
        household=household_in(samfya_village, officer=samfya_officer, last_name="Banda"),
        programme=referral.programme,
    ).deliveries.get()
    Delivery.objects.filter(pk=other.pk).update(next_attempt_at=now - datetime.timedelta(minutes=5))
    assert deliveries_due(now=now) == [other.pk, delivery.pk]
    assert deliveries_due(now=now, limit=1) == [other.pk]
    Delivery.objects.filter(pk=other.pk).update(status=DeliveryStatus.DELIVERED)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=now + datetime.timedelta(minutes=1))
    assert deliveries_due(now=now) == []


def test_a_delivered_or_failed_row_is_never_sent_again(delivery):
    Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.DELIVERED)
    assert delivery_attempt(delivery_id=delivery.pk) == "skipped: delivered"
    failed(delivery)
    assert delivery_attempt(delivery_id=delivery.pk) == "skipped: failed"
    assert not DeliveryAttempt.objects.exists()


def test_an_agency_without_a_webhook_is_a_logged_failure(delivery, agency):
    agency.webhook_url = ""
    agency.referral_delivery = "queue"
    agency.save()
    assert delivery_attempt(delivery_id=delivery.pk) == "retry scheduled"
    assert "no webhook URL" in delivery.attempt_log.get().error


def test_only_window_moves_are_pushed_to_the_agency(referral, agency_system, samfya_officer):
    referral_transition(referral=referral, to_status=S.RECEIVED, acting_user=agency_system)
    assert [d.payload["event"] for d in Delivery.objects.order_by("pk")] == ["referral.sent"]
    referral_transition(referral=referral, to_status=S.CANCELLED, acting_user=samfya_officer, reason="Moved to Lusaka")
    assert [d.payload["event"] for d in Delivery.objects.order_by("pk")] == ["referral.sent", "referral.cancelled"]
    assert Delivery.objects.values("idempotency_key").distinct().count() == 2


# --- the staff's retry -------------------------------------------------------------------


def test_staff_retry_a_failed_delivery_and_who_did_it_is_recorded(delivery, ministry_user):
    failed(delivery)
    before = timezone.now()
    retried = delivery_retry(delivery_id=delivery.pk, acting_user=ministry_user)
    assert (retried.status, retried.attempts) == (DeliveryStatus.PENDING, 0)
    assert before <= retried.next_attempt_at <= timezone.now()
    assert deliveries_due() == [delivery.pk]
    entry = LogEntry.objects.get(object_id=str(delivery.pk))
    assert entry.user == ministry_user and entry.action_time >= before
    assert "15 failed attempts" in entry.change_message and "HTTP 503" in entry.change_message


def test_only_a_failed_delivery_can_be_retried(delivery, ministry_user):
    with pytest.raises(ValidationError, match="waiting to be sent"):
        delivery_retry(delivery_id=delivery.pk, acting_user=ministry_user)


def test_front_desk_and_other_districts_cannot_retry(delivery, samfya_officer, lunga):
    failed(delivery)
    with pytest.raises(PermissionDenied):
        delivery_retry(delivery_id=delivery.pk, acting_user=samfya_officer)
    lunga_staff = UserFactory(username="ministry_lunga", role=Role.FRONT_DESK, districts=[lunga], is_staff=True)
    lunga_staff.user_permissions.add(*_delivery_change_permission())
    with pytest.raises(PermissionDenied, match="outside your districts"):
        delivery_retry(delivery_id=delivery.pk, acting_user=lunga_staff)
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.FAILED


def _delivery_change_permission():
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="referrals", codename="change_delivery")


# --- the admin ---------------------------------------------------------------------------


def test_staff_see_failed_deliveries_and_retry_them_from_the_admin(client, delivery, ministry_user):
    failed(delivery)
    DeliveryAttempt.objects.create(delivery=delivery, status_code=503, latency_ms=12, error="HTTP 503: maintenance")
    client.force_login(ministry_user)
    changelist = reverse("admin:referrals_delivery_changelist")

    page = client.get(changelist, {"status__exact": "failed"})
    assert page.status_code == 200
    assert delivery.referral.number in page.text and "HTTP 503: down" in page.text  # the last error
    detail = client.get(reverse("admin:referrals_delivery_change", args=[delivery.pk]))
    assert detail.status_code == 200 and "HTTP 503: maintenance" in detail.text  # the attempt, inline

    response = client.post(changelist, {"action": "retry_delivery", "_selected_action": [delivery.pk]}, follow=True)
    assert "1 deliveries queued to be sent again" in response.text
    assert Delivery.objects.get(pk=delivery.pk).status == DeliveryStatus.PENDING


def test_an_officer_of_another_district_does_not_see_the_delivery(client, delivery, lunga):
    staff = UserFactory(username="staff_lunga", role=Role.FRONT_DESK, districts=[lunga], is_staff=True)
    from django.contrib.auth.models import Permission

    staff.user_permissions.add(*Permission.objects.filter(codename="view_delivery"))
    client.force_login(staff)
    page = client.get(reverse("admin:referrals_delivery_changelist"))
    assert page.status_code == 200 and delivery.referral.number not in page.text
    assert client.get(reverse("admin:referrals_delivery_change", args=[delivery.pk])).status_code == 404


# --- updates coming back from the agency (the API calls this service) --------------------


def test_an_agency_update_sent_twice_with_one_key_is_applied_once(referral, agency_system):
    first = referral_transition(
        referral=referral, to_status=S.RECEIVED, acting_user=agency_system, idempotency_key="nhima-7781"
    )
    again = referral_transition(
        referral=referral, to_status=S.RECEIVED, acting_user=agency_system, idempotency_key="nhima-7781"
    )
    assert first.status == again.status == S.RECEIVED
    events = ReferralEvent.objects.filter(referral=referral, to_status=S.RECEIVED)
    assert events.count() == 1 and events.get().idempotency_key == "nhima-7781"
    assert events.get().agency == referral.agency


def test_a_retried_update_after_a_later_one_does_not_move_the_referral_back(referral, agency_system):
    referral_transition(referral=referral, to_status=S.RECEIVED, acting_user=agency_system, idempotency_key="k-1")
    referral_transition(referral=referral, to_status=S.ACCEPTED, acting_user=agency_system, idempotency_key="k-2")
    # The agency's first request timed out on its side and is sent again.
    replay = referral_transition(
        referral=referral, to_status=S.RECEIVED, acting_user=agency_system, idempotency_key="k-1"
    )
    assert replay.status == S.ACCEPTED
    assert list(referral.events.values_list("to_status", flat=True)) == [S.DRAFT, S.SENT, S.RECEIVED, S.ACCEPTED]


def test_a_new_key_for_an_illegal_move_is_refused(referral, agency_system):
    referral_transition(referral=referral, to_status=S.RECEIVED, acting_user=agency_system, idempotency_key="k-1")
    with pytest.raises(ValidationError, match="it can go to"):
        referral_transition(referral=referral, to_status=S.COMPLETED, acting_user=agency_system, idempotency_key="k-9")


def test_a_new_key_for_the_status_the_referral_has_records_nothing(referral, agency_system):
    referral_transition(referral=referral, to_status=S.RECEIVED, acting_user=agency_system, idempotency_key="k-1")
    again = referral_transition(
        referral=referral, to_status=S.RECEIVED, acting_user=agency_system, idempotency_key="k-9"
    )
    assert again.repeated and again.status == S.RECEIVED
    assert referral.events.filter(to_status=S.RECEIVED).count() == 1


def test_a_malformed_webhook_url_is_a_logged_failure_not_a_crash(delivery, agency):
    Agency.objects.filter(pk=agency.pk).update(webhook_url="http://127.0.0.1:notaport/hook")
    assert delivery_attempt(delivery_id=delivery.pk) == "retry scheduled"
    assert "Port could not be cast" in delivery.attempt_log.get().error


def test_another_agencys_officer_does_not_see_the_delivery(client, delivery, samfya):
    from django.contrib.auth.models import Permission

    other = push_agency(url="http://127.0.0.1:9/hook", code="MOE")
    officer = UserFactory(
        username="moe_staff", role=Role.PROGRAMME_OFFICER, agency=other, districts=[samfya], is_staff=True
    )
    officer.user_permissions.add(*Permission.objects.filter(codename__in=["view_delivery", "view_deliveryattempt"]))
    client.force_login(officer)
    assert delivery.referral.number not in client.get(reverse("admin:referrals_delivery_changelist")).text
    assert client.get(reverse("admin:referrals_delivery_change", args=[delivery.pk])).status_code == 404
