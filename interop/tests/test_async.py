"""Asynchronous search and transaction status over real HTTP: the registry acknowledges at once,
processes the message in a Celery task and posts its signed answer to the partner's registered
address; retries a partner that is down; and reports any transaction on request."""

import datetime
import time

import pytest
from django.conf import settings
from django.utils import timezone

import spf.celery
from interop.dci.callbacks import (
    CALLBACK_MAX_ATTEMPTS,
    PROCESSING_GRACE,
    callback_attempt,
    callback_retry,
    callbacks_due,
    callbacks_sweep,
    transactions_purge,
)
from interop.models import CallbackStatus, Status, Transaction
from interop.services import partner_update

from .callback_receiver import CALLBACK_TOKEN, Receiver, free_port
from .dci_schemas import ACK, ON_SEARCH, ON_STATUS, SYNC_TXN_STATUS, assert_valid
from .makers import envelope, post, search_message, search_request

SEARCH_URL = "/dci/registry/search"
LATER = datetime.timedelta(days=1)
# Generous: the callback takes milliseconds; a loaded CI machine may be slow to start the worker.
WORKER_WAIT_SECONDS = 60


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture
def tasks_run_inline(django_capture_on_commit_callbacks):
    """Celery's embedded mode for this test, whatever broker the suite was given: `.delay` runs at once,
    when the transaction that queued it commits (the test's own transaction never does: its
    after-commit work is run when each request ends)."""
    before = spf.celery.app.conf.task_always_eager
    spf.celery.app.conf.task_always_eager = True
    global _after_commit
    _after_commit = django_capture_on_commit_callbacks
    yield
    _after_commit = None
    spf.celery.app.conf.task_always_eager = before


_after_commit = None


def committed(call):
    """Run `call` as a request would be: its after-commit work (queued tasks) runs when it ends."""
    if _after_commit is None:
        return call()
    with _after_commit(execute=True):
        return call()


@pytest.fixture
def nsr_calls_back(nsr, ministry_user, receiver):
    return partner_update(
        acting_user=ministry_user, partner=nsr, callback_url=receiver.base_url, callback_token=CALLBACK_TOKEN
    )


@pytest.fixture
def unprocessed(monkeypatch):
    """Acknowledged messages stay pending: their task is not run (a worker that has not got to them yet)."""
    monkeypatch.setattr("interop.dci.exchange._queue_processing", lambda pk: None)


def search_async(client, token, *requests, transaction_id="txn-1", **header):
    message = search_message(*requests, transaction_id=transaction_id)
    body = envelope(message, sender_id="nsr.gov.zm", total_count=len(requests), **header)
    response = committed(lambda: post(client, SEARCH_URL, body, token))
    assert response.status_code == 200, response.content
    assert_valid("social", ACK, response.json())
    return response.json()["message"]


def mary():
    return search_request({"type": "UIN", "value": "111111/11/1"}, reference_id="mary")


def test_an_async_search_is_acknowledged_then_answered_signed_at_the_partners_on_search(
    client, nsr_token, nsr_calls_back, registry, receiver, tasks_run_inline
):
    ack = search_async(client, nsr_token, mary())

    assert ack["ack_status"] == "ACK"
    (callback,) = receiver.received
    assert callback.path == "/spmis/dci/registry/on-search"
    assert callback.signature_ok, "the partner checks the registry's signature with its public key"
    assert callback.headers["Authorization"] == f"Bearer {CALLBACK_TOKEN}"
    answer = callback.envelope
    assert_valid("social", ON_SEARCH, answer)
    assert answer["header"]["action"] == "on-search" and answer["header"]["status"] == "succ"
    assert answer["message"]["correlation_id"] == ack["correlation_id"]
    (result,) = answer["message"]["search_response"]
    assert result["reference_id"] == "mary"
    assert result["data"]["reg_records"][0]["demographic_info"]["name"]["given_name"] == "Mary"
    row = Transaction.objects.get()
    assert (row.status, row.callback_status, row.callback_attempts) == (Status.SUCCEEDED, CallbackStatus.DELIVERED, 1)
    assert row.request is None and row.callback_payload is None, "nothing naming people is kept once answered"


