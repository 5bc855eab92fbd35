"""The Social Registry's synchronous search: identifiers, predicates and expressions over the
registry, Group and Member records, sorting and pagination, each request of a batch answered on
its own, and every answer valid against the published schema."""

import pytest

from interop.models import Status, Transaction

from .dci_schemas import HTTP_ERROR, SYNC_SEARCH, assert_valid
from .makers import envelope, post, search_message, search_request

URL = "/dci/registry/sync/search"


def search(client, token, *requests, **header):
    body = envelope(search_message(*requests), sender_id="nsr.gov.zm", total_count=len(requests), **header)
    response = post(client, URL, body, token)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert_valid("social", SYNC_SEARCH, answer)
    return answer


def only_result(answer) -> dict:
    (result,) = answer["message"]["search_response"]
    return result


def numbers(result) -> list[str]:
    return [record["group_identifier"][0]["identifier_value"] for record in result["data"]["reg_records"]]


def names(result) -> list[str]:
    return [record["demographic_info"]["name"]["given_name"] for record in result["data"]["reg_records"]]


def test_a_person_is_found_by_national_id_as_a_member_record(client, nsr_token, registry):
    answer = search(client, nsr_token, search_request({"type": "UIN", "value": "111111/11/1"}, entity="Member"))

    assert answer["header"]["status"] == "succ"
    assert answer["header"]["action"] == "on-search"
    assert answer["header"]["receiver_id"] == "nsr.gov.zm"
    result = only_result(answer)
    assert result["status"] == "succ"
    assert result["pagination"] == {"page_size": 50, "page_number": 1, "total_count": 1}
    (record,) = result["data"]["reg_records"]
    person = record["demographic_info"]
    assert person["name"]["given_name"] == "Mary" and person["name"]["surname"] == "Mwansa"
    assert person["sex"] == "female" and person["birth_date"] == "1970-03-04"
    assert {"@type": "Identifier", "identifier_type": "NID", "identifier_value": "111111/11/1"} in person["identifier"]
    assert person["phone_number"] == ["0977111111"]
    assert record["relationship_head"] == "self"
    assert record["household_identifier"] == registry["mwansa"].number


def test_a_household_is_found_by_its_number_as_a_group_with_its_members(client, nsr_token, registry):
    mwansa = registry["mwansa"]
    result = only_result(search(client, nsr_token, search_request({"type": "HHID", "value": mwansa.number})))

    (group,) = result["data"]["reg_records"]
    assert group["@type"] == "Group"
    assert group["group_identifier"] == [
        {"@type": "Identifier", "identifier_type": "HHID", "identifier_value": mwansa.number}
    ]
    assert group["group_size"] == 3
    assert group["poverty_score"] == 3.5
    assert group["group_head_info"]["demographic_info"]["name"]["given_name"] == "Mary"
    assert [m["demographic_info"]["name"]["given_name"] for m in group["member_list"]] == ["Mary", "John", "Bupe"]
    assert "Plot 12, near the clinic" in group["place"]["address"]


def test_a_partner_scoped_to_samfya_never_receives_a_lunga_household(client, nsr_token, registry):
    by_id = only_result(search(client, nsr_token, search_request({"type": "NID", "value": "444444/44/4"})))
    by_number = only_result(
        search(client, nsr_token, search_request({"type": "HHID", "value": registry["tembo"].number}))
    )
    poorest = only_result(
        search(
            client,
            nsr_token,
            search_request(
                [{"expression1": {"attribute_name": "poverty_score", "operator": "lt", "attribute_value": 5}}],
                query_type="predicate",
                entity="Group",
            ),
        )
    )

    assert by_id["status"] == by_number["status"] == "succ"
    assert by_id["data"]["reg_records"] == [] and by_number["data"]["reg_records"] == []
    assert registry["tembo"].number not in numbers(poorest)
    assert sorted(numbers(poorest)) == sorted([registry["mwansa"].number, registry["phiri"].number])


def test_predicates_on_age_and_sex_find_young_men_in_the_district(client, nsr_token, registry):
    query = [
        {
            "seq_num": 1,
            "expression1": {"attribute_name": "age", "operator": "lt", "attribute_value": "25"},
            "condition": "and",
            "expression2": {"attribute_name": "gender", "operator": "eq", "attribute_value": "m"},
        }
    ]
    result = only_result(
        search(
            client,
            nsr_token,
            search_request(query, query_type="predicate", sort=[{"attribute_name": "age", "sort_order": "desc"}]),
        )
    )

    assert names(result) == ["John", "Moses"]


