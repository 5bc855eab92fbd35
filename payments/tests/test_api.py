"""Enrolments, payment cycles and payments over the REST API: a partner system
enrols and moves enrolments, an agency runs its payroll with maker-checker,
every refusal comes back in the project's error shape naming the field, and
nobody reaches beyond their scope, not even by guessing ids."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from payments.models import (
    CycleStatus,
    Enrolment,
    EnrolmentEvent,
    EnrolmentSource,
    EnrolmentStatus,
    Payment,
    PaymentChannel,
    PaymentStatus,
)
from payments.payroll import payment_cycle_create, payroll_approve, payroll_export, payroll_generate
from payments.services import enrolment_apply, enrolments_flag_lost_eligibility
from programmes.models import EligibilityOutcome, EligibilityResult
from programmes.services import eligibility_recompute_household
from referrals.services import referral_create, referral_transition
from registry.tests.factories import UserFactory
from spf.models import Role

from .makers import enrol_active, first_of_month, make_agency, make_cash_programme, make_household, make_officer

ENROLMENTS = "/api/v1/enrolments/"
CYCLES = "/api/v1/payment-cycles/"
PAYMENTS = "/api/v1/payments/"
E = EnrolmentStatus


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def token_client(user) -> APIClient:
    """Signed in as a partner system is: a token, the user loaded afresh on every request."""
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def error_of(response, status: int, code: str | None = None) -> dict:
    """The project's one error shape: {"error": {"code", "message", "fields"}}."""
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert {"code", "message", "fields"} <= set(error)
    assert isinstance(error["message"], str) and error["message"]
    if code:
        assert error["code"] == code
    return error


def field_error(response, field: str) -> str:
    error = error_of(response, 400, "validation_error")
    assert field in error["fields"], error
    return error["fields"][field][0]


