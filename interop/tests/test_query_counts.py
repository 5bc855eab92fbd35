"""An answer costs the same few queries whatever the number of records in its page: households
come with their members, members with their household, enrolments with their history, in bulk."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from .makers import envelope, person, post, register, search_message, search_request


def queries_for(client, token, url, request, *, sender):
    body = envelope(search_message(request), sender_id=sender)
    with CaptureQueriesContext(connection) as captured:
        answer = post(client, url, body, token).json()
    (result,) = answer["message"]["search_response"]
    assert result["status"] == "succ", result
    return len(captured), len(result["data"]["reg_records"])


def more_households(officer, village, count):
    for n in range(count):
        register(
            officer,
            village,
            [
                person(f"Ruth{n}", "Zulu", "F", datetime.date(1980, 1, 1 + n)),
                person(f"Paul{n}", "Zulu", "M", datetime.date(2010, 1, 1 + n), relationship="child"),
            ],
            pmt="1.5",
        )


@pytest.mark.parametrize("entity", ["Group", "Member"])
def test_a_search_answers_in_the_same_queries_for_one_record_or_many(
    client, nsr_token, registry, samfya_officer, samfya_village, entity
):
    query = {"poverty_score": {"$lt": 2.5}}
    request = search_request(query, query_type="expression", entity=entity, pagination={"page_size": 50})
    # The token's first use of the day writes last_used_at: measure after it.
    queries_for(client, nsr_token, "/dci/registry/sync/search", request, sender="nsr.gov.zm")
    few, found_few = queries_for(client, nsr_token, "/dci/registry/sync/search", request, sender="nsr.gov.zm")

    more_households(samfya_officer, samfya_village, 5)
    many, found_many = queries_for(client, nsr_token, "/dci/registry/sync/search", request, sender="nsr.gov.zm")

    assert found_many > found_few
    assert many == few


def test_an_enrolment_search_answers_in_the_same_queries_for_one_record_or_many(
    client, ibr_token, mwansa_in_sct, banda, phiri, sct, maker, checker
):
    from payments.tests.makers import enrol_active

    request = search_request({"programme_identifier": "SCT"}, query_type="expression")
    queries_for(client, ibr_token, "/dci/ibr/registry/sync/search", request, sender="ibr.gov.zm")
    few, found_few = queries_for(client, ibr_token, "/dci/ibr/registry/sync/search", request, sender="ibr.gov.zm")

    for household in (banda, phiri):
        enrol_active(household=household, programme=sct, maker=maker, checker=checker)
    many, found_many = queries_for(client, ibr_token, "/dci/ibr/registry/sync/search", request, sender="ibr.gov.zm")

    assert (found_few, found_many) == (1, 3)
    assert many == few
