"""Doing a submission's work once when it arrives twice (a double click, a browser or network retry).

Two mechanisms, both a UNIQUE index that two copies take turns on:

- a form's one-time token (`submission_claim`): the page carries a random token in a hidden
  field; the service that does the work claims it in its own transaction, first thing, and
  records what it created beside it. A second copy waits on the index until the first commits,
  then finds the claim and is shown what the first created.
- an API request's `Idempotency-Key` header (`idempotency_key_claim`, used by
  `spf.idempotency.middleware`): per user and key, with a fingerprint of the request and the
  answer it got, which a repeat receives again.
"""

import datetime
import uuid
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from django.http import HttpResponse
from django.utils import timezone

from .models import FormSubmission, IdempotencyKey

# A retry comes seconds or minutes after the first try, a client that lost its connection for
# the night retries in the morning; a day covers both, and keeps the answers (which may name
# people) no longer than that.
IDEMPOTENCY_KEY_TTL = datetime.timedelta(days=1)
# A page left open over a long weekend and sent again on Tuesday still does its work once.
FORM_SUBMISSION_TTL = datetime.timedelta(days=7)
# Response headers a repeat needs to read the answer the same way.
KEPT_HEADERS = ("Content-Type", "Content-Disposition", "Location")


class AlreadySubmitted(Exception):
    """The form's token was claimed before: `submission` says by whom and what it created."""

    def __init__(self, submission: FormSubmission):
        self.submission = submission
        super().__init__(f"Form {submission.token} was already submitted.")


def submission_claim(*, token: uuid.UUID | None, acting_user, action: str) -> FormSubmission | None:
    """Claim a form's one-time token, inside the caller's transaction (call it before doing the work).

    No token (a client that sends none): None, and nothing is guarded. A token claimed before,
    committed: AlreadySubmitted. A copy of the same form in flight: the insert waits on the
    unique index until that transaction ends, then either raises AlreadySubmitted (it committed)
    or claims the token (it rolled back, so nothing was done).
    """
    if token is None:
        return None
    if not connection.in_atomic_block:
        raise RuntimeError("Claim a submission token inside the transaction that does the work.")
    try:
        with transaction.atomic():
            return FormSubmission.objects.create(token=token, user=acting_user, action=action)
    except IntegrityError:
        raise AlreadySubmitted(FormSubmission.objects.get(token=token)) from None


def submission_record(submission: FormSubmission | None, *, created) -> None:
    """Note what the submission created, in the same transaction as the claim."""
    if submission is not None:
        submission.object_id = created.pk
        submission.save(update_fields=["object_id"])


# --- API requests ------------------------------------------------------------------------------------


@dataclass
class KeyClaim:
    """What a request's key found: nothing before (`claimed`: the request goes on), or an `earlier` request."""

    fingerprint: str
    claimed: IdempotencyKey | None = None
    earlier: IdempotencyKey | None = None

    @property
    def repeats_earlier(self) -> bool:
        """The earlier request was this same one (method, address and body): its answer is repeated."""
        return self.earlier is not None and self.earlier.request_fingerprint == self.fingerprint


def idempotency_key_claim(*, user, key: str, method: str, path: str, fingerprint: str) -> KeyClaim:
    """Claim `key` for this request, inside the transaction that runs it.

    A key used before (and not expired) is not claimed: the earlier request is returned, so its
    answer is repeated (the same request) or the new one refused (another request). A copy of the
    request in flight makes the insert wait on the unique index until it ends.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("Claim an idempotency key inside the transaction that runs the request.")
    now = timezone.now()
    # Twice at most: the second try follows an expired key deleted, or one purged meanwhile.
    for _ in range(2):
        try:
            with transaction.atomic():
                claimed = IdempotencyKey.objects.create(
                    user=user, key=key, method=method, path=path, request_fingerprint=fingerprint, created_at=now
                )
            return KeyClaim(fingerprint, claimed=claimed)
        except IntegrityError:
            earlier = IdempotencyKey.objects.filter(user=user, key=key).first()
            if earlier is None:
                continue
            if earlier.created_at < now - IDEMPOTENCY_KEY_TTL:
                earlier.delete()
                continue
            return KeyClaim(fingerprint, earlier=earlier)
    raise RuntimeError(f"Idempotency key {key!r} could not be claimed.")


def idempotency_key_keep(claimed: IdempotencyKey, response: HttpResponse) -> None:
    """Keep a successful answer for repeats; forget the key of a refused request (it changed nothing)."""
    if not 200 <= response.status_code < 300:
        claimed.delete()
        return
    headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    if response.streaming:
        # No API write answers with a stream; if one did, its answer could not be kept whole.
        headers["streamed"] = True
        body = b""
    else:
        body = response.content
    claimed.status_code, claimed.response_headers, claimed.response_body = response.status_code, headers, body
    claimed.save(update_fields=["status_code", "response_headers", "response_body"])


def idempotency_purge(*, now: datetime.datetime | None = None) -> dict[str, int]:
    """Forget API keys older than a day and form tokens older than a week; returns how many of each."""
    now = now or timezone.now()
    keys, _ = IdempotencyKey.objects.filter(created_at__lt=now - IDEMPOTENCY_KEY_TTL).delete()
    forms, _ = FormSubmission.objects.filter(created_at__lt=now - FORM_SUBMISSION_TTL).delete()
    return {"idempotency_keys": keys, "form_submissions": forms}
