"""Grievances over the REST API: the front desk registers and works a
grievance step by step, a partner agency sees only its own, an upheld appeal
changes eligibility, every refusal comes back in the project's error shape
naming the field, and nobody reaches a sensitive grievance or another
district's by guessing ids."""

import datetime
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from grievances.models import Grievance, GrievanceCategory, GrievanceEvent, GrievanceStatus
from grievances.services import (
    grievance_acknowledge,
    grievance_assign,
    grievance_attachment_add,
    grievance_register,
)
from payments.models import Enrolment, Payment, PaymentCycle, PaymentStatus
from payments.tests.makers import make_officer
from programmes.models import EligibilityOutcome, EligibilityResult
from programmes.services import eligibility_recompute_household, programme_set_rules
from referrals.tests.makers import make_agency, make_household, make_programme

GRIEVANCES = "/api/v1/grievances/"
S = GrievanceStatus
PDF = b"%PDF-1.4\n% a letter from the headman\n"


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


def numbers(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["number"] for row in response.json()["results"]]


def step(client, grievance: Grievance, name: str, body: dict | None = None, **headers):
    return client.post(f"{GRIEVANCES}{grievance.pk}/{name}/", body or {}, format="json", **headers)


def register(user, household, **extra) -> Grievance:
    values = {
        "category": GrievanceCategory.DATA_CORRECTION,
        "description": "My name is spelt wrong.",
        "complainant": household.head,
    }
    values.update(extra)
    return grievance_register(acting_user=user, household=household, **values)


@pytest.fixture
def programme(agency, samfya, lunga):
    return make_programme(code="SCT", agency=agency, districts=[samfya, lunga])


@pytest.fixture
def partner(agency, samfya):
    """A programme officer of the agency running SCT."""
    return make_officer(agency, [samfya])


@pytest.fixture
def lunga_household(lunga_officer, lunga_village):
    return make_household(officer=lunga_officer, village=lunga_village, last_name="Lungu")


@pytest.fixture
def paid_payment(household, programme, samfya):
    enrolment = Enrolment.objects.create(
        household=household,
        programme=programme,
        district=samfya,
        status="active",
        currency="ZMW",
        amount=Decimal("150.00"),
    )
    cycle = PaymentCycle.objects.create(
        programme=programme,
        period_start=datetime.date(2026, 11, 1),
        period_end=datetime.date(2026, 11, 30),
        currency="ZMW",
        status="closed",
    )
    return Payment.objects.create(
        cycle=cycle,
        enrolment=enrolment,
        household=household,
        district=samfya,
        programme=programme,
        reference="SCT-202611-1",
        amount=Decimal("150.00"),
        currency="ZMW",
        channel="cash",
        status=PaymentStatus.PAID,
        paid_at=datetime.datetime(2026, 11, 20, tzinfo=datetime.UTC),
    )


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


# --- registering -----------------------------------------------------------------------------------


