"""The same submission twice (a double click, a browser or network retry, two officers at once) is done once:
a registration, a referral move, an enrolment or payroll approval, a grievance step, a reconciliation file.
(Two approvals of one enrolment at the same moment, at the service: payments/tests/test_concurrency.py.)

Over HTTP, as the front desk and partner systems send them: the page's forms and the API. Twice in a row,
and twice at the same moment: each "at once" test holds the row the work needs from the test's own
connection, sends both requests from two threads (two connections), waits until PostgreSQL shows both
waiting, then lets go, so the two really meet every time instead of only when the scheduler interleaves them.
"""

import threading
import time
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from grievances.models import Grievance, GrievanceEvent, GrievanceStatus
from grievances.services import grievance_register
from payments.models import (
    CycleEvent,
    Enrolment,
    EnrolmentEvent,
    EnrolmentStatus,
    PaymentChannel,
    PaymentCycle,
    PaymentEvent,
    PaymentStatus,
    Reconciliation,
)
from payments.payroll import payment_cycle_create, payroll_approve, payroll_export, payroll_generate
from payments.services import enrolment_apply, enrolment_transition
from payments.tests.makers import enrol_active, first_of_month, make_cash_programme, make_officer
from referrals.models import Referral, ReferralEvent, ReferralStatus
from referrals.services import referral_create
from referrals.tests.makers import make_agency, make_household
from registry.models import Household, HouseholdNumberSequence
from registry.tests.factories import UserFactory
from spf.idempotency.models import FormSubmission
from spf.models import Role

pytestmark = pytest.mark.django_db
# Two requests at once (postgres, transaction=True) need what the test made committed, each thread
# having its own connection; emptying every table afterwards costs seconds, so only those tests pay it.

# How long to wait for both requests to reach the held row before letting go anyway (the assertions
# then judge whatever happened). Generous: the machine is shared.
REACH_LOCK_SECONDS = 30


# --- two at once -------------------------------------------------------------------------------------


def waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        # Inside a transaction the activity view is read once and kept: ask for a fresh look.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def at_once(held_rows, *requests) -> list:
    """Hold `held_rows`, send each request from its own thread, let go once all of them wait; their answers."""
    answers: list = [None] * len(requests)

    def send(index, request):
        try:
            answers[index] = request()
        except Exception as problem:  # noqa: BLE001 - collected for the assertions
            answers[index] = problem
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(i, request)) for i, request in enumerate(requests)]
    with transaction.atomic():
        list(held_rows.select_for_update())
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + REACH_LOCK_SECONDS
        while time.monotonic() < deadline and waiting_for_a_lock() < len(requests):
            time.sleep(0.02)
    for thread in threads:
        thread.join()
    return answers


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def shown_messages(client: Client, url: str) -> str:
    return " ".join(str(message) for message in client.get(url).context["messages"])


# --- registration ------------------------------------------------------------------------------------


def registration_form(village, token: uuid.UUID) -> dict:
    """What the registration page posts: the household, its one member, and the page's one-time token."""
    data = {
        "submission_token": str(token),
        "village": village.pk,
        "address": "Plot 12, behind the clinic",
        "phone": "",
        "gps_latitude": "",
        "gps_longitude": "",
        "members-TOTAL_FORMS": 1,
        "members-INITIAL_FORMS": 1,
        "members-MIN_NUM_FORMS": 1,
        "members-MAX_NUM_FORMS": 1000,
    }
    member = {"first_name": "Chanda", "last_name": "Bwalya", "sex": "F", "date_of_birth": "1984-06-02"}
    for name in (
        "middle_name",
        "other_names",
        "birth_year",
        "national_id",
        "phone",
        "school_attendance",
        "work_status",
    ):
        data[f"members-0-{name}"] = ""
    data.update({f"members-0-{name}": value for name, value in member.items()})
    data.update({"members-0-relationship": "head", "members-0-chronic_illness": "unknown"})
    return data


def test_the_registration_page_carries_a_one_time_token(samfya_officer, samfya_village):
    page = browser(samfya_officer).get(reverse("frontdesk:household-new")).content.decode()
    assert 'type="hidden" name="submission_token"' in page