def test_a_sender_uri_under_the_registered_address_is_used(
    client, nsr_token, nsr_calls_back, registry, receiver, tasks_run_inline
):
    search_async(client, nsr_token, mary(), sender_uri=receiver.base_url + "/callbacks/on-search?batch=7")

    assert receiver.received[0].path == "/spmis/dci/callbacks/on-search?batch=7"


@pytest.mark.parametrize(
    "sender_uri",
    [
        "http://attacker.example/collect",
        "http://127.0.0.1:9/spmis/dci/registry/on-search",
        "http://127.0.0.1/spmis/dcix",
    ],
)
def test_answers_never_go_outside_the_registered_address(
    client, nsr_token, nsr_calls_back, registry, receiver, tasks_run_inline, sender_uri
):
    ack = search_async(client, nsr_token, mary(), sender_uri=sender_uri)

    assert ack["ack_status"] == "ERR"
    assert ack["error"]["code"] == "err.sender_uri.invalid"
    assert receiver.received == []
    assert Transaction.objects.get().status == Status.REJECTED


def test_a_partner_without_a_registered_address_cannot_search_asynchronously(client, nsr_token, registry):
    ack = search_async(client, nsr_token, mary())

    assert (ack["ack_status"], ack["error"]["code"]) == ("ERR", "err.sender_uri.invalid")
    assert "no callback address registered" in ack["error"]["message"]


def test_a_repeated_async_message_is_refused_with_the_first_ones_correlation_id(
    client, nsr_token, nsr_calls_back, registry, receiver, tasks_run_inline
):
    body = envelope(search_message(mary()), sender_id="nsr.gov.zm")
    first = committed(lambda: post(client, SEARCH_URL, body, nsr_token)).json()["message"]

    again = committed(lambda: post(client, SEARCH_URL, body, nsr_token)).json()["message"]

    assert again["ack_status"] == "ERR" and again["correlation_id"] == first["correlation_id"]
    assert again["error"]["message"].startswith("rjct.message_id.duplicate")
    assert len(receiver.received) == 1


def test_a_partner_that_is_down_gets_its_answer_when_it_comes_back(
    client, nsr_token, nsr, ministry_user, registry, tasks_run_inline
):
    port = free_port()
    partner_update(acting_user=ministry_user, partner=nsr, callback_url=f"http://127.0.0.1:{port}/spmis/dci")
    search_async(client, nsr_token, mary())
    row = Transaction.objects.get()
    assert (row.callback_status, row.callback_attempts) == (CallbackStatus.PENDING, 1)
    assert "Connection refused" in row.callback_last_error
    assert row.callback_payload is not None, "kept until delivered"

    receiver = Receiver().start(port=port)
    try:
        assert callbacks_due(now=timezone.now() + LATER) == [row.pk]
        assert callback_attempt(transaction_pk=row.pk, now=timezone.now() + LATER) == "delivered"
    finally:
        receiver.stop()
    assert len(receiver.received) == 1 and receiver.received[0].signature_ok
    assert [a.status_code for a in row.callback_log.order_by("id")] == [None, 200]


def test_after_the_last_try_the_callback_fails_until_staff_retry_it(
    client, nsr_token, nsr_calls_back, registry, receiver, ministry_user, tasks_run_inline
):
    receiver.answers = [503] * CALLBACK_MAX_ATTEMPTS
    search_async(client, nsr_token, mary())
    row = Transaction.objects.get()
    outcomes = [
        callback_attempt(transaction_pk=row.pk, now=timezone.now() + LATER * i) for i in range(1, CALLBACK_MAX_ATTEMPTS)
    ]

    assert outcomes[-1] == "failed"
    row.refresh_from_db()
    assert row.callback_status == CallbackStatus.FAILED and row.callback_last_error.startswith("HTTP 503")

    committed(lambda: callback_retry(transaction_pk=row.pk, acting_user=ministry_user))

    row.refresh_from_db()
    assert row.callback_status == CallbackStatus.DELIVERED
    assert len(receiver.received) == CALLBACK_MAX_ATTEMPTS + 1