def test_an_expression_on_poverty_score_finds_households_sorted_poorest_first(client, nsr_token, registry):
    query = {
        "type": "ns:org:QueryType:NoSql",
        "value": {"expression": {"collection": "Group", "query": {"$and": [{"poverty_score": {"$lt": 5}}]}}},
    }
    result = only_result(
        search(
            client,
            nsr_token,
            search_request(
                query,
                query_type="expression",
                entity="Group",
                sort=[{"attribute_name": "poverty_score", "sort_order": "asc"}],
            ),
        )
    )

    assert numbers(result) == [registry["phiri"].number, registry["mwansa"].number]
    assert [g["poverty_score"] for g in result["data"]["reg_records"]] == [2.0, 3.5]


def test_conditions_on_members_of_a_group_hold_for_one_and_the_same_member(client, nsr_token, registry):
    # A woman who is widowed: the Mwansa household has a woman and no widow; the Phiri one a widow who is a woman.
    query = {
        "type": "ns:org:QueryType:NoSql",
        "value": {
            "expression": {
                "collection": "Group",
                "query": {
                    "$and": [{"demographic_info.person.sex": {"$eq": "female"}}, {"marital_status": {"$eq": "W"}}]
                },
            }
        },
    }
    result = only_result(search(client, nsr_token, search_request(query, query_type="expression", entity="Group")))

    assert numbers(result) == [registry["phiri"].number]


def test_or_and_not_combine_conditions(client, nsr_token, registry):
    query = {
        "$or": [{"group_size": {"$gte": 3}}, {"poverty_score": {"$gt": 7}}],
        "$not": {"district": "LUN"},
    }
    result = only_result(search(client, nsr_token, search_request(query, query_type="expression", entity="Group")))

    assert sorted(numbers(result)) == sorted([registry["mwansa"].number, registry["banda"].number])


def test_pagination_gives_the_page_asked_for_and_the_total(client, nsr_token, registry):
    query = [{"expression1": {"attribute_name": "sex", "operator": "eq", "attribute_value": "female"}}]
    pages = [
        only_result(
            search(
                client,
                nsr_token,
                search_request(
                    query,
                    query_type="predicate",
                    sort=[{"attribute_name": "birth_date", "sort_order": "asc"}],
                    pagination={"page_size": 2, "page_number": number},
                ),
            )
        )
        for number in (1, 2, 3)
    ]

    assert [names(page) for page in pages] == [["Grace", "Mary"], ["Bupe"], []]
    assert {page["pagination"]["total_count"] for page in pages} == {3}
    assert pages[1]["pagination"] == {"page_size": 2, "page_number": 2, "total_count": 3}


@pytest.mark.parametrize(
    "criteria, code, words",
    [
        ({"pagination": {"page_size": 0}}, "rjct.pagination.invalid", "pagination.page_size"),
        ({"pagination": {"page_size": 10, "page_number": "two"}}, "rjct.pagination.invalid", "pagination.page_number"),
        ({"pagination": {"page_size": 5000}}, "rjct.pagination.invalid", "at most 200"),
        ({"sort": [{"attribute_name": "shoe_size", "sort_order": "asc"}]}, "rjct.sort.invalid", "shoe_size"),
        ({"sort": [{"attribute_name": "age", "sort_order": "upwards"}]}, "rjct.sort.invalid", "sort[0].sort_order"),
        ({"query_type": "sql"}, "rjct.search_criteria.invalid", "query_type"),
        ({"reg_event_type": "BIRTH"}, "rjct.search_criteria.invalid", "reg_event_type"),
        ({"response_entity": "Vehicle"}, "rjct.search_criteria.invalid", "response_entity"),
    ],
)
def test_a_bad_request_is_rejected_with_its_code_naming_the_field(client, nsr_token, registry, criteria, code, words):
    request = search_request({"type": "UIN", "value": "111111/11/1"})
    request["search_criteria"].update(criteria)

    result = only_result(search(client, nsr_token, request))

    assert result["status"] == "rjct"
    assert result["status_reason_code"] == code
    assert words in result["status_reason_message"]
    assert "data" not in result


