"""What the fault tests need: a private Redis they may stop and start, the Celery app pointed at it, real
workers (in this process, or in one of their own that can be killed), and a patient wait.

The suite's own Redis and PostgreSQL are shared with everyone: these tests never stop them. They start
their own `redis-server` on a free port, with no persistence, and stop it.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.db import connection

import spf.celery
from spf import outbox

ROOT = Path(__file__).resolve().parent.parent
# Generous: every job here takes well under a second; a loaded CI machine may take long to start a worker.
WAIT_SECONDS = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """A redis-server of the test's own, on a free port; stopped and started again on the same port."""

    def __init__(self):
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    def start(self) -> "PrivateRedis":
        if shutil.which("redis-server") is None:
            pytest.skip("needs redis-server (apt install redis-server)")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._answers, what=f"redis-server on port {self.port} to answer")
        return self

    def _answers(self) -> bool:
        try:
            return self.client().ping()
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None


def _forget_broker_connections() -> None:
    # The app's pools are Kombu's, kept per broker URL: dropping the app's references makes it take the pool of
    # the URL now configured (closing them would close the suite broker's pool for everyone after this test).
    app = spf.celery.app
    app._pool = None
    app.amqp._producer_pool = None
    # A broker that failed a moment ago is not tried again for a while: a new test starts afresh.
    outbox._broker_rests_until = 0.0


@contextmanager
def celery_broker(url: str):
    """The Celery app of this process sends to `url`, as production does (not eagerly), for the block."""
    conf = spf.celery.app.conf
    # Celery reads CELERY_BROKER_URL from the environment before its configuration: both are set.
    before = (os.environ.get("CELERY_BROKER_URL"), conf.broker_url, conf.task_always_eager)
    _forget_broker_connections()
    os.environ["CELERY_BROKER_URL"] = url
    conf.broker_url, conf.task_always_eager = url, False
    try:
        yield
    finally:
        _forget_broker_connections()
        if before[0] is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = before[0]
        conf.broker_url, conf.task_always_eager = before[1:]


@contextmanager
def tasks_in_process():
    """Celery's embedded mode for the block: queued jobs run in this process after commit (set-up data)."""
    conf = spf.celery.app.conf
    before = conf.task_always_eager
    conf.task_always_eager = True
    try:
        yield
    finally:
        conf.task_always_eager = before


def wait_for(condition: Callable[[], object], *, what: str, seconds: float = WAIT_SECONDS, logs: Path | None = None):
    """Poll `condition` until it is true; fail saying what was awaited (and the worker's log) if it never is."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    log = f"\n--- worker log ---\n{logs.read_text()[-6000:]}" if logs and logs.exists() else ""
    raise AssertionError(f"Gave up waiting for {what}.{log}")


@contextmanager
def worker_in_this_process():
    """A real worker in a thread of this process, on whatever broker the app now points at."""
    from celery.contrib.testing.worker import start_worker

    with start_worker(spf.celery.app, perform_ping_check=False, pool="solo", loglevel="WARNING") as worker:
        yield worker


class WorkerProcess:
    """`celery worker` in a process of its own (tests/fault_worker.py), on the test database, killable."""

    def __init__(self, *, broker_url: str, log: Path, pause_at: str = "", visibility_timeout: int | None = None):
        self.log = log
        self.marker = log.with_suffix(".paused")
        settings = connection.settings_dict
        database = (
            f"postgres://{settings['USER']}:{settings['PASSWORD'] or ''}@{settings['HOST'] or '127.0.0.1'}:"
            f"{settings['PORT'] or 5432}/{settings['NAME']}"
        )
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "spf.settings.test",
            "DATABASE_URL": database,
            "CELERY_BROKER_URL": broker_url,
            # One step at a time, so "the second step" is a moment in the run.
            "RECOMPUTE_PARALLEL_STEPS": "1",
            "FAULT_PAUSE_AT": pause_at,
            "FAULT_MARKER": str(self.marker),
        }
        if visibility_timeout is not None:
            self.env["CELERY_VISIBILITY_TIMEOUT_SECONDS"] = str(visibility_timeout)
        self.process: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        self.marker.unlink(missing_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.fault_worker"], cwd=ROOT, env=self.env, stdout=out, stderr=out
            )
        return self

    def wait_until_paused(self) -> None:
        wait_for(
            lambda: self.marker.exists() or self.process.poll() is not None, what="the worker to pause", logs=self.log
        )
        assert self.marker.exists(), f"The worker stopped before its pause:\n{self.log.read_text()[-6000:]}"

    def kill(self) -> None:
        """SIGKILL: no warm shutdown, no acknowledgement, no rollback but PostgreSQL's own."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def broker_queue_length(redis_server: PrivateRedis, queue: str = "celery") -> int:
    return redis_server.client().llen(queue)


def unacked_older_than(redis_server: PrivateRedis, seconds: float) -> bool:
    """A message a killed worker held (never acknowledged) is older than `seconds`: a new worker puts it back."""
    held = redis_server.client().zrange("unacked_index", 0, -1, withscores=True)
    return bool(held) and all(time.time() - taken > seconds for _, taken in held)


@contextmanager
def job_held_by_another_worker(kind, job_id: int):
    """Another worker's session holds the job's lock (spf/running.py) for the block: the job is in hand."""
    import psycopg2

    settings = connection.settings_dict
    other = psycopg2.connect(
        dbname=settings["NAME"],
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
    )
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [int(kind), int(job_id)])
        yield
    finally:
        other.close()
