"""The Integrated Beneficiary Registry: is this person enrolled, search over enrolments, and
enrolment updates from other systems, which become enrolments (from the programme's own agency)
or referrals (from any other system) here. Every answer valid against the published schema."""

import pytest

from interop.models import Transaction
from interop.services import partner_errors
from payments.models import Enrolment, EnrolmentSource, EnrolmentStatus, ExitReason
from payments.services import enrolment_transition
from referrals.models import Referral, ReferralSource, ReferralStatus

from .dci_schemas import ENROLLED, ENROLLMENT_UPDATES, SYNC_SEARCH, assert_valid
from .makers import envelope, post, search_message, search_request

ENROLLED_URL = "/dci/registry/sync/enrolled"
UPDATES_URL = "/dci/registry/sync/enrollment/updates"
SEARCH_URL = "/dci/ibr/registry/sync/search"


def enrolled(client, token, query, *, sender="ibr.gov.zm", url=ENROLLED_URL, query_type="expression"):
    body = envelope(
        {
            "transaction_id": "t-1",
            "enrolled_criteria": {"query_type": query_type, "response_entity": "Member", "query": query},
        },
        sender_id=sender,
    )
    response = post(client, url, body, token)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert_valid("ibr", ENROLLED, answer)
    (result,) = answer["message"]["enrolled_response"]
    return result


def beneficiary(identifier: str, programme: str, status: str, *, kind="NID", reference_id=None) -> dict:
    """A Beneficiary as the specification's example shapes it: the programme inside the member."""
    item = {
        "@type": "Beneficiary",
        "assistance_unit": "1",
        "member": {
            "member_identifier": [{"identifier_type": kind, "identifier_value": identifier}],
            "demographic_info": {"person": {"identifier": [{"identifier_type": kind, "identifier_value": identifier}]}},
            "programme_identifier": {
                "programme": {"programme_identifier": programme, "programme_name": ""},
                "enrolment_status": status,
            },
        },
    }
    if reference_id:
        item["reference_id"] = reference_id
    return item


def send_updates(client, token, *beneficiaries, sender="mcdss-mis"):
    body = envelope(
        {"transaction_id": "t-9", "enrolled_updates": {"beneficiaries": list(beneficiaries)}},
        sender_id=sender,
        action="notify",
        total_count=len(beneficiaries),
    )
    response = post(client, UPDATES_URL, body, token)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert_valid("ibr", ENROLLMENT_UPDATES, answer)
    return answer["message"]["enrolled_response"]


# --- enrolled -----------------------------------------------------------------------------------


def test_a_person_in_an_enrolled_household_is_enrolled(client, ibr_token, mwansa_in_sct):
    mary = enrolled(
        client,
        ibr_token,
        {
            "person_identifier": {"eq": "111111/11/1"},
            "programme_identifier.program.programme_identifier": {"eq": "SCT"},
        },
    )
    john = enrolled(
        client, ibr_token, {"attribute_name": "person_identifier", "operator": "eq", "attribute_value": "111112/11/1"}
    )

    assert (mary["status"], mary["enrolled_status"]) == ("succ", "yes")
    assert mwansa_in_sct.number in mary["status_reason_message"]
    assert john["enrolled_status"] == "yes"


def test_a_registered_person_not_enrolled_is_not(client, ibr_token, mwansa_in_sct, banda):
    result = enrolled(client, ibr_token, {"UIN": "333333/33/3", "programme_identifier": "SCT"})

    assert (result["status"], result["enrolled_status"]) == ("succ", "no")
    assert result["status_reason_message"] == "Not enrolled in SCT."


def test_another_districts_beneficiary_is_answered_as_unknown(client, ibr_token, tembo_in_sct):
    outside = enrolled(client, ibr_token, {"person_identifier": "444444/44/4"})
    unknown = enrolled(client, ibr_token, {"person_identifier": "999999/99/9"})

    assert outside["enrolled_status"] == unknown["enrolled_status"] == "no"
    assert outside["status_reason_message"] == unknown["status_reason_message"]


def test_an_application_not_yet_approved_is_not_an_enrolment(client, ibr_token, banda, sct, maker):
    from payments.services import enrolment_apply

    enrolment_apply(
        acting_user=maker, household=banda, programme=sct, source=EnrolmentSource.AGENCY, pay_point="Samfya boma"
    )

    assert enrolled(client, ibr_token, {"person_identifier": "333333/33/3"})["enrolled_status"] == "no"


def test_a_programme_the_partner_may_not_ask_about_is_refused(client, ibr_token, mwansa_in_sct):
    result = enrolled(client, ibr_token, {"person_identifier": "111111/11/1", "programme_identifier": "PWAS"})

    assert (result["status"], result["enrolled_status"]) == ("rjct", "no")
    assert "PWAS" in result["status_reason_message"]


def test_an_enrolled_check_must_name_a_person(client, ibr_token, mwansa_in_sct):
    result = enrolled(client, ibr_token, {"programme_identifier": "SCT"})

    assert result["status"] == "rjct"
    assert "name the person" in result["status_reason_message"]


