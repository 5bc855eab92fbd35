"""Who may talk to the DCI endpoints: a registered partner's bearer token, its permissions,
its signature when it has a key, and its own sender_id. Refusals use the specification's
HttpErrorResponse shape with its error codes, never the project's /api/v1/ error shape."""

import datetime

import pytest
from django.utils import timezone

from interop.models import PartnerToken, Transaction
from interop.services import partner_key_revoke, partner_token_revoke, partner_update

from .dci_schemas import HTTP_ERROR, SYNC_SEARCH, assert_valid
from .makers import PARTNER_SEED, add_key, envelope, post, search_message, search_request, sign

URL = "/dci/registry/sync/search"


def body(sender_id="nsr.gov.zm", **header):
    return envelope(
        search_message(search_request({"type": "UIN", "value": "111111/11/1"})), sender_id=sender_id, **header
    )


def refused(response, status: int, code: str) -> str:
    assert response.status_code == status, response.content
    answer = response.json()
    assert_valid("social", HTTP_ERROR, answer)
    assert "error" not in answer, "the DCI endpoints never answer in the /api/v1/ error shape"
    (error,) = answer["errors"]
    assert error["code"] == code
    return error["message"]


def test_without_a_token_the_request_is_unauthorized(client, nsr):
    message = refused(post(client, URL, body(), None), 401, "err.request.unauthorized")
    assert "Authorization: Bearer" in message


@pytest.mark.parametrize("authorization", ["Token abc", "Bearer", "Bearer dci_not-a-real-token", "Basic dXNlcjpwYXNz"])
def test_a_wrong_or_unknown_token_is_unauthorized(client, nsr, nsr_token, authorization):
    response = client.post(URL, data=body(), content_type="application/json", HTTP_AUTHORIZATION=authorization)
    refused(response, 401, "err.request.unauthorized")
    assert Transaction.objects.count() == 0


def test_a_revoked_token_is_refused_from_the_next_request(client, nsr, nsr_token, ministry_user, mwansa):
    assert post(client, URL, body(), nsr_token).status_code == 200
    partner_token_revoke(acting_user=ministry_user, token=PartnerToken.objects.get(partner=nsr))

    refused(post(client, URL, body(), nsr_token), 401, "err.request.unauthorized")


def test_an_expired_token_is_refused(client, nsr, nsr_token):
    PartnerToken.objects.filter(partner=nsr).update(expires_at=timezone.now() - datetime.timedelta(minutes=1))

    refused(post(client, URL, body(), nsr_token), 401, "err.request.unauthorized")


def test_a_token_is_kept_only_as_its_hash_and_its_use_is_recorded(client, nsr, nsr_token, mwansa):
    post(client, URL, body(), nsr_token)

    token = PartnerToken.objects.get(partner=nsr)
    assert token.token_hash != nsr_token and nsr_token not in (token.token_hash, token.prefix)
    assert nsr_token.startswith(token.prefix) and nsr_token.startswith("dci_")
    assert token.last_used_at is not None


def test_a_suspended_partner_is_forbidden(client, nsr, nsr_token, ministry_user):
    partner_update(acting_user=ministry_user, partner=nsr, active=False)

    message = refused(post(client, URL, body(), nsr_token), 403, "err.request.forbidden")
    assert "suspended" in message
    nsr.service_user.refresh_from_db()
    assert not nsr.service_user.is_active


def test_a_partner_may_only_use_the_exchanges_it_was_allowed(client, nsr, nsr_token, ministry_user, samfya):
    from .makers import partner, token_for

    payments = partner(
        ministry_user,
        [samfya],
        code="zampay",
        can_search_registry=False,
        can_read_enrolments=True,
        programmes=[_programme(samfya, ministry_user)],
    )
    message = refused(
        post(client, URL, body(sender_id="zampay"), token_for(payments, ministry_user)), 403, "err.request.forbidden"
    )
    assert "may not search the registry" in message


def _programme(district, ministry_user):
    from payments.tests.makers import make_agency, make_cash_programme

    return make_cash_programme(agency=make_agency("MCDSS"), districts=[district], ministry_user=ministry_user)


def test_a_message_claiming_another_sender_is_refused(client, nsr, nsr_token):
    message = refused(post(client, URL, body(sender_id="moh-mis"), nsr_token), 401, "err.sender_id.invalid")
    assert "moh-mis" in message and "nsr.gov.zm" in message


