"""Who is running a long job right now: PostgreSQL advisory locks held by the worker doing it.

A job that records "running" in its row (a recompute run, a payroll generation) cannot tell from the row
whether its worker is still at it or was killed. The worker therefore holds a session-level advisory lock
(`pg_try_advisory_lock`) on the job for as long as it works on it. PostgreSQL releases that lock when the
worker's connection ends, and a killed worker's connection ends with it, so:

- a second worker that cannot take the lock knows the job is in hand, and leaves it;
- a job marked running whose lock is free has no worker: it may be taken up again (`job_is_orphaned`).

A worker whose machine vanished without closing its connection keeps the lock until PostgreSQL notices the
connection is dead; the lock's session turns on TCP keepalives (DEAD_PEER_KEEPALIVE) so that takes about two
minutes rather than the system's default of over two hours.

On SQLite (the embedded demo: one process, tasks run eagerly) there are no such locks and no other worker:
`job_claim` always succeeds and `job_is_orphaned` always says no.
"""

import enum
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


class RunningJob(enum.IntEnum):
    """The kinds of job locked this way: the first key of the two-key advisory lock, the job's id the second.

    Numbers, not names: PostgreSQL's advisory locks take integers. Never reuse a number.
    """

    RECOMPUTE_RUN = 71001
    PAYROLL_GENERATION = 71002
    HOUSEHOLD_IMPORT = 71003


# Keepalive probes on the lock's connection: idle 60 s, then a probe every 10 s, dead after 6 unanswered;
# about two minutes for PostgreSQL to drop a worker whose machine disappeared, and its lock with it.
DEAD_PEER_KEEPALIVE = {"tcp_keepalives_idle": 60, "tcp_keepalives_interval": 10, "tcp_keepalives_count": 6}


def orphans_detectable() -> bool:
    """Whether locks tell a job that lost its worker from one in hand (PostgreSQL: yes; SQLite: no)."""
    return connection.vendor == "postgresql"


@contextmanager
def job_claim(kind: RunningJob, job_id: int) -> Iterator[bool]:
    """Hold the lock on this job while the block runs; yields False (and holds nothing) if another worker has it."""
    if not orphans_detectable():
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [int(kind), int(job_id)])
        claimed = cursor.fetchone()[0]
        if claimed:
            for name, value in DEAD_PEER_KEEPALIVE.items():
                # Session settings, not SET LOCAL: they must outlive any transaction the job opens.
                cursor.execute(f"SET {name} = {int(value)}")
    try:
        yield claimed
    finally:
        if claimed and connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [int(kind), int(job_id)])


def job_is_orphaned(kind: RunningJob, job_id: int) -> bool:
    """Whether nobody holds this job's lock: a job still marked running has lost its worker."""
    if not orphans_detectable():
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            # Advisory locks belong to one database; pg_locks lists every database's.
            "SELECT NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND objid = %s "
            "AND objsubid = 2 AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))",
            [int(kind), int(job_id)],
        )
        return cursor.fetchone()[0]


__all__ = ["RunningJob", "job_claim", "job_is_orphaned", "orphans_detectable"]
