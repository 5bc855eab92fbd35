"""The specification's own sample requests, replayed against this registry.

Each sample is sent as published, except what cannot be sent as is (see
docs/interoperability.md, "The samples"):

- every sample carries the same message_id: each replay gets its own, or all
  but the first would be refused as repeats;
- sender_id and receiver_id name the sample's systems (SP-System, SR, IBR,
  crvs): they become the test partner's code and this registry's id;
- the IBR enrolment-update sample says action "register" where its endpoint's
  schema says "notify".

The samples' quirks the README lists (reg_event_type SEARCH, total_count "1",
locale EN/GB) are sent unchanged: the registry reads them. Every answer is
validated against the published schema, and checked against the registry's
households: the samples' identifiers are nobody's here, so each identifier
sample is replayed a second time with a person of the test registry.
"""

import copy
import json
import uuid

import pytest

from interop.dci.config import identity
from interop.models import Transaction

from .dci_schemas import ENROLLED, ENROLLMENT_UPDATES, HTTP_ERROR, REFERENCE, SYNC_SEARCH, assert_valid
from .makers import post

SAMPLES = REFERENCE / "samples"


def sample(api: str, name: str) -> dict:
    with open(SAMPLES / api / f"{name}.json", encoding="utf-8") as handle:
        return json.load(handle)


def adapted(body: dict, sender_id: str, *, action: str | None = None) -> dict:
    body = copy.deepcopy(body)
    header = body["header"]
    header["message_id"] = str(uuid.uuid4())
    header["sender_id"] = sender_id
    header["receiver_id"] = identity().sender_id
    if action:
        header["action"] = action
    return body


def replay(client, token, url, body, *, api="social", shape=SYNC_SEARCH):
    response = post(client, url, body, token)
    assert response.status_code == 200, response.content
    answer = response.json()
    assert_valid(api, shape, answer)
    assert answer["header"]["status"] == "succ", answer["header"]
    return answer


def records(answer) -> list[dict]:
    (result,) = answer["message"]["search_response"]
    assert result["status"] == "succ", result
    return result["data"]["reg_records"]


def test_the_sample_requests_carry_the_quirks_the_readme_lists():
    request = sample("social", "processflow1-1req")
    assert request["header"]["total_count"] == "1"
    assert request["message"]["search_request"][0]["search_criteria"]["reg_event_type"] == "SEARCH"
    assert request["message"]["search_request"][0]["locale"] == "EN/GB"
    assert sample("ibr", "processflow1req")["header"]["action"] == "register"


# --- the Social Registry ------------------------------------------------------------------------


def test_process_flow_1_1_search_by_poverty_score(client, nsr_token, registry):
    answer = replay(
        client, nsr_token, "/dci/registry/sync/search", adapted(sample("social", "processflow1-1req"), "nsr.gov.zm")
    )

    groups = records(answer)
    assert [g["group_identifier"][0]["identifier_value"] for g in groups] == [
        registry["phiri"].number,
        registry["mwansa"].number,
    ]
    assert all(g["@type"] == "Group" and g["poverty_score"] < 5 for g in groups)


def test_process_flow_1_2_search_by_group_size(client, nsr_token, registry):
    answer = replay(
        client, nsr_token, "/dci/registry/sync/search", adapted(sample("social", "processflow1-2req"), "nsr.gov.zm")
    )

    assert [g["group_size"] for g in records(answer)] == [1, 2, 3]


def test_process_flow_1_3_search_for_female_widows(client, nsr_token, registry):
    answer = replay(
        client, nsr_token, "/dci/registry/sync/search", adapted(sample("social", "processflow1-3req"), "nsr.gov.zm")
    )

    (widow,) = records(answer)
    assert widow["@type"] == "Member"
    assert widow["demographic_info"]["name"]["given_name"] == "Grace"
    assert {"marital_status": "W"} in widow["additional_attributes"]


def test_process_flow_2_search_by_identifier(client, nsr_token, registry):
    body = adapted(sample("social", "processflow2req"), "nsr.gov.zm")
    assert records(replay(client, nsr_token, "/dci/registry/sync/search", body)) == []

    body = adapted(body, "nsr.gov.zm")
    body["message"]["search_request"][0]["search_criteria"]["query"][0]["expression1"]["attribute_value"] = (
        "111111/11/1"
    )
    (person,) = records(replay(client, nsr_token, "/dci/registry/sync/search", body))
    assert person["demographic_info"]["name"]["given_name"] == "Mary"


def test_process_flow_3a_search_young_poor_men(client, nsr_token, registry):
    answer = replay(
        client, nsr_token, "/dci/registry/sync/search", adapted(sample("social", "processflow3areq"), "nsr.gov.zm")
    )

    (person,) = records(answer)
    assert person["demographic_info"]["name"]["given_name"] == "Moses"