def rows(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


def numbers(response) -> list[str]:
    return [row["number"] for row in rows(response)]


def csv_lines(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.fixture
def lunga_household(lunga_officer, lunga_village):
    return make_household(officer=lunga_officer, village=lunga_village, last_name="Lungu")


@pytest.fixture
def other_agency_officer(samfya, lunga):
    return make_officer(make_agency("MOE"), [samfya, lunga])


@pytest.fixture
def enrolled(household, lunga_household, programme, maker, checker):
    """An active enrolment in Samfya and one in Lunga."""
    return {
        "samfya": enrol_active(household=household, programme=programme, maker=maker, checker=checker),
        "lunga": enrol_active(
            household=lunga_household, programme=programme, maker=maker, checker=checker, account_number="0977000002"
        ),
    }


@pytest.fixture
def generated(programme, maker, enrolled):
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    return cycle


def apply_by_agency(officer, household, programme) -> Enrolment:
    return enrolment_apply(
        acting_user=officer,
        household=household,
        programme=programme,
        source=EnrolmentSource.AGENCY,
        channel=PaymentChannel.CASH,
        pay_point="Samfya boma",
    )


def _apply_body(household, **extra) -> dict:
    return {
        "household": household.number,
        "programme": "SCT",
        "channel": "mobile_money",
        "account_number": "0977123456",
        **extra,
    }


# --- applying -------------------------------------------------------------------------------------


def test_an_agency_officer_enrols_a_household_and_reads_it_back_with_its_history(maker, household, programme):
    response = token_client(maker).post(ENROLMENTS, _apply_body(household, reason="Home visit"), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    enrolment = Enrolment.objects.get()
    assert (body["id"], body["number"], body["status"]) == (enrolment.pk, enrolment.number, "applied")
    assert body["source"] == EnrolmentSource.AGENCY
    assert body["household"] == {"id": household.pk, "number": household.number, "head": "Mary Mwansa"}
    assert (body["programme"]["code"], body["programme"]["agency"], body["district"]["code"]) == ("SCT", "MCDSS", "SAM")
    assert (body["channel"], body["account_number"], body["account_name"]) == (
        "mobile_money",
        "0977123456",
        "Mary Mwansa",
    )
    assert body["amount"] is None and body["currency"] == "ZMW"
    assert [(e["from_status"], e["to_status"], e["actor"], e["reason"]) for e in body["events"]] == [
        ("", "applied", maker.username, "Home visit")
    ]
    assert body["moves"] == ["verified", "exited"]
    assert token_client(maker).get(f"{ENROLMENTS}{enrolment.pk}/").json() == body


def test_the_front_desk_enrols_at_the_window(samfya_officer, household, programme):
    response = client_for(samfya_officer).post(
        ENROLMENTS, _apply_body(household, channel="cash", account_number="", pay_point="Samfya boma"), format="json"
    )

    assert response.status_code == 201, response.content
    assert (response.json()["source"], response.json()["pay_point"]) == ("window", "Samfya boma")


def test_an_enrolment_from_an_accepted_referral_names_it(samfya_officer, maker, household, programme):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=programme)
    referral_transition(referral=referral, to_status="accepted", acting_user=maker)

    response = client_for(maker).post(ENROLMENTS, _apply_body(household, referral=referral.number), format="json")

    assert response.status_code == 201, response.content
    assert (response.json()["source"], response.json()["referral"]) == ("referral", referral.number)


def test_a_referral_not_yet_accepted_is_refused_naming_the_field(samfya_officer, maker, household, programme):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=programme)

    response = client_for(maker).post(ENROLMENTS, _apply_body(household, referral=referral.number), format="json")

    assert "only an accepted referral" in field_error(response, "referral")


def test_an_unknown_referral_is_refused_naming_the_field(maker, household, programme):
    response = client_for(maker).post(ENROLMENTS, _apply_body(household, referral="R99999999"), format="json")

    assert "R99999999" in field_error(response, "referral")
    assert not Enrolment.objects.exists()


def test_the_same_idempotency_key_applies_once(maker, household, programme):
    client = client_for(maker)
    first = client.post(ENROLMENTS, _apply_body(household), format="json", HTTP_IDEMPOTENCY_KEY="partner-42")
    again = client.post(ENROLMENTS, _apply_body(household), format="json", HTTP_IDEMPOTENCY_KEY="partner-42")

    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert Enrolment.objects.count() == 1 and EnrolmentEvent.objects.count() == 1


def test_what_the_service_refuses_on_apply_names_the_field(maker, household, programme):
    client = client_for(maker)

    no_account = client.post(ENROLMENTS, _apply_body(household, channel="bank", account_number=""), format="json")
    assert "bank account number" in field_error(no_account, "account_number")
    no_pay_point = client.post(ENROLMENTS, _apply_body(household, channel="cash"), format="json")
    assert "pay point" in field_error(no_pay_point, "pay_point")
    no_such_channel = client.post(ENROLMENTS, _apply_body(household, channel="pigeon"), format="json")
    assert "channel must be one of" in field_error(no_such_channel, "channel").lower()
    no_such_programme = client.post(ENROLMENTS, _apply_body(household, programme="NOPE"), format="json")
    field_error(no_such_programme, "programme")
    assert not Enrolment.objects.exists()


def test_a_household_already_enrolled_is_refused_naming_the_programme(maker, household, programme):
    client = client_for(maker)
    assert client.post(ENROLMENTS, _apply_body(household), format="json").status_code == 201

    again = client.post(ENROLMENTS, _apply_body(household), format="json")

    assert "already enrolled" in field_error(again, "programme")


def test_fields_an_application_cannot_set_are_refused(maker, household, programme):
    response = client_for(maker).post(ENROLMENTS, _apply_body(household, status="active", amount="900"), format="json")

    error = error_of(response, 400, "validation_error")
    assert set(error["fields"]) == {"status", "amount"}
    assert not Enrolment.objects.exists()


def test_a_household_outside_the_districts_is_a_404_naming_the_field(lunga_officer, household, programme):
    response = client_for(lunga_officer).post(ENROLMENTS, _apply_body(household), format="json")

    error = error_of(response, 404, "not_found")
    assert household.number in error["fields"]["household"][0]
    assert not Enrolment.objects.exists()


def test_a_role_that_cannot_enrol_gets_403_with_the_reason(committee_samfya, household, programme):
    response = client_for(committee_samfya).post(ENROLMENTS, _apply_body(household), format="json")

    error = error_of(response, 403, "permission_denied")
    assert "cannot enrol" in error["message"]


def test_another_agencys_officer_cannot_enrol_for_this_programme(other_agency_officer, household, programme):
    response = client_for(other_agency_officer).post(ENROLMENTS, _apply_body(household), format="json")

    assert "Agency MCDSS" in error_of(response, 403, "permission_denied")["message"]


# --- moving an enrolment ---------------------------------------------------------------------------


def _move(client, enrolment, status: str, **extra):
    return client.post(f"{ENROLMENTS}{enrolment.pk}/transition/", {"status": status, **extra}, format="json")


def test_maker_checker_through_the_api(maker, checker, household, programme):
    enrolment = enrolment_apply(
        acting_user=maker,
        household=household,
        programme=programme,
        source=EnrolmentSource.AGENCY,
        channel=PaymentChannel.MOBILE_MONEY,
        account_number="0977000001",
    )
    as_maker, as_checker = client_for(maker), client_for(checker)
    assert _move(as_maker, enrolment, "verified").json()["status"] == "verified"
    assert as_maker.get(f"{ENROLMENTS}{enrolment.pk}/").json()["moves"] == ["exited"]

    refused = _move(as_maker, enrolment, "approved")
    assert "Maker-checker" in field_error(refused, "approved_by")
    assert Enrolment.objects.get(pk=enrolment.pk).status == E.VERIFIED

    approved = _move(as_checker, enrolment, "approved")
    assert approved.status_code == 200, approved.content
    body = approved.json()
    assert (body["status"], body["amount"], body["currency"], body["approved_by"]) == (
        "approved",
        "150.00",
        "ZMW",
        checker.username,
    )
    assert body["events"][-1]["changes"] == {"amount": [None, "150.00"]}
    assert _move(as_checker, enrolment, "active").json()["status"] == "active"


def test_the_same_idempotency_key_on_a_transition_is_recorded_once(maker, household, programme):
    enrolment = apply_by_agency(maker, household, programme)
    client = client_for(maker)

    first = client.post(
        f"{ENROLMENTS}{enrolment.pk}/transition/", {"status": "verified"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )
    retried = client.post(
        f"{ENROLMENTS}{enrolment.pk}/transition/", {"status": "verified"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )

    assert first.status_code == retried.status_code == 200
    assert retried.json()["status"] == "verified"
    assert enrolment.events.filter(to_status=E.VERIFIED).count() == 1
    # Without the key the same request finds the enrolment verified already: answered as it stands, done once.
    again = _move(client, enrolment, "verified")
    assert again.status_code == 200 and again.json()["status"] == "verified"
    assert enrolment.events.filter(to_status=E.VERIFIED).count() == 1


def test_an_illegal_move_says_where_the_enrolment_can_go(maker, household, programme):
    enrolment = apply_by_agency(maker, household, programme)
    client = client_for(maker)

    assert "can go to verified, exited, not active" in field_error(_move(client, enrolment, "active"), "status")
    assert "not an enrolment status" in field_error(_move(client, enrolment, "paid"), "status")
    assert field_error(client.post(f"{ENROLMENTS}{enrolment.pk}/transition/", {}, format="json"), "status")


def test_suspending_needs_a_reason_and_exiting_an_exit_reason(maker, checker, household, programme):
    enrolment = enrol_active(household=household, programme=programme, maker=maker, checker=checker)
    client = client_for(checker)

    assert "why" in field_error(_move(client, enrolment, "suspended"), "reason")
    assert "Choose why" in field_error(_move(client, enrolment, "exited"), "exit_reason")
    exited = _move(client, enrolment, "exited", exit_reason="moved", reason="To Lusaka")
    assert (exited.json()["status"], exited.json()["exit_reason"], exited.json()["exit_note"]) == (
        "exited",
        "moved",
        "To Lusaka",
    )


def test_the_window_may_verify_but_not_approve(samfya_officer, household, programme):
    enrolment = enrolment_apply(
        acting_user=samfya_officer, household=household, programme=programme, pay_point="Samfya boma"
    )
    client = client_for(samfya_officer)
    assert _move(client, enrolment, "verified").status_code == 200

    refused = _move(client, enrolment, "approved")

    error = error_of(refused, 403, "permission_denied")
    assert "Only Agency MCDSS or ministry staff" in error["message"]
    assert Enrolment.objects.get(pk=enrolment.pk).status == E.VERIFIED


def test_the_committee_reads_its_district_but_cannot_move_anything(committee_samfya, enrolled):
    client = client_for(committee_samfya)
    enrolment = enrolled["samfya"]
    assert client.get(f"{ENROLMENTS}{enrolment.pk}/").json()["moves"] == []

    error_of(_move(client, enrolment, "suspended", reason="x"), 403, "permission_denied")
    assert Enrolment.objects.get(pk=enrolment.pk).status == E.ACTIVE


# --- payment details and review -----------------------------------------------------------------------


def test_payment_details_change_is_recorded_with_old_and_new_values(samfya_officer, enrolled):
    enrolment = enrolled["samfya"]
    url = f"{ENROLMENTS}{enrolment.pk}/payment-details/"
    client = client_for(samfya_officer)

    assert "bank account number" in field_error(client.post(url, {"channel": "bank"}, format="json"), "account_number")
    assert field_error(client.post(url, {}, format="json"), "channel")
    response = client.post(
        url, {"channel": "bank", "account_number": "ZN-1234", "reason": "Opened an account"}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["channel"], body["account_number"]) == ("bank", "ZN-1234")
    event = body["events"][-1]
    assert (event["kind"], event["actor"], event["reason"]) == ("details", samfya_officer.username, "Opened an account")
    assert event["changes"]["channel"] == ["mobile_money", "bank"]


def test_a_review_is_decided_with_a_reason(maker, checker, household, programme, enrolled):
    enrolment = enrolled["samfya"]
    eligibility_recompute_household(household_id=household.pk)
    EligibilityResult.objects.filter(household=household, programme=programme).update(
        outcome=EligibilityOutcome.NOT_ELIGIBLE
    )
    assert enrolments_flag_lost_eligibility() == 1
    client = client_for(checker)
    url = f"{ENROLMENTS}{enrolment.pk}/review/"
    assert [e["number"] for e in rows(client.get(ENROLMENTS, {"under_review": "true"}))] == [enrolment.number]

    assert "Say why" in field_error(client.post(url, {"keep": True, "reason": " "}, format="json"), "reason")
    assert field_error(client.post(url, {"reason": "Checked"}, format="json"), "keep")
    kept = client.post(url, {"keep": True, "reason": "Income checked at a home visit"}, format="json")

    assert kept.status_code == 200, kept.content
    assert (kept.json()["under_review"], kept.json()["status"]) == (False, "active")
    assert "not waiting for a review" in field_error(
        client.post(url, {"keep": True, "reason": "x"}, format="json"), "review"
    )
    assert rows(client.get(ENROLMENTS, {"under_review": "true"})) == []


def test_the_window_cannot_decide_a_review(samfya_officer, enrolled):
    enrolment = enrolled["samfya"]
    Enrolment.objects.filter(pk=enrolment.pk).update(review_since=enrolment.updated_at)

    response = client_for(samfya_officer).post(
        f"{ENROLMENTS}{enrolment.pk}/review/", {"keep": False, "reason": "x"}, format="json"
    )

    error_of(response, 403, "permission_denied")
    assert Enrolment.objects.get(pk=enrolment.pk).status == E.ACTIVE


# --- lists and filters --------------------------------------------------------------------------------


def test_enrolments_filter_by_programme_status_district_and_household(
    maker, checker, ministry_user, agency, samfya, household, programme, enrolled, samfya_officer, samfya_village
):
    waiting = make_household(officer=samfya_officer, village=samfya_village, last_name="Phiri")
    applied = apply_by_agency(maker, waiting, programme)
    school = make_cash_programme(code="SCH", agency=agency, districts=[samfya], ministry_user=ministry_user)
    other = enrol_active(household=household, programme=school, maker=maker, checker=checker)
    client = client_for(ministry_user)

    def listed(**params) -> set[str]:
        return set(numbers(client.get(ENROLMENTS, params)))

    everything = {enrolled["samfya"].number, enrolled["lunga"].number, applied.number, other.number}
    assert listed() == everything
    assert listed(programme="sch") == {other.number}
    assert listed(status="applied") == {applied.number}
    assert set(numbers(client.get(ENROLMENTS, {"status": ["applied", "active"], "programme": "SCT"}))) == {
        enrolled["samfya"].number,
        enrolled["lunga"].number,
        applied.number,
    }
    assert listed(district="LUN") == {enrolled["lunga"].number}
    assert listed(household=household.number.lower()) == {enrolled["samfya"].number, other.number}
    assert listed(under_review="false") == everything
    assert listed(source="agency") == everything
    assert field_error(client.get(ENROLMENTS, {"status": "paid"}), "status")


def test_listing_enrolments_takes_the_same_queries_for_one_or_many(
    maker, checker, programme, samfya_officer, samfya_village, household
):
    client = client_for(maker)
    enrol_active(household=household, programme=programme, maker=maker, checker=checker)
    with CaptureQueriesContext(connection) as one:
        assert len(rows(client.get(ENROLMENTS))) == 1
    for name in ("Phiri", "Banda", "Tembo"):
        other = make_household(officer=samfya_officer, village=samfya_village, last_name=name)
        enrol_active(household=other, programme=programme, maker=maker, checker=checker)
    with CaptureQueriesContext(connection) as many:
        assert len(rows(client.get(ENROLMENTS))) == 4
    assert len(many) == len(one)


# --- payment cycles -------------------------------------------------------------------------------------


def test_an_agency_runs_a_payroll_through_the_api_with_maker_checker(maker, checker, enrolled):
    as_maker, as_checker = token_client(maker), token_client(checker)
    created = as_maker.post(CYCLES, {"programme": "SCT", "period_start": "2026-11-01"}, format="json")
    assert created.status_code == 201, created.content
    cycle = created.json()
    assert (cycle["label"], cycle["period_end"], cycle["status"], cycle["created_by"]) == (
        "2026-11",
        "2026-11-30",
        "created",
        maker.username,
    )
    url = f"{CYCLES}{cycle['id']}/"

    report = as_maker.post(f"{url}generate/", {}, format="json")
    assert report.status_code == 200, report.content
    assert (report.json()["created"], report.json()["payment_count"], report.json()["total_amount"]) == (
        2,
        2,
        "300.00",
    )
    assert [(row["district"], row["count"], row["total"]) for row in report.json()["cycle"]["totals_by_district"]] == [
        ("Lunga", 1, "150.00"),
        ("Samfya", 1, "150.00"),
    ]

    refused = as_maker.post(f"{url}approve/")
    assert "Maker-checker" in field_error(refused, "approved_by")
    approved = as_checker.post(f"{url}approve/")
    assert approved.status_code == 200, approved.content
    assert (approved.json()["status"], approved.json()["approved_by"]) == ("approved", checker.username)
    assert as_checker.post(f"{url}approve/").status_code == 200, "the same approval twice is answered once"

    exported = as_maker.post(f"{url}export/?channel=mobile_money")
    assert exported.status_code == 200, exported.content
    assert exported["Content-Type"].startswith("text/csv")
    assert exported["Content-Disposition"] == 'attachment; filename="SCT-202611-mobile_money.csv"'
    lines = csv_lines(exported)
    assert lines[0] == ["reference", "wallet_number", "account_name", "amount", "currency"]
    assert sorted(line[1] for line in lines[1:-1]) == ["0977000001", "0977000002"]
    assert lines[-1][:3] == ["TOTAL", "2", "300.00"]

    read = as_maker.get(url).json()
    assert read["status"] == "exported" and read["exported_by"] == maker.username
    assert [event["action"] for event in read["events"]] == ["created", "generated", "approved", "exported"]


def test_cycle_creation_errors_name_the_field(maker, programme):
    client = client_for(maker)

    assert "first of a month" in field_error(
        client.post(CYCLES, {"programme": "SCT", "period_start": "2026-11-15"}, format="json"), "period_start"
    )
    assert field_error(client.post(CYCLES, {"programme": "SCT", "period_start": "soon"}, format="json"), "period_start")
    assert field_error(
        client.post(CYCLES, {"programme": "NOPE", "period_start": "2026-11-01"}, format="json"), "programme"
    )
    assert client.post(CYCLES, {"programme": "SCT", "period_start": "2026-11-01"}, format="json").status_code == 201
    assert "already has the cycle 2026-11" in field_error(
        client.post(CYCLES, {"programme": "SCT", "period_start": "2026-11-01"}, format="json"), "period_start"
    )


def test_export_needs_a_channel_and_an_approved_payroll(maker, checker, generated):
    client = client_for(maker)
    url = f"{CYCLES}{generated.pk}/export/"

    assert "approve it before exporting" in field_error(client.post(f"{url}?channel=cash"), "status")
    payroll_approve(acting_user=checker, cycle=generated)
    assert "Choose the channel" in field_error(client.post(url), "channel")
    assert "Channel must be one of" in field_error(client.post(f"{url}?channel=pigeon"), "channel")
    cash = client.post(f"{url}?channel=cash")
    assert cash.status_code == 200 and csv_lines(cash)[-1][:3] == ["TOTAL", "0", "0.00"]
    # Asked for by its media type (Swagger UI does), the file still comes, and an error stays JSON.
    assert client.post(f"{url}?channel=cash", HTTP_ACCEPT="text/csv")["Content-Type"].startswith("text/csv")
    error_of(client.post(f"{url}?channel=pigeon", HTTP_ACCEPT="text/csv"), 400, "validation_error")


def test_generate_refuses_an_approved_payroll_naming_the_status(maker, checker, generated):
    payroll_approve(acting_user=checker, cycle=generated)

    response = client_for(maker).post(f"{CYCLES}{generated.pk}/generate/", {}, format="json")

    assert "can no longer be generated" in field_error(response, "status")


def test_a_failed_payment_is_reissued_into_the_next_cycle(maker, checker, programme, enrolled, generated):
    payroll_approve(acting_user=checker, cycle=generated)
    payroll_export(acting_user=maker, cycle=generated, channel=PaymentChannel.MOBILE_MONEY)
    failed = Payment.objects.get(cycle=generated, enrolment=enrolled["samfya"])
    # The provider's file would say so (payments.reconciliation); here the payment is simply marked failed.
    Payment.objects.filter(pk=failed.pk).update(status=PaymentStatus.FAILED, status_note="Wallet closed")
    december = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month(2026, 12))
    client = client_for(maker)

    response = client.post(f"{CYCLES}{december.pk}/reissue/", {"payment_ids": [failed.pk]}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["reissued"] == 1 and response.json()["cycle"]["payment_count"] == 1
    reissue = rows(client.get(PAYMENTS, {"cycle": december.pk}))[0]
    assert reissue["reissue_of"] == failed.reference
    assert rows(client.get(PAYMENTS, {"reference": failed.reference}))[0]["reissued_as"] == reissue["reference"]
    assert field_error(
        client.post(f"{CYCLES}{december.pk}/reissue/", {"payment_ids": "all"}, format="json"), "payment_ids"
    )


def test_the_window_reads_cycles_of_its_districts_but_cannot_run_them(samfya_officer, generated):
    client = client_for(samfya_officer)
    assert [row["id"] for row in rows(client.get(CYCLES))] == [generated.pk]
    read = client.get(f"{CYCLES}{generated.pk}/").json()
    assert [row["district"] for row in read["totals_by_district"]] == ["Samfya"], "only its own districts' totals"
    assert read["reconciliations"] == []

    for path in ("generate/", "approve/", "reissue/", "export/?channel=mobile_money"):
        response = client.post(f"{CYCLES}{generated.pk}/{path}", {}, format="json")
        assert "Only Agency MCDSS or ministry staff" in error_of(response, 403, "permission_denied")["message"]
    error_of(client.post(CYCLES, {"programme": "SCT", "period_start": "2026-12-01"}, format="json"), 403)
    assert status_of(generated) == CycleStatus.GENERATED


def status_of(cycle) -> str:
    cycle.refresh_from_db()
    return cycle.status


def test_another_agencys_officer_cannot_see_or_act_on_this_agencys_cycle(other_agency_officer, checker, generated):
    client = client_for(other_agency_officer)
    assert rows(client.get(CYCLES)) == []
    error_of(client.get(f"{CYCLES}{generated.pk}/"), 404, "not_found")
    for action in ("generate", "approve", "reissue"):
        error_of(client.post(f"{CYCLES}{generated.pk}/{action}/", {}, format="json"), 404, "not_found")
    payroll_approve(acting_user=checker, cycle=generated)
    error_of(client.post(f"{CYCLES}{generated.pk}/export/?channel=mobile_money"), 404, "not_found")
    assert status_of(generated) == CycleStatus.APPROVED
    assert rows(client.get(PAYMENTS)) == [] and rows(client.get(ENROLMENTS)) == []


def test_ministry_staff_see_every_cycle_whole(ministry_user, generated):
    read = client_for(ministry_user).get(f"{CYCLES}{generated.pk}/").json()
    assert [row["district"] for row in read["totals_by_district"]] == ["Lunga", "Samfya"]


# --- reconciliation ------------------------------------------------------------------------------------


@pytest.fixture
def exported(maker, checker, generated):
    payroll_approve(acting_user=checker, cycle=generated)
    payroll_export(acting_user=maker, cycle=generated, channel=PaymentChannel.MOBILE_MONEY)
    return generated


def provider_file(*lines: str, name: str = "provider.csv"):
    content = "\n".join(["reference,status,amount,paid_at,transaction_id", *lines]) + "\n"
    return SimpleUploadedFile(name, content.encode(), content_type="text/csv")


def test_the_providers_file_is_reconciled_and_its_report_downloaded(maker, enrolled, exported):
    paid = Payment.objects.get(enrolment=enrolled["samfya"])
    failed = Payment.objects.get(enrolment=enrolled["lunga"])
    client = token_client(maker)
    upload = provider_file(
        f"{paid.reference},paid,150.00,2026-11-05 10:00,TX-1",
        f"{failed.reference},failed,150.00,,TX-2",
        "SCT-202611-999999,paid,150.00,2026-11-05 10:00,TX-3",
    )

    response = client.post(f"{CYCLES}{exported.pk}/reconcile/", {"file": upload}, format="multipart")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["file_name"], body["uploaded_by"], body["rows_total"], body["rows_applied"]) == (
        "provider.csv",
        maker.username,
        3,
        2,
    )
    assert body["summary"]["outcomes"]["unknown_reference"] == 1
    assert [p["status"] for p in rows(client.get(PAYMENTS, {"reference": paid.reference}))] == ["paid"]
    assert client.get(f"{PAYMENTS}{failed.pk}/").json()["events"][-1]["reconciliation"] == body["id"]
    assert [r["id"] for r in client.get(f"{CYCLES}{exported.pk}/").json()["reconciliations"]] == [body["id"]]

    report = client.get(body["report"])
    assert report.status_code == 200, report.content
    assert report["Content-Type"].startswith("text/csv")
    assert report["Content-Disposition"].startswith("attachment;")
    lines = csv_lines(report)
    assert lines[0][:2] == ["line", "reference"]
    assert [line[6] for line in lines[1:]] == ["applied", "applied", "unknown_reference"]
    from spf.models import ExportKind, PersonalDataExport

    # The payment file (the fixture's export) and this report are both on record, with who took them.
    kinds = list(PersonalDataExport.objects.order_by("pk").values_list("kind", "user", "rows"))
    assert kinds[-1] == (ExportKind.RECONCILIATION_REPORT, maker.pk, 3)
    assert ExportKind.PAYMENT_FILE in {kind for kind, _user, _rows in kinds}


def test_reconciliation_refusals_name_the_field(maker, generated):
    client = client_for(maker)
    url = f"{CYCLES}{generated.pk}/reconcile/"

    assert field_error(client.post(url, {}, format="multipart"), "file")
    assert "export its payment file" in field_error(
        client.post(url, {"file": provider_file("X,paid,1,2026-11-05,T")}, format="multipart"), "status"
    )


def test_a_file_missing_a_column_is_refused_naming_it(maker, exported):
    upload = SimpleUploadedFile("provider.csv", b"reference,status\nSCT-1,paid\n", content_type="text/csv")

    response = client_for(maker).post(f"{CYCLES}{exported.pk}/reconcile/", {"file": upload}, format="multipart")

    assert "amount" in field_error(response, "file")


def test_only_the_agency_reconciles_and_reads_the_report(
    maker, samfya_officer, other_agency_officer, enrolled, exported
):
    paid = Payment.objects.get(enrolment=enrolled["samfya"])
    done = client_for(maker).post(
        f"{CYCLES}{exported.pk}/reconcile/",
        {"file": provider_file(f"{paid.reference},paid,150.00,2026-11-05 10:00,TX-1")},
        format="multipart",
    )
    report = done.json()["report"]

    window = client_for(samfya_officer)
    refused = window.post(
        f"{CYCLES}{exported.pk}/reconcile/", {"file": provider_file("X,paid,1,2026-11-05,T")}, format="multipart"
    )
    assert "Only Agency MCDSS" in error_of(refused, 403, "permission_denied")["message"]
    error_of(window.get(report), 404, "not_found")
    other = client_for(other_agency_officer)
    error_of(other.get(report), 404, "not_found")
    error_of(
        other.post(
            f"{CYCLES}{exported.pk}/reconcile/", {"file": provider_file("X,paid,1,2026-11-05,T")}, format="multipart"
        ),
        404,
        "not_found",
    )
    assert exported.reconciliations.count() == 1


# --- payments ----------------------------------------------------------------------------------------------


def test_payments_are_listed_with_their_history_and_filtered(maker, samfya_officer, household, enrolled, generated):
    client = client_for(maker)
    listed = rows(client.get(PAYMENTS))
    assert len(listed) == 2
    payment = Payment.objects.get(enrolment=enrolled["samfya"])
    body = client.get(f"{PAYMENTS}{payment.pk}/").json()
    assert (body["reference"], body["status"], body["amount"], body["currency"]) == (
        payment.reference,
        "pending",
        "150.00",
        "ZMW",
    )
    assert body["cycle"] == {"id": generated.pk, "label": "2026-11", "status": "generated"}
    assert body["enrolment"] == {"id": enrolled["samfya"].pk, "number": enrolled["samfya"].number}
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in body["events"]] == [("", "pending", maker.username)]
    assert [row["reference"] for row in rows(client.get(PAYMENTS, {"household": household.number}))] == [
        payment.reference
    ]
    assert len(rows(client.get(PAYMENTS, {"cycle": generated.pk, "programme": "SCT", "status": "pending"}))) == 2
    assert rows(client.get(PAYMENTS, {"status": "paid"})) == []
    assert rows(client.get(PAYMENTS, {"programme": "XYZ"})) == []
    assert field_error(client.get(PAYMENTS, {"status": "lost"}), "status")


def test_listing_payments_takes_the_same_queries_for_one_or_many(maker, checker, programme, enrolled, generated):
    client = client_for(maker)
    with CaptureQueriesContext(connection) as two:
        assert len(rows(client.get(PAYMENTS))) == 2
    december = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month(2026, 12))
    payroll_generate(acting_user=maker, cycle=december)
    with CaptureQueriesContext(connection) as four:
        assert len(rows(client.get(PAYMENTS))) == 4
    assert len(four) == len(two)