def test_an_acknowledged_message_whose_task_was_lost_is_processed_by_the_sweep(
    client, nsr_token, nsr_calls_back, registry, receiver, unprocessed, tasks_run_inline
):
    search_async(client, nsr_token, mary())
    row = Transaction.objects.get()
    assert row.status == Status.PENDING and receiver.received == []

    assert callbacks_sweep(now=timezone.now()) == {"callbacks": 0, "reprocessed": 0}
    assert committed(lambda: callbacks_sweep(now=timezone.now() + PROCESSING_GRACE)) == {
        "callbacks": 0,
        "reprocessed": 1,
    }

    row.refresh_from_db()
    assert row.status == Status.SUCCEEDED and len(receiver.received) == 1


# --- transaction status -------------------------------------------------------------------------


def txn_status_request(attribute_type: str, value, *, txn_type="search") -> dict:
    return {
        "transaction_id": "status-1",
        "txnstatus_request": {
            "reference_id": "q-1",
            "txn_type": txn_type,
            "attribute_type": attribute_type,
            "attribute_value": value,
        },
    }


def txn_status(client, token, message, *, url="/dci/registry/sync/txn/status"):
    response = post(client, url, envelope(message, sender_id="nsr.gov.zm", action="txn-status"), token)
    assert response.status_code == 200, response.content
    return response.json()


def test_the_status_of_an_answered_search_is_reported_without_its_records(
    client, nsr_token, nsr_calls_back, registry, receiver, tasks_run_inline
):
    ack = search_async(client, nsr_token, mary(), transaction_id="txn-77")
    ack_answers = [
        txn_status(client, nsr_token, txn_status_request("correlation_id", ack["correlation_id"])),
        txn_status(client, nsr_token, txn_status_request("reference_id_list", ["mary"])),
    ]
    by_transaction = txn_status(client, nsr_token, txn_status_request("transaction_id", "txn-77"))

    for answer in ack_answers:
        assert_valid("social", SYNC_TXN_STATUS, answer)
        assert answer["header"]["action"] == "txn-on-status" and answer["header"]["status"] == "succ"
        status = answer["message"]["txnstatus_response"]
        assert status["txn_type"] == "search"
        assert status["txn_status"]["correlation_id"] == ack["correlation_id"]
        (item,) = status["txn_status"]["search_response"]
        assert (item["reference_id"], item["status"]) == ("mary", "succ")
        assert item["pagination"]["total_count"] == 1
        assert "data" not in item
    assert_valid("social", SYNC_TXN_STATUS, by_transaction)
    assert by_transaction["header"]["status"] == "succ"


def test_a_search_not_yet_processed_is_reported_pending(client, nsr_token, nsr_calls_back, registry, unprocessed):
    ack = search_async(client, nsr_token, mary())

    answer = txn_status(client, nsr_token, txn_status_request("correlation_id", ack["correlation_id"]))

    assert_valid("social", SYNC_TXN_STATUS, answer)
    (item,) = answer["message"]["txnstatus_response"]["txn_status"]["search_response"]
    assert (item["reference_id"], item["status"]) == ("mary", "pdng")