def test_a_registration_form_sent_twice_registers_one_household_and_shows_it(samfya_officer, samfya_village):
    client = browser(samfya_officer)
    form = registration_form(samfya_village, uuid.uuid4())

    first = client.post(reverse("frontdesk:household-new"), form)
    second = client.post(reverse("frontdesk:household-new"), form)

    household = Household.objects.get()
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == reverse("frontdesk:household", args=[household.pk])
    assert "already sent" in shown_messages(client, second["Location"])
    assert household.members.count() == 1
    assert FormSubmission.objects.get().object_id == household.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_registration_form_sent_twice_at_once_registers_one_household(samfya_officer, samfya_village, samfya):
    form = registration_form(samfya_village, uuid.uuid4())
    clients = [browser(samfya_officer), browser(samfya_officer)]
    HouseholdNumberSequence.objects.get_or_create(district=samfya)

    answers = at_once(
        HouseholdNumberSequence.objects.filter(district=samfya),
        *(lambda c=c: c.post(reverse("frontdesk:household-new"), form) for c in clients),
    )

    household = Household.objects.get()
    assert [a.status_code for a in answers] == [302, 302], answers
    assert {a["Location"] for a in answers} == {reverse("frontdesk:household", args=[household.pk])}
    assert household.members.count() == 1


def test_a_corrected_form_sent_with_the_same_token_registers(samfya_officer, samfya_village):
    """A refused form claimed nothing: the officer corrects it and sends the same page again."""
    client = browser(samfya_officer)
    form = registration_form(samfya_village, uuid.uuid4())

    refused = client.post(reverse("frontdesk:household-new"), {**form, "members-0-date_of_birth": "2999-01-01"})
    accepted = client.post(reverse("frontdesk:household-new"), form)

    assert refused.status_code == 400 and accepted.status_code == 302
    assert Household.objects.count() == 1


def registration_body() -> dict:
    return {
        "village": "SAM-W1-V1",
        "members": [
            {
                "first_name": "Chanda",
                "last_name": "Bwalya",
                "sex": "F",
                "date_of_birth": "1984-06-02",
                "relationship": "head",
            }
        ],
    }


def test_an_api_registration_sent_twice_with_one_key_registers_once(samfya_officer, samfya_village):
    client = api(samfya_officer)
    first = client.post("/api/v1/households/", registration_body(), format="json", HTTP_IDEMPOTENCY_KEY="desk-1")
    again = client.post("/api/v1/households/", registration_body(), format="json", HTTP_IDEMPOTENCY_KEY="desk-1")

    assert first.status_code == again.status_code == 201, again.content
    assert first.json() == again.json() and again["Idempotent-Replayed"] == "true"
    assert Household.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_an_api_registration_sent_twice_at_once_with_one_key_registers_once(samfya_officer, samfya_village, samfya):
    HouseholdNumberSequence.objects.get_or_create(district=samfya)
    clients = [api(samfya_officer), api(samfya_officer)]

    answers = at_once(
        HouseholdNumberSequence.objects.filter(district=samfya),
        *(
            lambda c=c: c.post("/api/v1/households/", registration_body(), format="json", HTTP_IDEMPOTENCY_KEY="desk-2")
            for c in clients
        ),
    )

    assert [a.status_code for a in answers] == [201, 201], answers
    assert answers[0].json()["number"] == answers[1].json()["number"]
    assert Household.objects.count() == 1


# --- referrals ------------------------------------------------------------------------------------------


@pytest.fixture
def agency(db):
    return make_agency("MCDSS")


@pytest.fixture
def maker(agency, samfya, lunga):
    return make_officer(agency, [samfya, lunga], name="maker")


@pytest.fixture
def checker(agency, samfya, lunga):
    return make_officer(agency, [samfya, lunga], name="checker")


@pytest.fixture
def second_checker(agency, samfya, lunga):
    return make_officer(agency, [samfya, lunga], name="checker2")


@pytest.fixture
def programme(agency, samfya, lunga, ministry_user):
    return make_cash_programme(agency=agency, districts=[samfya, lunga], ministry_user=ministry_user)


@pytest.fixture
def household(samfya_officer, samfya_village):
    return make_household(officer=samfya_officer, village=samfya_village)


@pytest.fixture
def sent(samfya_officer, household, programme) -> Referral:
    return referral_create(acting_user=samfya_officer, household=household, programme=programme)


def accept_on_page(client: Client, referral: Referral, key: str):
    return client.post(
        reverse("referrals:move", args=[referral.number]), {"to_status": "accepted", "idempotency_key": key}
    )


