"""The grievance pages: record from a household's page or without one, the grievance page and
each of its moves (errors beside the field), the acknowledgement slip, the worklist with its
filters and counts, the lookup by reference, the household's section, a payment reported not
received, an appeal upheld through the page, and who may see what (404 outside scope)."""

import datetime
import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from grievances.models import Grievance, GrievanceAttachment, GrievanceCategory, GrievanceStatus
from grievances.services import grievance_acknowledge, grievance_assign, grievance_escalate, grievance_register
from payments.models import Enrolment, Payment, PaymentCycle, PaymentStatus
from programmes.models import EligibilityOutcome, EligibilityResult
from programmes.services import eligibility_recompute_household, programme_set_rules
from referrals.tests.makers import make_programme
from registry.models import AttributeDefinition
from registry.services import household_update
from registry.tests.factories import UserFactory
from spf.models import Role

S = GrievanceStatus


@pytest.fixture
def desk(client, samfya_officer):
    client.force_login(samfya_officer)
    return client


def logged_in(client, user):
    client.force_login(user)
    return client


def page_url(grievance):
    return reverse("grievances:grievance", args=[grievance.number])


def move(client, grievance, key, **data):
    return client.post(reverse("grievances:move", args=[grievance.number]), {"move": key, **data})


def record(user, household, **extra):
    values = {
        "category": GrievanceCategory.DATA_CORRECTION,
        "description": "My name is spelt Mwanza on the card.",
        "complainant": household.head,
        "household": household,
    }
    values.update(extra)
    return grievance_register(acting_user=user, **values)


@pytest.fixture
def received(samfya_officer, household):
    return record(samfya_officer, household)


@pytest.fixture
def acknowledged(samfya_officer, received):
    return grievance_acknowledge(acting_user=samfya_officer, grievance=received)


@pytest.fixture
def sct(agency, samfya):
    return make_programme(code="SCT", agency=agency, districts=[samfya])


# --- recording ---------------------------------------------------------------------------------


def test_the_household_page_has_a_grievances_section_with_a_record_button(desk, household):
    page = desk.get(reverse("frontdesk:household", args=[household.pk])).content.decode()
    assert 'id="grievances"' in page and "No grievance recorded" in page
    assert reverse("grievances:record-household", args=[household.pk]) in page


