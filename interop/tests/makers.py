"""Builders for the DCI tests: a registry with households in two districts, partner systems
with their tokens and keys, and envelopes as a partner's system sends them."""

from __future__ import annotations

import base64
import datetime
import json
import time
import uuid

from django.utils import timezone

from interop.dci import ed25519
from interop.dci.config import identity
from interop.dci.signatures import sign_envelope
from interop.services import partner_key_add, partner_register, partner_token_issue
from registry.attribute_services import attribute_definition_ensure
from registry.models import AttributeEntity, AttributeType, Relationship
from registry.services import MemberInput, household_register

# A partner's signing key (its 32-byte seed) as the tests hold it.
PARTNER_SEED = bytes(range(1, 33))
PARTNER_KEY_ID = "key-2026-1"


def define_attributes() -> None:
    attribute_definition_ensure(
        entity=AttributeEntity.HOUSEHOLD, key="pmt_score", label="PMT score", type=AttributeType.DECIMAL
    )
    attribute_definition_ensure(
        entity=AttributeEntity.MEMBER, key="marital_status", label="Marital status", type=AttributeType.TEXT
    )


def person(
    first: str, last: str, sex: str, born: datetime.date, *, relationship=Relationship.HEAD, **more
) -> MemberInput:
    attributes = more.pop("attributes", None)
    return MemberInput(
        values={
            "first_name": first,
            "last_name": last,
            "sex": sex,
            "date_of_birth": born,
            "relationship": relationship,
            **more,
        },
        attributes=attributes,
    )


def register(officer, village, members: list[MemberInput], *, pmt: str | None = None, **fields):
    return household_register(
        acting_user=officer,
        village=village,
        members=members,
        attributes={"pmt_score": pmt} if pmt is not None else None,
        duplicates_confirmed=True,
        **fields,
    )


def partner(ministry_user, districts, *, code="nsr.gov.zm", **fields):
    defaults = {"name": f"Partner {code}", "can_search_registry": True}
    return partner_register(acting_user=ministry_user, code=code, districts=districts, **{**defaults, **fields})


def token_for(partner, ministry_user, label: str = "production gateway") -> str:
    _, raw = partner_token_issue(acting_user=ministry_user, partner=partner, label=label)
    return raw


def add_key(partner, ministry_user, seed: bytes = PARTNER_SEED, key_id: str = PARTNER_KEY_ID):
    public = base64.b64encode(ed25519.public_key(seed)).decode("ascii")
    return partner_key_add(acting_user=ministry_user, partner=partner, key_id=key_id, public_key=public)


def envelope(
    message: dict,
    *,
    sender_id: str,
    action: str = "search",
    total_count: int | str | None = 1,
    message_id: str | None = None,
    **header_fields,
) -> dict:
    header = {
        "version": "1.0.0",
        "message_id": message_id or str(uuid.uuid4()),
        "message_ts": timezone.now().isoformat(),
        "action": action,
        "sender_id": sender_id,
        "receiver_id": identity().sender_id,
        "total_count": total_count,
        "is_msg_encrypted": False,
        **header_fields,
    }
    header = {key: value for key, value in header.items() if value is not None}
    return {"signature": "", "header": header, "message": message}


def sign(body: dict, *, sender_id: str, seed: bytes = PARTNER_SEED, key_id: str = PARTNER_KEY_ID) -> dict:
    body["signature"] = sign_envelope(
        header=body["header"],
        message=body.get("message"),
        sender_id=sender_id,
        key_id=key_id,
        private_key=seed,
        now=int(time.time()),
    )
    return body


def search_request(query, *, query_type="idtype-value", entity=None, reference_id="ref-1", **criteria) -> dict:
    search_criteria = {"version": "1.0.0", "reg_event_type": "REGISTER", "query_type": query_type, "query": query}
    if entity:
        search_criteria["response_entity"] = entity
    search_criteria.update(criteria)
    return {"reference_id": reference_id, "timestamp": timezone.now().isoformat(), "search_criteria": search_criteria}


def search_message(*requests, transaction_id="txn-1") -> dict:
    return {"transaction_id": transaction_id, "search_request": list(requests)}


def post(client, path: str, body, token: str | None, **extra):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    return client.post(path, data=data, content_type=extra.pop("content_type", "application/json"), **headers, **extra)