def test_a_referral_accepted_from_two_tabs_is_accepted_once_and_the_page_says_so(sent, checker):
    client = browser(checker)
    assert accept_on_page(client, sent, "page-tab-1").status_code == 302
    again = accept_on_page(client, sent, "page-tab-2")

    assert again.status_code == 302
    assert "already accepted" in shown_messages(client, again["Location"])
    assert ReferralEvent.objects.filter(referral=sent, to_status=ReferralStatus.ACCEPTED).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_officers_accepting_a_referral_at_once_accept_it_once(sent, checker, second_checker):
    answers = at_once(
        Referral.objects.filter(pk=sent.pk),
        lambda: accept_on_page(browser(checker), sent, "page-a"),
        lambda: accept_on_page(browser(second_checker), sent, "page-b"),
    )

    assert [a.status_code for a in answers] == [302, 302], answers
    assert ReferralEvent.objects.filter(referral=sent, to_status=ReferralStatus.ACCEPTED).count() == 1


def test_an_agency_system_retrying_an_acceptance_without_a_key_gets_the_referral_as_it_stands(sent, checker):
    client = api(checker)
    url = f"/api/v1/referrals/{sent.pk}/transition/"
    first = client.post(url, {"status": "accepted"}, format="json")
    retry = client.post(url, {"status": "accepted"}, format="json")

    assert first.status_code == retry.status_code == 200
    assert retry.json()["status"] == "accepted"
    assert ReferralEvent.objects.filter(referral=sent, to_status=ReferralStatus.ACCEPTED).count() == 1


def test_a_repeat_by_someone_who_may_not_make_the_move_is_still_refused(sent, checker, samfya_officer):
    api(checker).post(f"/api/v1/referrals/{sent.pk}/transition/", {"status": "accepted"}, format="json")
    refused = api(samfya_officer).post(
        f"/api/v1/referrals/{sent.pk}/transition/", {"status": "accepted"}, format="json"
    )
    assert refused.status_code == 403


# --- enrolment and payroll approval (maker-checker) ------------------------------------------------------


@pytest.fixture
def verified(household, programme, maker) -> Enrolment:
    enrolment = enrolment_apply(
        acting_user=maker,
        household=household,
        programme=programme,
        source="agency",
        channel=PaymentChannel.MOBILE_MONEY,
        account_number="0977000001",
    )
    return enrolment_transition(enrolment=enrolment, to_status=EnrolmentStatus.VERIFIED, acting_user=maker)


def approve_on_page(client: Client, enrolment: Enrolment, key: str):
    return client.post(
        reverse("payments:enrolment-move", args=[enrolment.number]), {"to_status": "approved", "idempotency_key": key}
    )


def test_an_approval_clicked_twice_approves_once_and_the_page_says_so(verified, checker):
    client = browser(checker)
    assert approve_on_page(client, verified, "page-1").status_code == 302
    again = approve_on_page(client, verified, "page-2")

    assert again.status_code == 302
    assert "already approved" in shown_messages(client, again["Location"])
    assert EnrolmentEvent.objects.filter(enrolment=verified, to_status=EnrolmentStatus.APPROVED).count() == 1


def test_the_maker_clicking_approve_after_the_checker_learns_it_is_approved(verified, checker, maker):
    approve_on_page(browser(checker), verified, "page-1")
    client = browser(maker)
    again = approve_on_page(client, verified, "page-2")
    assert again.status_code == 302 and "already approved" in shown_messages(client, again["Location"])
    assert EnrolmentEvent.objects.filter(enrolment=verified, to_status=EnrolmentStatus.APPROVED).count() == 1


@pytest.fixture
def generated(household, programme, maker, checker) -> PaymentCycle:
    enrol_active(household=household, programme=programme, maker=maker, checker=checker)
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    return cycle


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_checkers_approving_a_payroll_at_once_approve_it_once(generated, checker, second_checker):
    url = reverse("payments:cycle-approve", args=[generated.pk])
    answers = at_once(
        PaymentCycle.objects.filter(pk=generated.pk),
        lambda: browser(checker).post(url),
        lambda: browser(second_checker).post(url),
    )

    assert [a.status_code for a in answers] == [302, 302], answers
    assert CycleEvent.objects.filter(cycle=generated, action="approved").count() == 1


def test_a_payroll_approval_retried_over_the_api_approves_once(generated, checker, second_checker):
    url = f"/api/v1/payment-cycles/{generated.pk}/approve/"
    assert api(checker).post(url).status_code == 200
    again = api(second_checker).post(url)
    assert again.status_code == 200 and again.json()["status"] == "approved"
    assert CycleEvent.objects.filter(cycle=generated, action="approved").count() == 1