def test_the_ibr_namespace_answers_the_same_check(client, ibr_token, mwansa_in_sct):
    result = enrolled(client, ibr_token, {"person_identifier": "111111/11/1"}, url="/dci/ibr/registry/sync/enrolled")
    assert result["enrolled_status"] == "yes"


# --- search over enrolments ------------------------------------------------------------------


def ibr_search(client, token, *requests, sender="ibr.gov.zm"):
    body = envelope(search_message(*requests), sender_id=sender, total_count=len(requests))
    response = post(client, SEARCH_URL, body, token)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert_valid("ibr", SYNC_SEARCH, answer)
    return answer["message"]["search_response"]


def test_a_beneficiary_is_found_by_national_id_with_the_programme_and_benefit(client, ibr_token, mwansa_in_sct):
    (result,) = ibr_search(client, ibr_token, search_request({"type": "UIN", "value": "111111/11/1"}))

    (record,) = result["data"]["reg_records"]
    assert record["@type"] == "Beneficiary" and record["assistance_unit"] == "household"
    programme = record["member"]["programme_identifier"]
    assert programme["programme"] == {"programme_identifier": "SCT", "programme_name": "Programme SCT"}
    assert programme["enrolment_status"] == "Active"
    assert programme["enrolment_identifier"]["identifier_value"] == mwansa_in_sct.number
    assert programme["benefits"]["benefit_value"] == f"ZMW {mwansa_in_sct.amount:.2f}"
    assert programme["benefits"]["benefit_frequency"] == "Monthly"
    assert record["member"]["demographic_info"]["name"]["given_name"] == "Mary"


def test_enrolments_are_searched_by_programme_and_status_within_the_partners_districts(
    client, ibr_token, mwansa_in_sct, tembo_in_sct
):
    (active,) = ibr_search(
        client,
        ibr_token,
        search_request({"programme_identifier": "SCT", "enrolment_status": "1"}, query_type="expression"),
    )
    (suspended,) = ibr_search(
        client,
        ibr_token,
        search_request({"programme_identifier": "SCT", "enrolment_status": "Suspended"}, query_type="expression"),
    )

    assert [r["group_identifier"][0]["identifier_value"] for r in active["data"]["reg_records"]] == [
        mwansa_in_sct.household.number
    ]
    assert suspended["data"]["reg_records"] == []


def test_enrolments_are_searched_by_the_household_they_serve(client, ibr_token, mwansa_in_sct):
    (poor,) = ibr_search(client, ibr_token, search_request({"poverty_score": {"$lt": 3}}, query_type="expression"))
    (larger,) = ibr_search(client, ibr_token, search_request({"group_size": {"$ge": 3}}, query_type="expression"))

    assert poor["data"]["reg_records"] == []
    assert len(larger["data"]["reg_records"]) == 1


def test_an_agencys_system_is_given_only_its_agencys_programmes(ministry_user, samfya, mcdss, sct, hgsf):
    errors = partner_errors(
        code="x",
        name="X",
        agency=mcdss,
        districts=[samfya],
        programmes=[sct, hgsf],
        can_search_registry=False,
        can_read_enrolments=True,
        can_update_enrolments=False,
        callback_url="",
        pay_point="",
    )
    assert "HGSF" in errors["programmes"][0]


# --- enrolment updates from the programme's own agency ------------------------------------------


def test_an_agencys_system_reporting_a_new_beneficiary_applies_and_waits_for_an_officers_approval(
    client, mcdss_token, mcdss_system, banda, sct
):
    (result,) = send_updates(client, mcdss_token, beneficiary("333333/33/3", "SCT", "Active"))

    enrolment = Enrolment.objects.get(household=banda, programme=sct)
    assert result["status"] == "pdng"
    assert "maker-checker" in result["status_reason_message"] and enrolment.number in result["status_reason_message"]
    assert (enrolment.status, enrolment.source) == (EnrolmentStatus.VERIFIED, EnrolmentSource.AGENCY)
    assert enrolment.pay_point == "Samfya boma"
    assert enrolment.applied_by == enrolment.verified_by == mcdss_system.service_user
    assert set(enrolment.events.values_list("actor", flat=True)) == {mcdss_system.service_user.pk}
    assert Transaction.objects.get().items.get().enrolment == enrolment


def test_after_an_officer_approves_the_next_update_activates_and_later_ones_suspend_and_end(
    client, mcdss_token, banda, sct, checker
):
    send_updates(client, mcdss_token, beneficiary("333333/33/3", "SCT", "Active"))
    enrolment = Enrolment.objects.get(household=banda, programme=sct)
    enrolment_transition(enrolment=enrolment, to_status=EnrolmentStatus.APPROVED, acting_user=checker)

    outcomes = [
        send_updates(client, mcdss_token, beneficiary("333333/33/3", "SCT", status))[0]
        for status in ("Active", "4", "Reinstated", "Deceased")
    ]

    assert [o["status"] for o in outcomes] == ["succ"] * 4
    enrolment.refresh_from_db()
    assert (enrolment.status, enrolment.exit_reason) == (EnrolmentStatus.EXITED, ExitReason.DECEASED)
    moves = list(enrolment.events.values_list("to_status", flat=True))
    assert moves == ["applied", "verified", "approved", "active", "suspended", "active", "exited"]
    assert "Reported Suspended" not in outcomes[1]["status_reason_message"]
    assert enrolment.events.get(to_status="suspended").reason.startswith("Reported 4 by MCDSS beneficiary MIS")