def test_an_unknown_transaction_or_another_partners_is_not_found(client, nsr_token, ministry_user, samfya, registry):
    from .makers import partner, token_for

    other = partner(ministry_user, [samfya], code="moh-mis")
    other_token = token_for(other, ministry_user)
    body = envelope(search_message(mary(), transaction_id="secret-txn"), sender_id="moh-mis")
    post(client, "/dci/registry/sync/search", body, other_token)

    answer = txn_status(client, nsr_token, txn_status_request("transaction_id", "secret-txn"))

    assert_valid("social", SYNC_TXN_STATUS, answer)
    assert answer["header"]["status"] == "rjct"
    assert answer["header"]["status_reason_message"] == "No such transaction from this partner."
    assert "message" not in answer


def test_the_status_of_enrolment_updates_is_a_receipt(client, mcdss_token, banda, sct):
    from .test_ibr import beneficiary, send_updates

    send_updates(client, mcdss_token, beneficiary("333333/33/3", "SCT", "Active", reference_id="u-1"))
    message = txn_status_request("transaction_id", "t-9", txn_type="receipt")
    body = envelope(message, sender_id="mcdss-mis", action="txn-status")

    answer = post(client, "/dci/ibr/registry/sync/txn/status", body, mcdss_token).json()

    assert_valid("ibr", SYNC_TXN_STATUS, answer)
    assert_valid("social", SYNC_TXN_STATUS, answer)
    status = answer["message"]["txnstatus_response"]
    assert status["txn_type"] == "receipt"
    (item,) = status["txn_status"]["receipt_information"]["beneficiaries"]
    assert (item["reference_id"], item["status"]) == ("u-1", "pdng")


def test_an_async_status_request_is_answered_at_the_partners_on_status(
    client, nsr_token, nsr_calls_back, registry, receiver, tasks_run_inline
):
    search_async(client, nsr_token, mary(), transaction_id="txn-5")
    body = envelope(txn_status_request("transaction_id", "txn-5"), sender_id="nsr.gov.zm", action="txn-status")

    ack = committed(lambda: post(client, "/dci/registry/txn/status", body, nsr_token)).json()

    assert_valid("social", ACK, ack)
    callback = receiver.received[-1]
    assert callback.path == "/spmis/dci/registry/txn/on-status" and callback.signature_ok
    assert_valid("social", ON_STATUS, callback.envelope)
    assert callback.envelope["header"]["action"] == "txn-on-status"
    assert callback.envelope["message"]["correlation_id"] == ack["message"]["correlation_id"]


def test_old_questions_and_undelivered_answers_are_forgotten_after_the_retention_period(
    client, nsr_token, nsr, ministry_user, registry, unprocessed
):
    partner_update(acting_user=ministry_user, partner=nsr, callback_url="http://127.0.0.1:9/x")
    search_async(client, nsr_token, mary())
    row = Transaction.objects.get()
    assert row.request is not None

    assert transactions_purge(now=timezone.now(), days=30) == 0
    assert transactions_purge(now=timezone.now() + datetime.timedelta(days=31), days=30) == 1

    row.refresh_from_db()
    assert row.request is None


@pytest.mark.celery_worker
@pytest.mark.skipif(not settings.CELERY_BROKER_URL, reason="needs a broker (set CELERY_BROKER_URL)")
@pytest.mark.django_db(transaction=True)
def test_an_async_search_is_answered_by_a_real_worker(client, nsr_token, nsr_calls_back, registry, receiver):
    from celery.contrib.testing.worker import start_worker

    with spf.celery.app.connection_for_write() as broker:
        # Messages left by an earlier, interrupted run would be picked up first.
        broker.default_channel.queue_purge("celery")
    with start_worker(spf.celery.app, perform_ping_check=False, pool="solo", loglevel="WARNING"):
        ack = search_async(client, nsr_token, mary())
        deadline = time.monotonic() + WORKER_WAIT_SECONDS
        while time.monotonic() < deadline and not receiver.received:
            time.sleep(0.1)

    (callback,) = receiver.received
    assert callback.signature_ok
    assert callback.envelope["message"]["correlation_id"] == ack["correlation_id"]
    assert Transaction.objects.get().callback_status == CallbackStatus.DELIVERED