# --- grievances ---------------------------------------------------------------------------------------------


@pytest.fixture
def grievance(samfya_officer, household) -> Grievance:
    return grievance_register(
        acting_user=samfya_officer,
        category="other",
        description="The queue is too long.",
        household=household,
        complainant=household.head,
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_officers_acknowledging_a_grievance_at_once_acknowledge_it_once(grievance, samfya_officer, samfya):
    colleague = UserFactory(username="frontdesk_samfya_second", role=Role.FRONT_DESK, districts=[samfya])
    url = reverse("grievances:move", args=[grievance.number])
    answers = at_once(
        Grievance.objects.filter(pk=grievance.pk),
        lambda: browser(samfya_officer).post(url, {"move": "acknowledge", "idempotency_key": "page-a"}),
        lambda: browser(colleague).post(url, {"move": "acknowledge", "idempotency_key": "page-b"}),
    )

    assert [a.status_code for a in answers] == [302, 302], answers
    assert GrievanceEvent.objects.filter(grievance=grievance, to_status=GrievanceStatus.ACKNOWLEDGED).count() == 1


# --- reconciliation -------------------------------------------------------------------------------------------


@pytest.fixture
def exported(generated, maker, checker) -> PaymentCycle:
    payroll_approve(acting_user=checker, cycle=generated)
    payroll_export(acting_user=maker, cycle=generated, channel=PaymentChannel.MOBILE_MONEY)
    return generated


def provider_file(cycle: PaymentCycle) -> SimpleUploadedFile:
    lines = ["reference,status,amount,paid_at,transaction_id"]
    lines += [f"{p.reference},paid,{p.amount:.2f},2026-11-12 09:30,TX-{p.pk}" for p in cycle.payments.all()]
    return SimpleUploadedFile("provider.csv", ("\n".join(lines) + "\n").encode(), content_type="text/csv")


def assert_paid_once(cycle: PaymentCycle) -> None:
    assert cycle.payments.count() == cycle.payments.filter(status=PaymentStatus.PAID).count() == 1
    assert PaymentEvent.objects.filter(payment__cycle=cycle, to_status=PaymentStatus.PAID).count() == 1


def test_a_reconciliation_file_uploaded_twice_on_the_page_pays_once(exported, maker):
    client = browser(maker)
    url = reverse("payments:cycle-reconcile", args=[exported.pk])
    first = client.post(url, {"file": provider_file(exported)})
    second = client.post(url, {"file": provider_file(exported)})

    assert first.status_code == second.status_code == 302
    assert "1 already recorded" in shown_messages(client, second["Location"].split("#")[0])
    assert_paid_once(exported)


def test_a_reconciliation_file_sent_twice_with_one_key_is_imported_once(exported, maker):
    client = api(maker)
    url = f"/api/v1/payment-cycles/{exported.pk}/reconcile/"
    first = client.post(url, {"file": provider_file(exported)}, format="multipart", HTTP_IDEMPOTENCY_KEY="nov-file")
    again = client.post(url, {"file": provider_file(exported)}, format="multipart", HTTP_IDEMPOTENCY_KEY="nov-file")

    assert first.status_code == again.status_code == 201, again.content
    assert first.json()["id"] == again.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert Reconciliation.objects.count() == 1
    assert_paid_once(exported)


def test_a_reconciliation_file_sent_twice_without_a_key_pays_once(exported, maker):
    client = api(maker)
    url = f"/api/v1/payment-cycles/{exported.pk}/reconcile/"
    first = client.post(url, {"file": provider_file(exported)}, format="multipart")
    again = client.post(url, {"file": provider_file(exported)}, format="multipart")

    assert first.status_code == again.status_code == 201
    assert (first.json()["rows_applied"], again.json()["rows_applied"], again.json()["rows_unchanged"]) == (1, 0, 1)
    assert_paid_once(exported)


def test_the_services_say_when_a_move_was_already_made(sent, checker, verified):
    """What the pages read to say 'already': `repeated` on what the service returns."""
    from referrals.services import referral_transition

    accepted = referral_transition(referral=sent, to_status="accepted", acting_user=checker)
    again = referral_transition(referral=sent, to_status="accepted", acting_user=checker)
    assert (accepted.repeated, again.repeated) == (False, True)
    approved = enrolment_transition(enrolment=verified, to_status="approved", acting_user=checker)
    assert not approved.repeated
    assert enrolment_transition(enrolment=verified, to_status="approved", acting_user=checker).repeated
