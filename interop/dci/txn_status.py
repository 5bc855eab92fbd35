"""Transaction status: what became of a partner's earlier message.

Found by the partner's transaction_id, by our correlation_id, or by the
reference_ids of its requests, among that partner's own messages only. The
answer gives each request's status and reason, and for a search how many
records matched; it never repeats the records themselves (they went in the
answer or the callback, and are not kept): a partner that lost them searches
again.
"""

from __future__ import annotations

from ..models import Action, Partner, Status, Transaction, TransactionItem
from .config import ANSWER_LOCALE
from .results import REJECTED, SUCCEEDED, ItemResult, Outcome

TXN_TYPES = {
    "search": (Action.SEARCH, Action.ENROLLED),
    "receipt": (Action.UPDATES,),
    # The specification's spelling; subscriptions are not offered here, so nothing is ever found.
    "subscibe": (),
    "subscribe": (),
}
ATTRIBUTE_TYPES = ("transaction_id", "reference_id_list", "correlation_id")


class NotAnswerable(ValueError):
    pass


def _find(partner: Partner, request: dict) -> tuple[str, Transaction | None, list[str] | None]:
    txn_type = str(request.get("txn_type") or "").strip().lower()
    if txn_type not in TXN_TYPES:
        raise NotAnswerable("txnstatus_request.txn_type: must be search, receipt or subscribe.")
    attribute_type = str(request.get("attribute_type") or "").strip()
    if attribute_type not in ATTRIBUTE_TYPES:
        raise NotAnswerable(f"txnstatus_request.attribute_type: must be one of {', '.join(ATTRIBUTE_TYPES)}.")
    value = request.get("attribute_value")
    candidates = (
        Transaction.objects.filter(partner=partner, action__in=TXN_TYPES[txn_type])
        .order_by("-received_at", "-id")
        .prefetch_related("items")
    )
    if attribute_type == "reference_id_list":
        references = value if isinstance(value, list) else [value]
        references = [str(r) for r in references if isinstance(r, (str, int)) and str(r)]
        if not references:
            raise NotAnswerable("txnstatus_request.attribute_value: give the list of reference_ids.")
        found = candidates.filter(items__reference_id__in=references).distinct().first()
        return txn_type, found, references
    if not isinstance(value, str) or not value.strip():
        raise NotAnswerable(f"txnstatus_request.attribute_value: give the {attribute_type}.")
    field = "transaction_id" if attribute_type == "transaction_id" else "correlation_id"
    return txn_type, candidates.filter(**{field: value.strip()}).first(), None


def _item(found: Transaction, item: TransactionItem) -> dict:
    entry = {
        "reference_id": item.reference_id,
        "timestamp": (found.completed_at or found.received_at).isoformat(),
        "status": item.status,
    }
    if item.status_reason_code.startswith("rjct.") and found.action == Action.SEARCH:
        entry["status_reason_code"] = item.status_reason_code
    if item.status_reason_message:
        entry["status_reason_message"] = item.status_reason_message[:999]
    if item.total_count is not None:
        entry["pagination"] = {
            "page_size": item.page_size or 0,
            "page_number": item.page_number or 1,
            "total_count": item.total_count,
        }
    entry["locale"] = ANSWER_LOCALE
    return entry


def _pending_items(found: Transaction) -> list[dict]:
    """A message not yet processed: its requests, each pending."""
    requests = (found.request or {}).get("search_request") or [{}]
    return [
        {
            "reference_id": str(r.get("reference_id") or "") if isinstance(r, dict) else "",
            "timestamp": found.received_at.isoformat(),
            "status": Status.PENDING,
            "locale": ANSWER_LOCALE,
        }
        for r in requests
    ]


def txn_status_outcome(*, partner: Partner, message: dict, correlation_id: str) -> Outcome:
    request = message["txnstatus_request"]
    reference_id = str(request.get("reference_id") or "")
    try:
        txn_type, found, references = _find(partner, request)
    except NotAnswerable as problem:
        result = ItemResult(reference_id, REJECTED, reason_message=str(problem))
        return Outcome(None, [result], status=REJECTED, reason_message=str(problem))
    if found is None:
        text = "No such transaction from this partner." + (
            " This registry offers no subscriptions." if txn_type.startswith("sub") else ""
        )
        return Outcome(
            None, [ItemResult(reference_id, REJECTED, reason_message=text)], status=REJECTED, reason_message=text
        )
    items = list(found.items.all())
    if references is not None:
        items = [item for item in items if item.reference_id in references]
    if found.action == Action.UPDATES:
        txn_status = {
            "transaction_id": found.transaction_id,
            "receipt_information": {
                "beneficiaries": [
                    {
                        "reference_id": item.reference_id,
                        "status": item.status,
                        "status_reason_message": item.status_reason_message,
                    }
                    for item in items
                ]
            },
        }
    else:
        if found.status == Status.PENDING:
            entries = _pending_items(found)
        elif not items and found.status == Status.REJECTED:
            # Refused as a whole (its header): the reason is the message's.
            entries = [
                {
                    "reference_id": "",
                    "timestamp": (found.completed_at or found.received_at).isoformat(),
                    "status": REJECTED,
                    "status_reason_message": f"{found.status_reason_code}: {found.status_reason_message}"[:999],
                    "locale": ANSWER_LOCALE,
                }
            ]
        else:
            entries = [_item(found, item) for item in items]
        txn_status = {
            "transaction_id": found.transaction_id,
            "correlation_id": found.correlation_id,
            "search_response": entries,
        }
    body = {
        "transaction_id": str(message.get("transaction_id") or ""),
        "correlation_id": correlation_id,
        "txnstatus_response": {"txn_type": txn_type, "txn_status": txn_status},
    }
    summary = f"{found.get_action_display()} {found.message_id}: {found.get_status_display().lower()}"
    if found.callback_status:
        summary += f"; callback {found.get_callback_status_display().lower()}"
    return Outcome(body, [ItemResult(reference_id, SUCCEEDED, reason_message=summary + ".")])


__all__ = ["txn_status_outcome"]
