"""Idempotency keys and form tokens are kept only as long as a retry may come."""

from celery import shared_task

from .services import idempotency_purge


@shared_task(name="idempotency.purge")
def idempotency_purge_task() -> dict[str, int]:
    return idempotency_purge()