# --- scope -------------------------------------------------------------------------------------------------


def test_an_officer_of_another_district_cannot_list_read_or_move_an_enrolment(lunga_officer, enrolled):
    samfya = enrolled["samfya"]
    client = client_for(lunga_officer)

    assert numbers(client.get(ENROLMENTS)) == [enrolled["lunga"].number]
    assert numbers(client.get(ENROLMENTS, {"district": "SAM"})) == []
    assert numbers(client.get(ENROLMENTS, {"household": samfya.household.number})) == []
    error_of(client.get(f"{ENROLMENTS}{samfya.pk}/"), 404, "not_found")
    error_of(_move(client, samfya, "suspended", reason="x"), 404, "not_found")
    error_of(
        client.post(f"{ENROLMENTS}{samfya.pk}/payment-details/", {"channel": "cash", "pay_point": "x"}, format="json"),
        404,
        "not_found",
    )
    error_of(client.post(f"{ENROLMENTS}{samfya.pk}/review/", {"keep": True, "reason": "x"}, format="json"), 404)
    samfya.refresh_from_db()
    assert (samfya.status, samfya.channel) == (E.ACTIVE, PaymentChannel.MOBILE_MONEY)


def test_an_officer_of_another_district_cannot_list_or_read_a_payment(lunga_officer, enrolled, generated):
    samfya_payment = Payment.objects.get(enrolment=enrolled["samfya"])
    client = client_for(lunga_officer)

    listed = client.get(PAYMENTS, {"page_size": 500})
    assert [row["reference"] for row in rows(listed)] == [Payment.objects.get(enrolment=enrolled["lunga"]).reference]
    assert samfya_payment.reference not in listed.content.decode()
    assert rows(client.get(PAYMENTS, {"household": samfya_payment.household.number})) == []
    error_of(client.get(f"{PAYMENTS}{samfya_payment.pk}/"), 404, "not_found")