@pytest.mark.parametrize(
    "query, words",
    [
        ([{"expression1": {"attribute_name": "shoe_size", "operator": "eq", "attribute_value": 9}}], "'shoe_size'"),
        (
            [{"expression1": {"attribute_name": "gender", "operator": "lt", "attribute_value": "m"}}],
            "'lt' compares numbers",
        ),
        ([{"expression1": {"attribute_name": "age", "operator": "eq", "attribute_value": "old"}}], "'old' is not one"),
        ([{"expression1": {"attribute_name": "age", "operator": "like", "attribute_value": 3}}], "operator"),
        ({"type": "BRN", "value": "1234"}, "identifier type 'BRN'"),
        ({"$or": [{"UIN": "111111/11/1"}, {"age": {"$gt": 60}}]}, "only be combined with other conditions by 'and'"),
        ({"$where": "1 == 1"}, "unknown operator"),
    ],
)
def test_criteria_the_registry_cannot_read_are_rejected_saying_where(client, nsr_token, registry, query, words):
    query_type = "idtype-value" if isinstance(query, dict) and "type" in query else "expression"
    result = only_result(search(client, nsr_token, search_request(query, query_type=query_type)))

    assert (result["status"], result["status_reason_code"]) == ("rjct", "rjct.search_criteria.invalid")
    assert words in result["status_reason_message"]
    assert result["status_reason_message"].startswith("search_request[0].search_criteria.query")


def test_each_request_of_a_batch_is_answered_on_its_own(client, nsr_token, registry):
    answer = search(
        client,
        nsr_token,
        search_request({"type": "UIN", "value": "111111/11/1"}, reference_id="a"),
        search_request({"type": "UIN", "value": "333333/33/3"}, reference_id="b", pagination={"page_size": -1}),
        search_request({"type": "UIN", "value": "222222/22/2"}, reference_id="a"),
    )

    results = answer["message"]["search_response"]
    assert [(r["reference_id"], r["status"], r.get("status_reason_code")) for r in results] == [
        ("a", "succ", None),
        ("b", "rjct", "rjct.pagination.invalid"),
        ("a", "rjct", "rjct.reference_id.duplicate"),
    ]
    assert answer["header"]["total_count"] == 3 and answer["header"]["completed_count"] == 3
    transaction = Transaction.objects.get()
    assert list(transaction.items.values_list("reference_id", "status")) == [
        ("a", "succ"),
        ("b", "rjct"),
        ("a", "rjct"),
    ]
    assert transaction.record_count == 1


def test_a_search_matching_too_many_records_is_refused(client, nsr_token, registry, monkeypatch):
    monkeypatch.setattr("interop.dci.search.MAX_MATCHES", 2)
    query = [{"expression1": {"attribute_name": "age", "operator": "ge", "attribute_value": 0}}]

    result = only_result(search(client, nsr_token, search_request(query, query_type="predicate")))

    assert result["status_reason_code"] == "rjct.search.too_many_records_found"
    assert "narrow the query" in result["status_reason_message"]


def test_a_repeated_message_id_is_rejected_not_answered_twice(client, nsr_token, registry):
    body = envelope(search_message(search_request({"type": "UIN", "value": "111111/11/1"})), sender_id="nsr.gov.zm")
    first = post(client, URL, body, nsr_token).json()

    second = post(client, URL, body, nsr_token)

    assert second.status_code == 200
    repeat = second.json()
    assert_valid("social", SYNC_SEARCH, repeat)
    assert repeat["header"]["status"] == "rjct"
    assert repeat["header"]["status_reason_code"] == "rjct.message_id.duplicate"
    assert first["message"]["correlation_id"] in repeat["header"]["status_reason_message"]
    assert "message" not in repeat
    assert Transaction.objects.count() == 1


@pytest.mark.parametrize(
    "header, code",
    [
        ({"version": "2.0.0"}, "rjct.version.invalid"),
        ({"action": "subscribe"}, "rjct.action.invalid"),
        ({"message_ts": "yesterday"}, "rjct.message_ts.invalid"),
        ({"message_ts": "2100-01-01T00:00:00+00:00"}, "rjct.message_ts.invalid"),
        ({"total_count": 2}, "rjct.total_count.invalid"),
    ],
)
def test_a_header_the_registry_refuses_is_answered_with_its_reason_code(client, nsr_token, registry, header, code):
    body = envelope(search_message(search_request({"type": "UIN", "value": "111111/11/1"})), sender_id="nsr.gov.zm")
    body["header"].update(header)

    response = post(client, URL, body, nsr_token)

    answer = response.json()
    assert_valid("social", SYNC_SEARCH, answer)
    assert (answer["header"]["status"], answer["header"]["status_reason_code"]) == ("rjct", code)
    assert Transaction.objects.get().status == Status.REJECTED


