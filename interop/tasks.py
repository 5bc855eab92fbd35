"""Celery tasks for DCI exchanges: thin, by id, safe to run twice."""

from celery import shared_task


@shared_task(acks_late=True)
def transaction_run(transaction_pk: int) -> str:
    """Process an acknowledged (asynchronous) message and queue its answer."""
    from .dci.callbacks import transaction_process

    return transaction_process(transaction_pk=transaction_pk)


@shared_task(acks_late=True)
def callback_send(transaction_pk: int) -> str:
    """One try at posting an answer to the partner (later tries are scheduled in the row, swept by beat)."""
    from .dci.callbacks import callback_attempt

    return callback_attempt(transaction_pk=transaction_pk)


@shared_task(acks_late=True)
def callbacks_sweep() -> dict:
    """Beat, every minute: answers due for another try, messages whose processing was lost."""
    from .dci.callbacks import callbacks_sweep as sweep

    return sweep()


@shared_task(acks_late=True)
def transactions_purge() -> int:
    """Beat, nightly: what old messages asked, and answers never delivered, are forgotten."""
    from .dci.callbacks import transactions_purge as purge

    return purge()