def test_process_flow_4_is_refused_for_ordering_a_text(client, nsr_token, registry):
    # Its second expression is gender "lt" "m": texts are compared with eq, ne or in only.
    answer = replay(
        client, nsr_token, "/dci/registry/sync/search", adapted(sample("social", "processflow4req"), "nsr.gov.zm")
    )

    (result,) = answer["message"]["search_response"]
    assert (result["status"], result["status_reason_code"]) == ("rjct", "rjct.search_criteria.invalid")
    assert (
        "expression2" in result["status_reason_message"] and "'lt' compares numbers" in result["status_reason_message"]
    )


# --- the Integrated Beneficiary Registry --------------------------------------------------------


def test_ibr_process_flow_1_enrolment_updates(client, mcdss_token, mcdss_system, sct, banda):
    body = adapted(sample("ibr", "processflow1req"), "mcdss-mis", action="notify")
    (unknown,) = replay(
        client, mcdss_token, "/dci/registry/sync/enrollment/updates", body, api="ibr", shape=ENROLLMENT_UPDATES
    )["message"]["enrolled_response"]
    assert unknown["status"] == "rjct" and "DCI001 is not among the programmes" in unknown["status_reason_message"]

    body = adapted(body, "mcdss-mis")
    member = body["message"]["receipt_information"]["beneficiaries"][0]["member"]
    member["member_identifier"][0]["identifier_value"] = "333333/33/3"
    member["programme_identifier"]["programme"]["programme_identifier"] = "SCT"
    (applied,) = replay(
        client, mcdss_token, "/dci/registry/sync/enrollment/updates", body, api="ibr", shape=ENROLLMENT_UPDATES
    )["message"]["enrolled_response"]
    assert applied["status"] == "pdng" and "maker-checker" in applied["status_reason_message"]


def test_ibr_process_flow_1_as_published_is_refused_for_its_action(client, mcdss_token, mcdss_system):
    body = adapted(sample("ibr", "processflow1req"), "mcdss-mis")

    answer = post(client, "/dci/registry/sync/enrollment/updates", body, mcdss_token).json()

    assert_valid("ibr", ENROLLMENT_UPDATES, answer)
    assert answer["header"]["status_reason_code"] == "rjct.action.invalid"


def test_ibr_process_flow_2_is_this_person_enrolled(client, ibr_token, mwansa_in_sct):
    body = adapted(sample("ibr", "processflow2req"), "ibr.gov.zm")
    (result,) = replay(client, ibr_token, "/dci/registry/sync/enrolled", body, api="ibr", shape=ENROLLED)["message"][
        "enrolled_response"
    ]
    assert result["enrolled_status"] == "no"

    body = adapted(body, "ibr.gov.zm")
    body["message"]["enrolled_criteria"]["query"]["attribute_value"] = "111111/11/1"
    (result,) = replay(client, ibr_token, "/dci/registry/sync/enrolled", body, api="ibr", shape=ENROLLED)["message"][
        "enrolled_response"
    ]
    assert result["enrolled_status"] == "yes"


@pytest.mark.parametrize("name", ["processflow3areq", "processflow4req"])
def test_ibr_process_flows_3a_and_4_search_enrolments_by_identifier(client, ibr_token, mwansa_in_sct, name):
    body = adapted(sample("ibr", name), "ibr.gov.zm")
    assert records(replay(client, ibr_token, "/dci/ibr/registry/sync/search", body, api="ibr")) == []

    body = adapted(body, "ibr.gov.zm")
    body["message"]["search_request"][0]["search_criteria"]["query"]["value"] = "111111/11/1"
    (beneficiary,) = records(replay(client, ibr_token, "/dci/ibr/registry/sync/search", body, api="ibr"))
    assert (
        beneficiary["member"]["programme_identifier"]["enrolment_identifier"]["identifier_value"]
        == mwansa_in_sct.number
    )


@pytest.mark.parametrize(
    "name", ["processflow3breq", "processflow3creq", "processflow3dreq", "processflow3req", "processflow5req"]
)
def test_the_empty_ibr_samples_are_refused_as_not_envelopes(client, ibr_token, national_ibr, name):
    # These samples are placeholders: {"signature": "", "headers": "", "message": ""}.
    response = post(client, "/dci/ibr/registry/sync/search", sample("ibr", name), ibr_token)

    assert response.status_code == 400
    assert_valid("ibr", HTTP_ERROR, response.json())
    assert response.json()["errors"][0]["message"] == "header: required, an object."
    assert Transaction.objects.count() == 0