def test_an_update_about_someone_outside_the_partners_districts_is_refused(client, mcdss_token, tembo, sct):
    (result,) = send_updates(client, mcdss_token, beneficiary("444444/44/4", "SCT", "Active"))

    assert result["status"] == "rjct"
    assert "No such person or household" in result["status_reason_message"]
    assert not Enrolment.objects.filter(household=tembo).exists()


@pytest.mark.parametrize(
    "item, words",
    [
        (beneficiary("333333/33/3", "PWAS", "Active"), "PWAS is not among the programmes"),
        (beneficiary("333333/33/3", "SCT", "Happy"), "'Happy' is not an enrolment status"),
        ({"@type": "Beneficiary", "member": {}}, "programme_identifier: required"),
        ("not an object", "must be an object"),
    ],
)
def test_an_update_the_registry_cannot_apply_is_refused_saying_why(client, mcdss_token, banda, sct, item, words):
    (result,) = send_updates(client, mcdss_token, item)

    assert result["status"] == "rjct"
    assert result["status_reason_message"].startswith("enrolled_updates.beneficiaries[0]")
    assert words in result["status_reason_message"]


def test_each_update_of_a_batch_stands_on_its_own(client, mcdss_token, banda, mwansa, sct):
    results = send_updates(
        client,
        mcdss_token,
        beneficiary("333333/33/3", "SCT", "Active", reference_id="b-1"),
        beneficiary("333333/33/3", "SCT", "Nonsense", reference_id="b-2"),
        beneficiary(mwansa.number, "SCT", "Active", kind="HHID"),
    )

    assert [(r["reference_id"], r["status"]) for r in results] == [("b-1", "pdng"), ("b-2", "rjct"), ("3", "pdng")]
    assert Enrolment.objects.filter(programme=sct).count() == 2


def test_a_repeated_update_message_is_not_applied_twice(client, mcdss_token, banda, sct):
    body = envelope(
        {"transaction_id": "t", "enrolled_updates": {"beneficiaries": [beneficiary("333333/33/3", "SCT", "Active")]}},
        sender_id="mcdss-mis",
        action="notify",
    )
    post(client, UPDATES_URL, body, mcdss_token)

    again = post(client, UPDATES_URL, body, mcdss_token).json()

    assert_valid("ibr", ENROLLMENT_UPDATES, again)
    assert again["header"]["status_reason_code"] == "rjct.message_id.duplicate"
    assert Enrolment.objects.filter(household=banda).count() == 1
    assert Enrolment.objects.get(household=banda).events.count() == 2


# --- enrolment updates from any other system: referrals ---------------------------------------------


def test_another_system_reporting_a_beneficiary_refers_the_household_to_the_programmes_agency(
    client, ibr_token, national_ibr, banda, sct
):
    (first,) = send_updates(client, ibr_token, beneficiary("333333/33/3", "SCT", "Active"), sender="ibr.gov.zm")
    (second,) = send_updates(client, ibr_token, beneficiary("333333/33/3", "SCT", "Active"), sender="ibr.gov.zm")

    referral = Referral.objects.get(household=banda, programme=sct)
    # Suggested to the window, as automatic referrals are: it confirms and sends.
    assert (referral.status, referral.source, referral.agency.code) == (
        ReferralStatus.DRAFT,
        ReferralSource.AGENCY,
        "MCDSS",
    )
    assert "National Integrated Beneficiary Registry" in referral.source_detail
    assert "reports this household as Active" in referral.reason
    assert first["status"] == "pdng" and referral.number in first["status_reason_message"]
    assert "the window of Samfya confirms and sends it" in first["status_reason_message"]
    assert second["status"] == "succ" and "Already referred" in second["status_reason_message"]
    assert Transaction.objects.order_by("received_at").first().items.get().referral == referral
    assert not Enrolment.objects.filter(household=banda).exists()


def test_another_system_cannot_suspend_or_end_an_agencys_enrolment(client, ibr_token, mwansa_in_sct):
    (result,) = send_updates(client, ibr_token, beneficiary("111111/11/1", "SCT", "Suspended"), sender="ibr.gov.zm")

    assert result["status"] == "rjct" and "Only MCDSS changes enrolments" in result["status_reason_message"]
    mwansa_in_sct.refresh_from_db()
    assert mwansa_in_sct.status == EnrolmentStatus.ACTIVE


def test_reporting_someone_already_enrolled_here_changes_nothing(client, ibr_token, mwansa_in_sct):
    (result,) = send_updates(client, ibr_token, beneficiary("111111/11/1", "SCT", "Active"), sender="ibr.gov.zm")

    assert result["status"] == "succ" and mwansa_in_sct.number in result["status_reason_message"]
    assert not Referral.objects.exists()
