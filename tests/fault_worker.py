"""A real Celery worker for the fault tests, in a process of its own so that a test can kill it (SIGKILL).

Run as `python -m tests.fault_worker` with the environment `tests/faults.py` gives it (the test database,
a private Redis). It is `celery -A spf worker --pool=solo --concurrency=1`, started through Celery's own
command line, plus one optional stop: FAULT_PAUSE_AT names a point in a job where the worker writes the file
FAULT_MARKER and then waits, long enough for the test to kill it there:

- `recompute_step`: a recompute run, its first step written and committed, before its second step;
- `payroll`: a payroll generation, its payments inserted but its transaction not yet committed.

The pause wraps the production functions from outside; no production code waits for a test.
"""

import functools
import os
import pathlib
import time

# Far longer than a test takes to notice the marker and kill the worker; if a test forgets to, the worker
# goes on and the test sees a finished job instead of a killed one.
PAUSE_SECONDS = 120


def _pause_here() -> None:
    pathlib.Path(os.environ["FAULT_MARKER"]).write_text(str(os.getpid()))
    time.sleep(PAUSE_SECONDS)


def _pause_before_second_recompute_step() -> None:
    from programmes import services

    step = services._bulk_step
    calls = []

    @functools.wraps(step)
    def paused_step(**kwargs):
        calls.append(kwargs["district_id"])
        if len(calls) == 2:
            _pause_here()
        return step(**kwargs)

    services._bulk_step = paused_step


def _pause_inside_payroll_transaction() -> None:
    from payments import payroll

    refresh = payroll._refresh_totals

    @functools.wraps(refresh)
    def paused_refresh(cycle):
        _pause_here()
        return refresh(cycle)

    payroll._refresh_totals = paused_refresh


PAUSES = {"recompute_step": _pause_before_second_recompute_step, "payroll": _pause_inside_payroll_transaction}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spf.settings.test")
    import django

    django.setup()
    pause_at = os.environ.get("FAULT_PAUSE_AT", "")
    if pause_at:
        PAUSES[pause_at]()
    from spf.celery import app

    app.worker_main(
        [
            "worker",
            "--pool=solo",
            "--concurrency=1",
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            f"--hostname=fault-{os.getpid()}@%h",
        ]
    )


if __name__ == "__main__":
    main()