def test_front_desk_registers_a_grievance_and_reads_it_back(samfya_officer, household):
    client = client_for(samfya_officer)

    response = client.post(
        GRIEVANCES,
        {
            "household": household.number.lower(),
            "complainant": household.head_id,
            "category": "data_correction",
            "description": "My name is spelt wrong.",
            "complainant_contact": "0977 123456",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    grievance = Grievance.objects.get()
    assert body["number"] == grievance.number and body["status"] == S.RECEIVED
    assert body["household"]["number"] == household.number
    assert body["complainant"] == {"id": household.head_id, "full_name": household.head.full_name}
    assert body["district"]["code"] == "SAM"
    assert body["due_date"] == str(grievance.due_date) and body["overdue"] is False
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in body["events"]] == [
        ("", "received", samfya_officer.username)
    ]
    assert body["moves"] == ["acknowledged"] and body["attachments"] == []
    assert client.get(f"{GRIEVANCES}{grievance.pk}/").json()["number"] == grievance.number


def test_an_anonymous_report_names_its_district(samfya_officer):
    client = client_for(samfya_officer)
    report = {"category": "other", "description": "The queue is too long.", "anonymous": True}

    assert "Name the household" in field_error(client.post(GRIEVANCES, report, format="json"), "district")
    assert "LUN" in field_error(client.post(GRIEVANCES, {**report, "district": "LUN"}, format="json"), "district")
    response = client.post(GRIEVANCES, {**report, "district": "sam", "channel": "phone"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["anonymous"] is True and response.json()["household"] is None


def test_what_registering_refuses_names_each_field(samfya_officer, household):
    client = client_for(samfya_officer)

    empty = error_of(client.post(GRIEVANCES, {}, format="json"), 400, "validation_error")
    assert {"category", "description"} <= set(empty["fields"])
    nobody = client.post(
        GRIEVANCES, {"household": household.number, "category": "other", "description": "x"}, format="json"
    )
    assert "anonymous" in field_error(nobody, "complainant_name")
    wrong = client.post(
        GRIEVANCES,
        {"household": household.number, "category": "gossip", "channel": "pigeon", "description": " ", "anonymous": 1},
        format="json",
    )
    fields = error_of(wrong, 400, "validation_error")["fields"]
    assert {"category", "channel", "description"} <= set(fields)
    assert "Category must be one of" in fields["category"][0]
    assert "cannot be set" in field_error(
        client.post(
            GRIEVANCES,
            {
                "household": household.number,
                "category": "other",
                "description": "x",
                "anonymous": True,
                "status": "closed",
            },
            format="json",
        ),
        "status",
    )
    no_payment = client.post(
        GRIEVANCES,
        {"household": household.number, "category": "payment", "description": "x", "anonymous": True, "payment": "X-1"},
        format="json",
    )
    assert "X-1" in field_error(no_payment, "payment")
    assert not Grievance.objects.exists()


def test_another_districts_household_does_not_exist_for_the_officer(samfya_officer, lunga_household):
    response = client_for(samfya_officer).post(
        GRIEVANCES,
        {"household": lunga_household.number, "category": "other", "description": "x", "anonymous": True},
        format="json",
    )

    error = error_of(response, 404, "not_found")
    assert "household" in error["fields"]
    assert not Grievance.objects.exists()


def test_the_committee_cannot_register_a_grievance(committee_samfya, household):
    response = client_for(committee_samfya).post(
        GRIEVANCES,
        {"household": household.number, "category": "other", "description": "x", "anonymous": True},
        format="json",
    )

    assert "cannot record grievances" in error_of(response, 403, "permission_denied")["message"]
    assert not Grievance.objects.exists()


def test_the_same_idempotency_key_registers_once(samfya_officer, household):
    client = client_for(samfya_officer)
    body = {"household": household.number, "complainant": household.head_id, "category": "other", "description": "x"}

    first = client.post(GRIEVANCES, body, format="json", HTTP_IDEMPOTENCY_KEY="desk-7")
    again = client.post(GRIEVANCES, body, format="json", HTTP_IDEMPOTENCY_KEY="desk-7")

    assert first.status_code == again.status_code == 201
    assert first.json()["id"] == again.json()["id"]
    assert Grievance.objects.count() == 1 and GrievanceEvent.objects.count() == 1


def test_a_paid_payment_reported_not_received_is_raised_with_the_provider(samfya_officer, household, paid_payment):
    response = client_for(samfya_officer).post(
        GRIEVANCES,
        {
            "household": household.number,
            "complainant": household.head_id,
            "category": "payment",
            "payment": paid_payment.reference.lower(),
            "payment_not_received": True,
            "description": "I never got November's money.",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["payment"] == paid_payment.reference and body["programme"]["code"] == "SCT"
    paid_payment.refresh_from_db()
    assert paid_payment.disputed_at is not None and body["number"] in paid_payment.dispute_note


# --- the steps -------------------------------------------------------------------------------------


def test_a_grievance_is_worked_to_closed_and_every_step_is_recorded(samfya_officer, other_samfya_officer, household):
    grievance = register(samfya_officer, household)
    desk, colleague = client_for(samfya_officer), token_client(other_samfya_officer)

    assert step(desk, grievance, "acknowledge", {"note": "Slip given"}).json()["status"] == S.ACKNOWLEDGED
    assigned = step(desk, grievance, "assign", {"assigned_to": other_samfya_officer.username})
    assert assigned.json()["assigned_to"] == other_samfya_officer.username
    found = step(colleague, grievance, "investigated", {"findings": "A typo at registration."})
    assert found.json()["moves"] == ["resolved", "escalated"]
    assert step(colleague, grievance, "resolve", {"resolution": "Name corrected."}).json()["status"] == S.RESOLVED
    closed = step(desk, grievance, "close", {"accepted": True}).json()

    assert closed["status"] == S.CLOSED and closed["resolution_accepted"] is True and closed["moves"] == []
    assert [(e["from_status"], e["to_status"], e["actor"]) for e in closed["events"]] == [
        ("", S.RECEIVED, samfya_officer.username),
        (S.RECEIVED, S.ACKNOWLEDGED, samfya_officer.username),
        (S.ACKNOWLEDGED, S.ASSIGNED, samfya_officer.username),
        (S.ASSIGNED, S.INVESTIGATED, other_samfya_officer.username),
        (S.INVESTIGATED, S.RESOLVED, other_samfya_officer.username),
        (S.RESOLVED, S.CLOSED, samfya_officer.username),
    ]
    assert closed["events"][3]["note"] == "A typo at registration."


def test_an_illegal_step_says_where_the_grievance_can_go(samfya_officer, household):
    grievance = register(samfya_officer, household)

    response = step(client_for(samfya_officer), grievance, "resolve", {"resolution": "Done"})

    assert "can go to acknowledged" in field_error(response, "status")
    assert grievance.events.count() == 1


def test_a_step_missing_what_it_needs_names_the_field(samfya_officer, household):
    grievance = register(samfya_officer, household)
    client = client_for(samfya_officer)
    grievance_acknowledge(acting_user=samfya_officer, grievance=grievance)

    assert field_error(step(client, grievance, "escalate", {"escalated_to": "committee", "reason": ""}), "reason")
    assert "committee, ministry" in field_error(
        step(client, grievance, "escalate", {"escalated_to": "mars", "reason": "x"}), "escalated_to"
    )
    assert field_error(step(client, grievance, "escalate", {}), "escalated_to")
    assert field_error(step(client, grievance, "resolve", {"resolution": " "}), "resolution")
    assert "eligibility appeal" in field_error(
        step(client, grievance, "resolve", {"resolution": "x", "appeal_outcome": "not_upheld"}), "appeal_outcome"
    )
    assert "one officer or one agency" in field_error(step(client, grievance, "assign", {}), "assigned_to")
    assert "nobody" in field_error(step(client, grievance, "assign", {"assigned_to": "nobody"}), "assigned_to")
    assert "NOPE" in field_error(step(client, grievance, "assign", {"assigned_agency": "nope"}), "assigned_agency")
    assert field_error(step(client, grievance, "close", {}), "accepted")
    assert grievance.events.count() == 2


def test_assigning_to_an_officer_of_another_district_is_refused(samfya_officer, lunga_officer, household):
    grievance = register(samfya_officer, household)
    grievance_acknowledge(acting_user=samfya_officer, grievance=grievance)

    response = step(client_for(samfya_officer), grievance, "assign", {"assigned_to": lunga_officer.username})

    assert "does not work in Samfya" in field_error(response, "assigned_to")


def test_the_committee_reads_but_may_not_resolve_what_is_not_escalated_to_it(
    samfya_officer, committee_samfya, household
):
    grievance = register(samfya_officer, household)
    grievance_acknowledge(acting_user=samfya_officer, grievance=grievance)
    committee = client_for(committee_samfya)

    assert committee.get(f"{GRIEVANCES}{grievance.pk}/").json()["moves"] == []
    refused = step(committee, grievance, "resolve", {"resolution": "x"})
    assert grievance.number in error_of(refused, 403, "permission_denied")["message"]
    step(client_for(samfya_officer), grievance, "escalate", {"escalated_to": "committee", "reason": "Hard case"})
    assert step(committee, grievance, "resolve", {"resolution": "Decided."}).json()["status"] == S.RESOLVED


def test_the_same_idempotency_key_on_a_step_is_recorded_once(samfya_officer, household):
    grievance = register(samfya_officer, household)
    client = client_for(samfya_officer)

    first = step(client, grievance, "acknowledge", HTTP_IDEMPOTENCY_KEY="ack-1")
    retried = step(client, grievance, "acknowledge", HTTP_IDEMPOTENCY_KEY="ack-1")

    assert first.status_code == retried.status_code == 200
    assert grievance.events.filter(to_status=S.ACKNOWLEDGED).count() == 1
    # Without the key the same request finds it acknowledged already: answered as it stands, done once.
    again = step(client, grievance, "acknowledge")
    assert again.status_code == 200 and again.json()["status"] == S.ACKNOWLEDGED
    assert grievance.events.filter(to_status=S.ACKNOWLEDGED).count() == 1


def test_a_resolution_not_accepted_is_escalated(samfya_officer, household):
    grievance = register(samfya_officer, household)
    client = client_for(samfya_officer)
    step(client, grievance, "acknowledge")
    step(client, grievance, "resolve", {"resolution": "Nothing wrong."})

    body = step(client, grievance, "escalate", {"escalated_to": "ministry", "reason": "Does not accept."}).json()

    assert body["status"] == S.ESCALATED and body["escalated_to"] == "ministry"
    assert body["resolution_accepted"] is False


# --- eligibility appeals ----------------------------------------------------------------------------


@pytest.fixture
def appeal(samfya_officer, household, programme, ministry_user):
    """An eligibility appeal against "not eligible" for a pension from 65, acknowledged."""
    programme_set_rules(
        acting_user=ministry_user, programme=programme, eligibility_rule="household.members.exists(m, m.age >= 65)"
    )
    eligibility_recompute_household(household_id=household.pk)
    grievance = register(
        samfya_officer,
        household,
        programme=programme,
        category=GrievanceCategory.ELIGIBILITY,
        description="I am 70; my date of birth was written wrong.",
    )
    return grievance_acknowledge(acting_user=samfya_officer, grievance=grievance)


def test_an_upheld_appeal_changes_the_eligibility_outcome(samfya_officer, household, programme, appeal):
    client = client_for(samfya_officer)
    read = client.get(f"{GRIEVANCES}{appeal.pk}/").json()
    assert read["appealed_outcome"] == EligibilityOutcome.NOT_ELIGIBLE and read["appealed_rule_version"] == 1

    response = step(
        client,
        appeal,
        "uphold",
        {
            "resolution": "Date of birth corrected from her NRC.",
            "member_corrections": [{"member": household.head_id, "values": {"date_of_birth": "1955-01-01"}}],
        },
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == S.RESOLVED and body["appeal_outcome"] == "upheld"
    assert body["outcome_after"] == EligibilityOutcome.ELIGIBLE
    assert body["events"][-1]["changes"]["eligibility"] == ["not_eligible", "eligible"]
    result = EligibilityResult.objects.get(household=household, programme=programme)
    assert result.outcome == EligibilityOutcome.ELIGIBLE
    household.head.refresh_from_db()
    assert household.head.date_of_birth == datetime.date(1955, 1, 1)


def test_an_upheld_appeal_with_bad_corrections_names_each_field_and_changes_nothing(
    samfya_officer, household, appeal, lunga_household
):
    client = client_for(samfya_officer)

    response = step(
        client,
        appeal,
        "uphold",
        {
            "resolution": "x",
            "household_values": {"village": "SAM-W1-V2", "phone": "0977 000111"},
            "member_corrections": [
                {"member": household.head_id, "values": {"date_of_birth": "the seventies", "status": "deceased"}}
            ],
        },
    )

    fields = error_of(response, 400, "validation_error")["fields"]
    assert set(fields) == {
        "household_values.village",
        "member_corrections.0.values.date_of_birth",
        "member_corrections.0.values.status",
    }
    stranger = step(
        client,
        appeal,
        "uphold",
        {"resolution": "x", "member_corrections": [{"member": lunga_household.head_id, "values": {"sex": "M"}}]},
    )
    assert field_error(stranger, "member_corrections.0.member")
    assert "uphold" in field_error(
        step(client, appeal, "resolve", {"resolution": "x", "appeal_outcome": "upheld"}), "appeal_outcome"
    )
    appeal.refresh_from_db()
    assert appeal.status == S.ACKNOWLEDGED and household.history.filter(note__contains=appeal.number).count() == 0


def test_an_appeal_not_upheld_is_resolved_with_its_outcome(samfya_officer, appeal):
    body = step(
        client_for(samfya_officer), appeal, "resolve", {"resolution": "Age checked.", "appeal_outcome": "not_upheld"}
    ).json()

    assert body["status"] == S.RESOLVED and body["appeal_outcome"] == "not_upheld"


# --- attachments -----------------------------------------------------------------------------------


def test_a_document_is_attached_listed_and_downloaded(samfya_officer, household, media):
    grievance = register(samfya_officer, household)
    client = client_for(samfya_officer)

    response = client.post(
        f"{GRIEVANCES}{grievance.pk}/attachments/",
        {"attachment": SimpleUploadedFile("letter.pdf", PDF, "application/pdf"), "description": "Headman's letter"},
        format="multipart",
    )

    assert response.status_code == 201, response.content
    attachment = response.json()
    assert attachment["file_name"] == "letter.pdf" and attachment["size"] == len(PDF)
    assert attachment["uploaded_by"] == samfya_officer.username
    assert client.get(f"{GRIEVANCES}{grievance.pk}/").json()["attachments"] == [attachment]
    download = client.get(attachment["download"], HTTP_ACCEPT="application/pdf")
    assert download.status_code == 200 and download["Content-Type"] == "application/pdf"
    assert b"".join(download.streaming_content) == PDF
    from spf.models import ExportKind, PersonalDataExport

    served = PersonalDataExport.objects.get()
    assert (served.user, served.kind, served.file_name) == (samfya_officer, ExportKind.ATTACHMENT, "letter.pdf")
    # A download's errors are JSON whatever the client accepts.
    missing = client.get(
        f"{GRIEVANCES}{grievance.pk}/attachments/{attachment['id'] + 1}/", HTTP_ACCEPT="application/pdf"
    )
    error_of(missing, 404, "not_found")


def test_a_document_of_the_wrong_kind_is_refused_naming_the_field(samfya_officer, household, media):
    grievance = register(samfya_officer, household)
    client = client_for(samfya_officer)

    wrong = client.post(
        f"{GRIEVANCES}{grievance.pk}/attachments/",
        {"attachment": SimpleUploadedFile("run.exe", b"MZ", "application/octet-stream")},
        format="multipart",
    )
    missing = client.post(f"{GRIEVANCES}{grievance.pk}/attachments/", {}, format="multipart")

    assert "PDF" in field_error(wrong, "attachment")
    assert field_error(missing, "attachment")
    assert not grievance.attachments.exists()


# --- partners ---------------------------------------------------------------------------------------


def test_a_partner_sees_only_grievances_about_its_programmes_or_assigned_to_it(
    samfya_officer, partner, household, programme
):
    about_sct = register(samfya_officer, household, programme=programme, category=GrievanceCategory.PAYMENT)
    about_the_window = register(samfya_officer, household, category=GrievanceCategory.OTHER)
    client = token_client(partner)

    assert numbers(client.get(GRIEVANCES)) == [about_sct.number]
    error_of(client.get(f"{GRIEVANCES}{about_the_window.pk}/"), 404, "not_found")
    grievance_acknowledge(acting_user=samfya_officer, grievance=about_the_window)
    grievance_assign(acting_user=samfya_officer, grievance=about_the_window, to_agency=partner.agency)

    assert set(numbers(client.get(GRIEVANCES))) == {about_sct.number, about_the_window.number}
    assert numbers(client.get(GRIEVANCES, {"mine": "true"})) == [about_the_window.number]
    body = step(client, about_the_window, "investigated", {"findings": "The pay point was closed."}).json()
    assert body["status"] == S.INVESTIGATED and body["assigned_agency"] == partner.agency.code


def test_a_partner_handing_a_grievance_to_another_agency_is_told_it_was_done(samfya_officer, partner, household):
    grievance = register(samfya_officer, household, category=GrievanceCategory.OTHER)
    grievance_acknowledge(acting_user=samfya_officer, grievance=grievance)
    grievance_assign(acting_user=samfya_officer, grievance=grievance, to_agency=partner.agency)
    make_agency("MOE")
    client = token_client(partner)

    response = step(client, grievance, "assign", {"assigned_agency": "MOE", "note": "Theirs, not ours."})

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["assigned_agency"] == "MOE" and "events" not in body
    error_of(client.get(f"{GRIEVANCES}{grievance.pk}/"), 404, "not_found")


def test_a_partner_follows_up_the_grievance_it_passed_on(partner, household):
    client = token_client(partner)

    response = client.post(
        GRIEVANCES,
        {
            "household": household.number,
            "complainant": household.head_id,
            "category": "staff_conduct",
            "channel": "partner_agency",
            "description": "Rude at the window.",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["moves"] == []
    assert numbers(client.get(GRIEVANCES)) == [response.json()["number"]]


def test_a_partner_of_another_agency_sees_nothing(samfya_officer, household, programme, samfya):
    register(samfya_officer, household, programme=programme, category=GrievanceCategory.PAYMENT)
    stranger = make_officer(make_agency("MOE"), [samfya])

    assert numbers(token_client(stranger).get(GRIEVANCES)) == []


# --- scope: sensitive grievances and other districts -----------------------------------------------------


STEPS = {
    "acknowledge": {},
    "assign": {"assigned_to": "frontdesk_samfya_second"},
    "investigated": {"findings": "x"},
    "escalate": {"escalated_to": "committee", "reason": "x"},
    "resolve": {"resolution": "x"},
    "uphold": {"resolution": "x"},
    "close": {"accepted": True},
}


def _reaches_nothing(client, grievance: Grievance, secret: str, media) -> None:
    """Neither list, filters, detail, any step, an upload nor a download says the grievance exists."""
    for params in ({}, {"sensitive": "true"}, {"number": grievance.number}, {"page_size": 500}, {"status": "received"}):
        response = client.get(GRIEVANCES, params)
        assert response.status_code == 200 and grievance.number not in response.content.decode()
        assert secret not in response.content.decode()
    error_of(client.get(f"{GRIEVANCES}{grievance.pk}/"), 404, "not_found")
    for name, body in STEPS.items():
        error_of(step(client, grievance, name, body), 404, "not_found")
    upload = client.post(
        f"{GRIEVANCES}{grievance.pk}/attachments/",
        {"attachment": SimpleUploadedFile("x.pdf", PDF, "application/pdf")},
        format="multipart",
    )
    error_of(upload, 404, "not_found")
    attachment = grievance.attachments.first()
    if attachment is not None:
        error_of(client.get(f"{GRIEVANCES}{grievance.pk}/attachments/{attachment.pk}/"), 404, "not_found")


def test_a_sensitive_grievance_is_invisible_to_an_ordinary_officer_of_the_same_district(
    samfya_officer, other_samfya_officer, designated_officer, household, media
):
    secret = "The pay point agent asked me for money."
    grievance = register(
        samfya_officer, household, category=GrievanceCategory.STAFF_CONDUCT, sensitive=True, description=secret
    )
    grievance_attachment_add(
        acting_user=samfya_officer,
        grievance=grievance,
        file=SimpleUploadedFile("receipt.pdf", PDF, "application/pdf"),
    )
    events, attachments = GrievanceEvent.objects.count(), grievance.attachments.count()

    _reaches_nothing(client_for(other_samfya_officer), grievance, secret, media)

    assert (GrievanceEvent.objects.count(), grievance.attachments.count()) == (events, attachments)
    designated = client_for(designated_officer)
    assert numbers(designated.get(GRIEVANCES, {"sensitive": "true"})) == [grievance.number]
    assert step(designated, grievance, "acknowledge").json()["status"] == S.ACKNOWLEDGED
    refused = step(designated, grievance, "assign", {"assigned_to": other_samfya_officer.username})
    assert "designated officer" in field_error(refused, "assigned_to")


def test_whoever_recorded_a_sensitive_grievance_reads_it_but_cannot_work_it(samfya_officer, household):
    grievance = register(samfya_officer, household, category=GrievanceCategory.FRAUD, description="Ghost names.")
    client = client_for(samfya_officer)

    body = client.get(f"{GRIEVANCES}{grievance.pk}/").json()

    assert body["sensitive"] is True and body["moves"] == []
    error_of(step(client, grievance, "acknowledge"), 403, "permission_denied")


def test_an_officer_of_another_district_gets_404_by_guessing_ids(samfya_officer, lunga_officer, household, media):
    secret = "My name is spelt wrong."
    grievance = register(samfya_officer, household, description=secret)
    grievance_attachment_add(
        acting_user=samfya_officer,
        grievance=grievance,
        file=SimpleUploadedFile("letter.pdf", PDF, "application/pdf"),
    )
    before = GrievanceEvent.objects.count()

    _reaches_nothing(client_for(lunga_officer), grievance, secret, media)

    assert GrievanceEvent.objects.count() == before
    assert Grievance.objects.get(pk=grievance.pk).status == S.RECEIVED


def test_ministry_staff_read_every_district_but_not_sensitive_grievances(
    samfya_officer, lunga_officer, ministry_user, household, lunga_household
):
    here = register(samfya_officer, household)
    there = register(lunga_officer, lunga_household)
    hidden = register(samfya_officer, household, category=GrievanceCategory.FRAUD, description="Ghost names.")

    listed = numbers(client_for(ministry_user).get(GRIEVANCES))

    assert set(listed) == {here.number, there.number} and hidden.number not in listed


# --- the list ---------------------------------------------------------------------------------------


def test_the_list_filters_combine(samfya_officer, other_samfya_officer, household, programme):
    data = register(samfya_officer, household)
    payment = register(samfya_officer, household, programme=programme, category=GrievanceCategory.PAYMENT)
    late = register(samfya_officer, household, category=GrievanceCategory.OTHER)
    Grievance.objects.filter(pk=late.pk).update(due_date=datetime.date(2020, 1, 1))
    grievance_acknowledge(acting_user=samfya_officer, grievance=payment)
    grievance_assign(acting_user=samfya_officer, grievance=payment, to_user=other_samfya_officer)
    client = client_for(samfya_officer)

    assert numbers(client.get(GRIEVANCES, {"overdue": "true"})) == [late.number]
    assert set(numbers(client.get(GRIEVANCES, {"overdue": "false"}))) == {data.number, payment.number}
    assert numbers(client.get(GRIEVANCES, {"category": "payment"})) == [payment.number]
    assert set(numbers(client.get(GRIEVANCES, {"category": ["payment", "other"]}))) == {payment.number, late.number}
    assert numbers(client.get(GRIEVANCES, {"status": "assigned"})) == [payment.number]
    assert numbers(client.get(GRIEVANCES, {"programme": "sct"})) == [payment.number]
    assert len(numbers(client.get(GRIEVANCES, {"household": household.number.lower()}))) == 3
    assert numbers(client.get(GRIEVANCES, {"household": "SAM-999999"})) == []
    assert numbers(client.get(GRIEVANCES, {"number": data.number})) == [data.number]
    assert numbers(client.get(GRIEVANCES, {"mine": "true"})) == []
    assert numbers(client_for(other_samfya_officer).get(GRIEVANCES, {"mine": "true"})) == [payment.number]
    late_row = client.get(GRIEVANCES, {"overdue": "true"}).json()["results"][0]
    assert late_row["overdue"] is True
    assert "status" in error_of(client.get(GRIEVANCES, {"status": "lost"}), 400, "validation_error")["fields"]


def test_the_list_reads_in_the_same_number_of_queries_however_long(samfya_officer, household, programme):
    client = client_for(samfya_officer)
    register(samfya_officer, household, programme=programme, category=GrievanceCategory.PAYMENT)
    client.get(GRIEVANCES)  # the user's districts and permissions are read once, then kept
    with CaptureQueriesContext(connection) as one:
        assert client.get(GRIEVANCES).status_code == 200
    for _ in range(4):
        register(samfya_officer, household, programme=programme, category=GrievanceCategory.PAYMENT)
    with CaptureQueriesContext(connection) as five:
        assert len(numbers(client.get(GRIEVANCES))) == 5

    assert len(five) == len(one)


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_a_grievance_is_never_replaced_or_deleted(samfya_officer, household, method):
    grievance = register(samfya_officer, household)

    response = getattr(client_for(samfya_officer), method)(f"{GRIEVANCES}{grievance.pk}/", {}, format="json")

    error_of(response, 405, "method_not_allowed")