def test_a_message_for_another_receiver_is_refused(client, nsr, nsr_token):
    refused(post(client, URL, body(receiver_id="crvs"), nsr_token), 400, "err.receiver_id.invalid")


def test_an_encrypted_message_is_refused_as_not_supported(client, nsr, nsr_token):
    refused(post(client, URL, body(is_msg_encrypted=True), nsr_token), 400, "err.encryption.invalid")


def test_a_file_upload_is_refused(client, nsr, nsr_token):
    response = client.post(URL, data={"action": "search"}, HTTP_AUTHORIZATION=f"Bearer {nsr_token}")
    assert "application/json" in refused(response, 400, "err.request.bad")


def test_only_post_is_taken_and_unknown_paths_answer_in_the_dci_shape(client, nsr_token):
    response = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {nsr_token}")
    assert response.status_code == 405 and response["Allow"] == "POST"
    assert response.json()["errors"][0]["code"] == "err.request.bad"

    response = post(client, "/dci/registry/subscribe", body(), nsr_token)
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "err.request.not_found"


# --- signatures ------------------------------------------------------------------------------


@pytest.fixture
def signing_nsr(nsr, ministry_user):
    add_key(nsr, ministry_user)
    return nsr


def test_a_partner_with_a_key_must_sign(client, signing_nsr, nsr_token, mwansa):
    message = refused(post(client, URL, body(), nsr_token), 401, "err.signature.missing")
    assert "signs its messages" in message
    assert Transaction.objects.count() == 0


def test_a_signed_message_from_a_partner_with_a_key_is_answered(client, signing_nsr, nsr_token, mwansa):
    response = post(client, URL, sign(body(), sender_id="nsr.gov.zm"), nsr_token)

    assert response.status_code == 200
    assert_valid("social", SYNC_SEARCH, response.json())
    assert response.json()["message"]["search_response"][0]["status"] == "succ"


def test_a_message_changed_after_signing_is_refused(client, signing_nsr, nsr_token, mwansa):
    signed = sign(body(), sender_id="nsr.gov.zm")
    signed["message"]["search_request"][0]["search_criteria"]["query"]["value"] = "222222/22/2"

    message = refused(post(client, URL, signed, nsr_token), 401, "err.signature.invalid")
    assert "does not match" in message


def test_a_signature_made_with_another_key_is_refused(client, signing_nsr, nsr_token):
    signed = sign(body(), sender_id="nsr.gov.zm", seed=bytes(32))
    refused(post(client, URL, signed, nsr_token), 401, "err.signature.invalid")


def test_a_signature_naming_an_unknown_key_or_another_sender_is_refused(client, signing_nsr, nsr_token):
    unknown_key = sign(body(), sender_id="nsr.gov.zm", key_id="old-key")
    assert "not an active key" in refused(post(client, URL, unknown_key, nsr_token), 401, "err.signature.invalid")

    other_sender = sign(body(), sender_id="moh-mis")
    assert "names sender" in refused(post(client, URL, other_sender, nsr_token), 401, "err.signature.invalid")


def test_an_expired_signature_is_refused(client, signing_nsr, nsr_token, monkeypatch):
    signed = sign(body(), sender_id="nsr.gov.zm")
    later = datetime.datetime.now().timestamp() + 3 * 3600
    monkeypatch.setattr("interop.dci.exchange.time.time", lambda: later)

    assert "expired" in refused(post(client, URL, signed, nsr_token), 401, "err.signature.invalid")


def test_a_revoked_key_no_longer_signs(client, signing_nsr, nsr_token, ministry_user, mwansa):
    add_key(signing_nsr, ministry_user, seed=bytes(range(40, 72)), key_id="key-2026-2")
    old = signing_nsr.keys.get(key_id="key-2026-1")
    partner_key_revoke(acting_user=ministry_user, key=old)

    refused(
        post(client, URL, sign(body(), sender_id="nsr.gov.zm", seed=PARTNER_SEED), nsr_token),
        401,
        "err.signature.invalid",
    )
    new = sign(body(), sender_id="nsr.gov.zm", seed=bytes(range(40, 72)), key_id="key-2026-2")
    assert post(client, URL, new, nsr_token).status_code == 200