def test_recording_from_the_household_page_opens_the_grievance_with_its_deadline(
    desk, household, sct, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    url = reverse("grievances:record-household", args=[household.pk])
    form = desk.get(url, {"programme": "SCT"})
    assert form.status_code == 200
    assert form.context["form"].initial["complainant"] == household.head_id
    assert form.context["form"].initial["category"] == GrievanceCategory.ELIGIBILITY
    response = desk.post(
        url,
        {
            "complainant": household.head_id,
            "category": "payment",
            "programme": "SCT",
            "channel": "walk_in",
            "priority": "high",
            "description": "The pay point agent was not there on pay day.",
            "idempotency_key": "page-1",
            "attachment": SimpleUploadedFile("note.pdf", b"%PDF-1.4 the headman's note"),
            "attachment_description": "Headman's note",
        },
    )
    grievance = Grievance.objects.get()
    assert response.status_code == 302 and response["Location"] == page_url(grievance)
    assert grievance.household == household and grievance.programme == sct and grievance.priority == "high"
    page = desk.get(page_url(grievance)).content.decode()
    for text in ("Mary Mwansa", "The pay point agent was not there", grievance.due_date.strftime("%-d %b %Y")):
        assert text in page
    assert "Headman&#x27;s note" in page and "Grievance recorded" in page
    assert grievance.number in desk.get(reverse("frontdesk:household", args=[household.pk])).content.decode()


def test_the_same_form_posted_twice_records_one_grievance(desk, household):
    data = {
        "complainant": household.head_id,
        "category": "other",
        "channel": "walk_in",
        "priority": "normal",
        "description": "The queue is too long.",
        "idempotency_key": "page-twice",
    }
    url = reverse("grievances:record-household", args=[household.pk])
    first, second = desk.post(url, data), desk.post(url, data)
    assert first["Location"] == second["Location"] and Grievance.objects.count() == 1


def test_recording_shows_each_error_beside_its_field(desk, household):
    url = reverse("grievances:record-household", args=[household.pk])
    response = desk.post(url, {"category": "", "channel": "walk_in", "priority": "normal", "description": " "})
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert "Choose the category" in errors["category"][0]
    assert "Write what the person says happened" in errors["description"][0]
    assert re.search(r'has-error">\s*<label for="id_description"', response.content.decode())
    # The service's rules come back beside their fields too: someone must be named, or it is anonymous.
    response = desk.post(
        url, {"category": "other", "channel": "walk_in", "priority": "normal", "description": "The queue."}
    )
    assert "Name the person who raises it" in response.context["form"].errors["complainant_name"][0]
    assert not Grievance.objects.exists()


def test_a_wrong_kind_of_file_is_refused_and_nothing_is_recorded(desk, household, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    response = desk.post(
        reverse("grievances:record-household", args=[household.pk]),
        {
            "complainant": household.head_id,
            "category": "other",
            "channel": "walk_in",
            "priority": "normal",
            "description": "See the file.",
            "attachment": SimpleUploadedFile("run.exe", b"MZ"),
        },
    )
    assert response.status_code == 400 and "Attach a PDF" in response.context["form"].errors["attachment"][0]
    assert not Grievance.objects.exists()


def test_an_anonymous_grievance_without_a_household_is_handled_in_the_windows_district(desk, samfya):
    form = desk.get(reverse("grievances:record"))
    assert form.context["form"].fields["district"].initial == samfya.pk
    response = desk.post(
        reverse("grievances:record"),
        {
            "district": samfya.pk,
            "anonymous": "on",
            "category": "fraud",
            "channel": "phone",
            "priority": "urgent",
            "description": "Names of people who died are still on the pay list at Chinsanka.",
        },
    )
    grievance = Grievance.objects.get()
    assert response["Location"] == page_url(grievance)
    assert grievance.anonymous and grievance.household is None and grievance.district == samfya
    assert grievance.sensitive  # fraud always is
    assert "Anonymous" in desk.get(page_url(grievance)).content.decode()


def test_a_committee_member_cannot_record_a_grievance(client, committee_samfya, household):
    logged_in(client, committee_samfya)
    assert client.get(reverse("grievances:record-household", args=[household.pk])).status_code == 403
    assert client.get(reverse("grievances:record")).status_code == 403


def test_an_officer_of_another_district_cannot_open_the_form_for_a_household(client, lunga_officer, household):
    url = reverse("grievances:record-household", args=[household.pk])
    assert logged_in(client, lunga_officer).get(url).status_code == 404


# --- the grievance page and its moves ------------------------------------------------------------


def test_every_move_through_the_page_is_recorded_with_who_and_when(
    desk, client, received, samfya_officer, other_samfya_officer
):
    page = desk.get(page_url(received))
    assert [m["key"] for m in page.context["moves"]] == ["acknowledge"]
    assert move(desk, received, "acknowledge", idempotency_key="k1").status_code == 302
    assert move(desk, received, "acknowledge", idempotency_key="k1").status_code == 302  # a double click
    page = desk.get(page_url(received))
    assert {m["key"] for m in page.context["moves"]} == {"assign", "escalate", "resolve"}
    assert "Print the slip" in page.content.decode()
    response = move(desk, received, "assign", assigned_to=other_samfya_officer.pk, note="Check the card")
    assert response.status_code == 302, response.content.decode()[:400]
    logged_in(client, other_samfya_officer)
    assert move(client, received, "investigated", findings="A typo at registration.").status_code == 302
    assert move(client, received, "resolve", resolution="Name corrected; new card printed.").status_code == 302
    assert move(client, received, "close", accepted="yes").status_code == 302
    received.refresh_from_db()
    assert received.status == S.CLOSED and received.resolution_accepted is True
    assert received.events.filter(to_status=S.ACKNOWLEDGED).count() == 1
    page = client.get(page_url(received))
    assert page.context["moves"] == []
    text = page.content.decode()
    history = text[text.index('id="history-title"') :]
    assert history.count("<li>") >= 6
    assert "Assigned to:</span> " + (other_samfya_officer.get_full_name() or other_samfya_officer.username) in history
    assert "A typo at registration." in history and "The person accepted it." in text


def test_a_move_without_its_required_words_comes_back_with_the_error_in_its_form(desk, acknowledged):
    response = move(desk, acknowledged, "escalate", escalated_to="committee", reason="")
    assert response.status_code == 400
    escalate = next(m for m in response.context["moves"] if m["key"] == "escalate")
    assert escalate["open"] and "Say why it is escalated" in escalate["form"].errors["reason"][0]
    response = move(desk, acknowledged, "assign")
    assign = next(m for m in response.context["moves"] if m["key"] == "assign")
    assert "Assign it to one officer or one agency" in assign["form"].errors["assigned_to"][0]
    response = move(desk, acknowledged, "resolve", resolution="  ")
    assert (
        "Write the resolution"
        in next(m for m in response.context["moves"] if m["key"] == "resolve")["form"].errors["resolution"][0]
    )
    acknowledged.refresh_from_db()
    assert acknowledged.status == S.ACKNOWLEDGED


def test_closing_asks_whether_the_person_accepted(desk, acknowledged, samfya_officer):
    move(desk, acknowledged, "resolve", resolution="Corrected.")
    response = move(desk, acknowledged, "close")
    close = next(m for m in response.context["moves"] if m["key"] == "close")
    assert "Say whether the person accepted" in close["form"].errors["accepted"][0]
    assert move(desk, acknowledged, "close", accepted="no").status_code == 302
    acknowledged.refresh_from_db()
    assert acknowledged.status == S.CLOSED and acknowledged.resolution_accepted is False


def test_a_move_the_state_machine_refuses_shows_the_reason_on_top(desk, received):
    response = move(desk, received, "close", accepted="yes")
    assert response.status_code == 400
    assert "can go to acknowledged, not closed" in response.content.decode()


def test_a_sensitive_grievance_cannot_go_to_an_ordinary_officer(
    client, samfya_officer, designated_officer, other_samfya_officer, household, agency
):
    grievance = record(samfya_officer, household, category="staff_conduct", sensitive=True, description="Bribe.")
    logged_in(client, designated_officer)
    move(client, grievance, "acknowledge")
    page = client.get(page_url(grievance))
    assign = next(m for m in page.context["moves"] if m["key"] == "assign")["form"]
    assert list(assign.fields["assigned_to"].queryset) == [designated_officer]
    assert "assigned_agency" not in assign.fields
    response = move(client, grievance, "assign", assigned_to=other_samfya_officer.pk)
    assert response.status_code == 400
    assign = next(m for m in response.context["moves"] if m["key"] == "assign")["form"]
    assert "assigned_to" in assign.errors  # not a choice: a designated officer only


def test_the_committee_follows_a_grievance_and_works_it_once_escalated_to_it(
    client, samfya_officer, acknowledged, committee_samfya
):
    logged_in(client, committee_samfya)
    assert client.get(page_url(acknowledged)).context["moves"] == []
    assert move(client, acknowledged, "resolve", resolution="x").status_code == 403
    grievance_escalate(acting_user=samfya_officer, grievance=acknowledged, to="committee", reason="A hard case.")
    moves = [m["key"] for m in client.get(page_url(acknowledged)).context["moves"]]
    assert "resolve" in moves
    assert move(client, acknowledged, "resolve", resolution="The committee decided.").status_code == 302


def test_an_attachment_is_added_on_the_page_and_served_only_within_scope(
    desk, client, acknowledged, lunga_officer, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    url = reverse("grievances:attachment-add", args=[acknowledged.number])
    refused = desk.post(url, {"attachment": SimpleUploadedFile("a.exe", b"MZ")})
    assert refused.status_code == 400 and "Attach a PDF" in refused.context["attachment_form"].errors["attachment"][0]
    assert desk.post(url, {"description": "Nothing chosen"}).context["attachment_form"].errors["attachment"]
    desk.post(url, {"attachment": SimpleUploadedFile("card.png", b"\x89PNG card"), "description": "The card"})
    attachment = GrievanceAttachment.objects.get()
    download = reverse("grievances:attachment", args=[acknowledged.number, attachment.pk])
    assert b"".join(desk.get(download).streaming_content).startswith(b"\x89PNG")
    assert logged_in(client, lunga_officer).get(download).status_code == 404
    from spf.models import ExportKind, PersonalDataExport

    served = PersonalDataExport.objects.get()
    assert (served.kind, served.what) == (ExportKind.ATTACHMENT, f"A document of grievance {acknowledged.number}")


# --- the slip ----------------------------------------------------------------------------------


def test_the_slip_waits_for_the_acknowledgement(desk, received):
    response = desk.get(reverse("grievances:slip", args=[received.number]))
    assert response.status_code == 302 and response["Location"] == page_url(received)


def test_the_slip_carries_the_reference_the_deadline_and_what_happens_next(desk, acknowledged):
    url = reverse("grievances:slip", args=[acknowledged.number])
    a4 = desk.get(url)
    text = a4.content.decode()
    assert a4.context["format"] == "a4" and "slip-a4" in text
    assert text.count(acknowledged.number) >= 3 and "<svg" in text
    assert acknowledged.due_date.strftime("%A %-d %B %Y") in text
    assert "What happens next" in text and "Mary Mwansa" in text and "Data correction" in text
    receipt = desk.get(url, {"format": "receipt"})
    assert receipt.context["format"] == "receipt" and "slip-receipt" in receipt.content.decode()
    assert desk.get(reverse("grievances:slip", args=[str(acknowledged.pk)]))["Location"].endswith(
        f"/{acknowledged.number}/slip/"
    )


def test_a_sensitive_grievances_slip_does_not_say_what_it_is_about(client, designated_officer, household):
    grievance = record(designated_officer, household, category="staff_conduct", sensitive=True, description="Abuse.")
    grievance_acknowledge(acting_user=designated_officer, grievance=grievance)
    text = logged_in(client, designated_officer).get(reverse("grievances:slip", args=[grievance.number]))
    text = text.content.decode()
    assert "handled in confidence" in text and "Staff conduct" not in text and "Abuse." not in text


# --- the worklist and the lookup -----------------------------------------------------------------


def test_the_worklist_filters_and_counts(desk, samfya_officer, other_samfya_officer, household, sct):
    data = record(samfya_officer, household)
    appeal = record(samfya_officer, household, category="eligibility", programme=sct, description="Appeal.")
    grievance_acknowledge(acting_user=samfya_officer, grievance=appeal)
    grievance_assign(acting_user=samfya_officer, grievance=appeal, to_user=samfya_officer)
    late = record(samfya_officer, household, category="other", description="Late.")
    Grievance.objects.filter(pk=late.pk).update(due_date=datetime.date(2020, 1, 1))
    listing = desk.get(reverse("grievances:worklist"))
    counts = listing.context["counts"]
    assert (counts.open, counts.overdue, counts.mine) == (3, 1, 1)
    assert counts.by_status[S.RECEIVED] == 2 and counts.by_status[S.ASSIGNED] == 1

    def numbers(**query):
        return [row["grievance"].number for row in desk.get(reverse("grievances:worklist"), query).context["rows"]]

    assert numbers()[0] == late.number  # the earliest deadline first
    assert numbers(overdue="on") == [late.number]
    assert numbers(mine="on") == [appeal.number]
    assert numbers(category="eligibility") == [appeal.number]
    assert numbers(programme="SCT") == [appeal.number]
    assert sorted(numbers(status="received")) == sorted([data.number, late.number])
    assert "Overdue" in desk.get(reverse("grievances:worklist")).content.decode()


def test_a_grievance_opens_by_its_reference_and_404s_outside_scope(desk, client, received, lunga_officer):
    opened = desk.get(reverse("grievances:open"), {"number": received.number.lower()})
    assert opened["Location"] == page_url(received)
    assert desk.get(reverse("grievances:grievance", args=[str(received.pk)]))["Location"] == page_url(received)
    logged_in(client, lunga_officer)
    assert client.get(page_url(received)).status_code == 404
    assert client.get(reverse("grievances:slip", args=[received.number])).status_code == 404
    assert move(client, received, "acknowledge").status_code == 404
    outside = client.get(reverse("grievances:open"), {"number": received.number}, follow=True).content.decode()
    unknown = client.get(reverse("grievances:open"), {"number": "G99999999"}, follow=True).content.decode()
    assert f"No grievance {received.number} in your districts" in outside
    assert "No grievance G99999999 in your districts" in unknown
    assert received.number not in client.get(reverse("grievances:worklist")).content.decode()
    malformed = client.get(reverse("grievances:open"), {"number": "nonsense"}, follow=True).content.decode()
    assert "is not a grievance reference" in malformed


def test_a_sensitive_grievance_is_404_for_an_ordinary_officer_and_not_on_the_household_page(
    client, samfya_officer, other_samfya_officer, designated_officer, household
):
    grievance = record(
        samfya_officer, household, category="staff_conduct", sensitive=True, description="He asked for money."
    )
    household_url = reverse("frontdesk:household", args=[household.pk])
    logged_in(client, other_samfya_officer)
    assert client.get(page_url(grievance)).status_code == 404
    assert grievance.number not in client.get(household_url).content.decode()
    assert grievance.number not in client.get(reverse("grievances:worklist")).content.decode()
    logged_in(client, designated_officer)
    assert client.get(page_url(grievance)).status_code == 200
    assert grievance.number in client.get(household_url).content.decode()
    logged_in(client, samfya_officer)  # who recorded it still follows it
    assert client.get(page_url(grievance)).status_code == 200


def test_another_agencys_officer_gets_404(client, samfya, household, samfya_officer, sct):
    from referrals.tests.makers import make_agency

    other = make_agency("MOE")
    officer = UserFactory(username="officer_moe_g", role=Role.PROGRAMME_OFFICER, agency=other, districts=[samfya])
    grievance = record(samfya_officer, household, programme=sct)
    assert logged_in(client, officer).get(page_url(grievance)).status_code == 404


# --- an appeal upheld through the page ---------------------------------------------------------------


def test_an_appeal_upheld_on_the_page_changes_the_programme_panels_outcome(
    desk, samfya_officer, household, ministry_user, agency, samfya
):
    oap = make_programme(code="OAP", agency=agency, districts=[samfya])
    programme_set_rules(
        acting_user=ministry_user, programme=oap, eligibility_rule="household.members.exists(m, m.age >= 65)"
    )
    eligibility_recompute_household(household_id=household.pk)
    household_url = reverse("frontdesk:household", args=[household.pk])
    before = desk.get(household_url)
    assert [e.programme.code for e in before.context["programme_panel"].not_eligible] == ["OAP"]
    assert "?programme=OAP&amp;category=eligibility" in before.content.decode()  # "Appeal a decision"

    desk.post(
        reverse("grievances:record-household", args=[household.pk]),
        {
            "complainant": household.head_id,
            "category": "eligibility",
            "programme": "OAP",
            "channel": "walk_in",
            "priority": "normal",
            "description": "I am 70: my date of birth was written wrong.",
        },
    )
    appeal = Grievance.objects.get()
    assert appeal.appealed_outcome == EligibilityOutcome.NOT_ELIGIBLE
    move(desk, appeal, "acknowledge")
    page = desk.get(page_url(appeal))
    assert [m["key"] for m in page.context["moves"] if m["key"] in ("uphold", "not_upheld")] == ["uphold", "not_upheld"]
    text = page.content.decode()
    assert "The decision appealed" in text and "v1" in text and "m.age &gt;= 65" in text

    # A date without whose it is: the error names the field.
    refused = move(desk, appeal, "uphold", resolution="Corrected.", date_of_birth="1955-01-01", member="")
    uphold = next(m for m in refused.context["moves"] if m["key"] == "uphold")
    assert refused.status_code == 400 and "Choose the member" in uphold["form"].errors["member"][0]

    response = move(
        desk,
        appeal,
        "uphold",
        resolution="Date of birth corrected from her NRC.",
        member=household.head_id,
        date_of_birth="1955-01-01",
    )
    assert response.status_code == 302, response.content.decode()[:500]
    appeal.refresh_from_db()
    assert appeal.status == S.RESOLVED and appeal.appeal_outcome == "upheld"
    assert appeal.outcome_after == EligibilityOutcome.ELIGIBLE
    after = desk.get(household_url)
    assert [e.programme.code for e in after.context["programme_panel"].eligible] == ["OAP"]
    assert "now eligible" in after.content.decode()
    text = desk.get(page_url(appeal)).content.decode()
    assert "Outcome after the appeal" in text and "Not eligible → Eligible" in text


def test_an_appeal_corrects_a_household_attribute_the_rule_reads(
    desk, samfya_officer, household, ministry_user, agency, samfya
):
    AttributeDefinition.objects.create(entity="household", key="pmt_score", label="PMT score", type="decimal")
    AttributeDefinition.objects.create(entity="household", key="roof", label="Roof", type="text")
    household_update(acting_user=samfya_officer, household=household, values={}, attributes={"pmt_score": "41"})
    sct = make_programme(code="SCT", agency=agency, districts=[samfya])
    programme_set_rules(acting_user=ministry_user, programme=sct, eligibility_rule="household.pmt_score <= 32.0")
    eligibility_recompute_household(household_id=household.pk)
    appeal = record(samfya_officer, household, category="eligibility", programme=sct, description="Scored wrong.")
    grievance_acknowledge(acting_user=samfya_officer, grievance=appeal)
    form = next(m for m in desk.get(page_url(appeal)).context["moves"] if m["key"] == "uphold")["form"]
    assert "attr_pmt_score" in form.fields and "attr_roof" not in form.fields  # only what the rule reads
    bad = move(desk, appeal, "uphold", resolution="Rescored.", attr_pmt_score="lots")
    assert "attr_pmt_score" in next(m for m in bad.context["moves"] if m["key"] == "uphold")["form"].errors
    assert move(desk, appeal, "uphold", resolution="Rescored at a home visit.", attr_pmt_score="28").status_code == 302
    assert EligibilityResult.objects.get(household=household, programme=sct).outcome == EligibilityOutcome.ELIGIBLE


def test_an_appeal_not_upheld_records_why(desk, samfya_officer, household, sct):
    appeal = record(samfya_officer, household, category="eligibility", programme=sct, description="Appeal.")
    grievance_acknowledge(acting_user=samfya_officer, grievance=appeal)
    assert move(desk, appeal, "not_upheld", resolution="The household has a salaried member.").status_code == 302
    appeal.refresh_from_db()
    assert appeal.appeal_outcome == "not_upheld" and appeal.status == S.RESOLVED


# --- a payment not received ----------------------------------------------------------------------------


@pytest.fixture
def paid(household, sct, samfya):
    enrolment = Enrolment.objects.create(
        household=household, programme=sct, district=samfya, status="active", currency="ZMW", amount=Decimal("150")
    )
    cycle = PaymentCycle.objects.create(
        programme=sct,
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
        programme=sct,
        reference="SCT-202611-1",
        amount=Decimal("150.00"),
        currency="ZMW",
        channel="cash",
        pay_point="Samfya boma",
        status=PaymentStatus.PAID,
        paid_at=datetime.datetime(2026, 11, 20, 9, tzinfo=datetime.UTC),
    )


def test_not_received_on_a_paid_payment_raises_it_with_the_provider_and_shows_on_the_cycle(desk, household, paid):
    household_url = reverse("frontdesk:household", args=[household.pk])
    link = f"{reverse('grievances:record-household', args=[household.pk])}?payment={paid.reference}&amp;not_received=1"
    assert link in desk.get(household_url).content.decode()
    form = desk.get(
        reverse("grievances:record-household", args=[household.pk]), {"payment": paid.reference, "not_received": "1"}
    )
    initial = form.context["form"].initial
    assert initial["payment"] == paid.reference and initial["payment_not_received"] is True
    assert initial["category"] == "payment" and "never received it" in initial["description"]
    response = desk.post(
        reverse("grievances:record-household", args=[household.pk]),
        {
            "complainant": household.head_id,
            "category": "payment",
            "programme": "SCT",
            "payment": paid.reference,
            "payment_not_received": "on",
            "channel": "walk_in",
            "priority": "normal",
            "description": initial["description"],
        },
    )
    grievance = Grievance.objects.get()
    assert response["Location"] == page_url(grievance) and grievance.payment == paid
    paid.refresh_from_db()
    assert paid.disputed_at is not None and grievance.number in paid.dispute_note
    page = desk.get(household_url).content.decode()
    assert "Reported not received" in page and link not in page
    cycle_page = desk.get(reverse("payments:cycle", args=[paid.cycle_id])).content.decode()
    disputed = cycle_page[cycle_page.index('id="disputed"') :]
    assert paid.reference in disputed and grievance.number in disputed and "Samfya boma" in disputed


def test_not_received_needs_the_payment(desk, household, paid):
    response = desk.post(
        reverse("grievances:record-household", args=[household.pk]),
        {
            "complainant": household.head_id,
            "category": "payment",
            "payment_not_received": "on",
            "channel": "walk_in",
            "priority": "normal",
            "description": "Never came.",
        },
    )
    assert response.status_code == 400 and "Choose the payment" in response.context["form"].errors["payment"][0]


def test_a_cycle_without_disputes_shows_no_disputes_section(desk, paid):
    assert 'id="disputed"' not in desk.get(reverse("payments:cycle", args=[paid.cycle_id])).content.decode()


# --- an agency's officer, and what the pages cost ------------------------------------------------


def test_an_agencys_officer_works_what_is_assigned_to_the_agency(client, samfya, samfya_officer, acknowledged, agency):
    officer = UserFactory(username="officer_mcdss_g", role=Role.PROGRAMME_OFFICER, agency=agency, districts=[samfya])
    assert logged_in(client, officer).get(page_url(acknowledged)).status_code == 404
    grievance_assign(acting_user=samfya_officer, grievance=acknowledged, to_agency=agency)
    listing = client.get(reverse("grievances:worklist"), {"mine": "on"})
    assert [row["grievance"].pk for row in listing.context["rows"]] == [acknowledged.pk]
    assert "Assigned to me or MCDSS" in listing.content.decode()
    assert move(client, acknowledged, "resolve", resolution="Paid at the next cycle.").status_code == 302


def test_the_worklist_and_the_grievance_page_make_a_bounded_number_of_queries(
    desk, samfya_officer, household, sct, django_assert_max_num_queries
):
    for index in range(12):
        grievance = record(samfya_officer, household, programme=sct, description=f"Complaint {index}")
        grievance_acknowledge(acting_user=samfya_officer, grievance=grievance)
    # Session, user, districts, permissions (2), programmes, counts, the page and its count: not one per row.
    with django_assert_max_num_queries(12):
        assert len(desk.get(reverse("grievances:worklist")).context["rows"]) == 12
    with django_assert_max_num_queries(14):
        assert desk.get(page_url(grievance)).status_code == 200