def test_guessing_ids_answers_404_like_an_id_nobody_has(lunga_officer, enrolled, generated):
    client = client_for(lunga_officer)
    samfya = enrolled["samfya"]
    nobody = 10**9
    for path in (f"{ENROLMENTS}{samfya.pk}/", f"{ENROLMENTS}{nobody}/"):
        assert client.get(path).json() == client.get(f"{ENROLMENTS}{nobody}/").json()
    assert client.get(f"{PAYMENTS}{nobody}/").status_code == 404
    assert client.get(f"{CYCLES}{nobody}/").status_code == 404


def test_a_programme_officer_sees_only_their_agencys_enrolments_in_their_districts(
    agency, samfya, maker, checker, enrolled
):
    samfya_only = make_officer(agency, [samfya], name="samfya_only")
    assert numbers(client_for(samfya_only).get(ENROLMENTS)) == [enrolled["samfya"].number]
    error_of(client_for(samfya_only).get(f"{ENROLMENTS}{enrolled['lunga'].pk}/"), 404)


def test_an_officer_without_an_agency_sees_nothing(samfya, enrolled, generated):
    loose = UserFactory(username="no_agency", role=Role.PROGRAMME_OFFICER, districts=[samfya])
    client = client_for(loose)
    assert rows(client.get(ENROLMENTS)) == [] and rows(client.get(PAYMENTS)) == [] and rows(client.get(CYCLES)) == []


def test_the_api_needs_credentials(db):
    for path in (ENROLMENTS, CYCLES, PAYMENTS):
        error_of(APIClient().get(path), 401, "not_authenticated")


def test_enrolments_cycles_and_payments_are_never_replaced_edited_or_deleted_whole(ministry_user, enrolled, generated):
    client = client_for(ministry_user)
    payment = Payment.objects.filter(cycle=generated).first()
    for path in (f"{ENROLMENTS}{enrolled['samfya'].pk}/", f"{CYCLES}{generated.pk}/", f"{PAYMENTS}{payment.pk}/"):
        for method in ("put", "patch", "delete"):
            error_of(getattr(client, method)(path, {}, format="json"), 405, "method_not_allowed")
    error_of(client.post(PAYMENTS, {}, format="json"), 405, "method_not_allowed")