def test_too_many_requests_in_one_message_are_refused(client, nsr_token, registry):
    requests = [search_request({"type": "UIN", "value": "111111/11/1"}, reference_id=str(i)) for i in range(11)]
    body = envelope(search_message(*requests), sender_id="nsr.gov.zm", total_count=11)

    answer = post(client, URL, body, nsr_token).json()

    assert answer["header"]["status_reason_code"] == "rjct.total_count.limit_exceeded"


@pytest.mark.parametrize(
    "body, words",
    [
        (b"{not json", "not JSON"),
        (b"[]", "must be an object"),
        (b'{"header": {}}', "message: required"),
        (b'{"message": {}, "header": {"message_ts": "2026-01-01T00:00:00Z", "action": "search"}}', "header.message_id"),
    ],
)
def test_a_body_that_is_not_an_envelope_is_a_transport_error(client, nsr_token, body, words):
    response = post(client, URL, body, nsr_token)

    assert response.status_code == 400
    assert_valid("social", HTTP_ERROR, response.json())
    (error,) = response.json()["errors"]
    assert error["code"] == "err.request.bad" and words in error["message"]
    assert Transaction.objects.count() == 0


def test_a_message_without_its_search_requests_names_the_field(client, nsr_token):
    body = envelope({"transaction_id": "t"}, sender_id="nsr.gov.zm")

    response = post(client, URL, body, nsr_token)

    assert response.status_code == 400
    assert response.json()["errors"][0]["message"].startswith("message.search_request: required")


def test_the_answer_is_signed_by_the_registry(client, nsr_token, registry):
    from interop.dci.config import identity
    from interop.dci.signatures import check_signature, parse_signature

    answer = search(client, nsr_token, search_request({"type": "UIN", "value": "111111/11/1"}))

    parsed = parse_signature(answer["signature"])
    assert (parsed.sender_id, parsed.key_id) == (identity().sender_id, identity().key_id)
    check_signature(
        parsed, header=answer["header"], message=answer["message"], public_key=identity().public_key, now=parsed.created
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_copies_of_a_message_arriving_at_once_are_answered_once(nsr_token, registry):
    import threading

    from django.db import connection
    from django.test import Client

    body = envelope(search_message(search_request({"type": "UIN", "value": "111111/11/1"})), sender_id="nsr.gov.zm")
    start = threading.Barrier(2)
    answers = []

    def send():
        try:
            start.wait()
            answers.append(post(Client(), URL, body, nsr_token).json())
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(a["header"]["status"] for a in answers) == ["rjct", "succ"]
    (refused,) = [a for a in answers if a["header"]["status"] == "rjct"]
    assert refused["header"]["status_reason_code"] == "rjct.message_id.duplicate"
    assert Transaction.objects.count() == 1


def test_a_message_too_large_is_refused_before_it_is_read(client, nsr_token):
    response = client.post(
        URL,
        data=b"{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {nsr_token}",
        CONTENT_LENGTH=str(6 * 1024 * 1024),
    )

    assert response.status_code == 400
    assert_valid("social", HTTP_ERROR, response.json())
    assert "larger than 5 MB" in response.json()["errors"][0]["message"]


def test_an_identifier_finds_a_person_who_died_and_a_predicate_does_not(client, nsr_token, registry, samfya_officer):
    import datetime

    from registry.services import member_record_death

    grace = registry["phiri"].members.get(national_id="222222/22/2")
    member_record_death(acting_user=samfya_officer, member=grace, date_of_death=datetime.date(2026, 1, 5))

    by_id = only_result(search(client, nsr_token, search_request({"type": "NID", "value": "222222/22/2"})))
    widows = only_result(
        search(client, nsr_token, search_request({"marital_status": "W"}, query_type="expression", entity="Member"))
    )

    (record,) = by_id["data"]["reg_records"]
    assert record["member_status"] == "deceased" and record["demographic_info"]["death_date"] == "2026-01-05"
    assert widows["data"]["reg_records"] == []
