"""PostgreSQL restarting while gunicorn serves the app: requests fail cleanly and recover on their own.

What the app sees when PostgreSQL restarts is two things, both simulated here without touching the shared
server: every open connection dies (the server terminates its backends: `pg_terminate_backend` on the
served app's connections, found by their `application_name`), and for some seconds new connections are
refused (the app reaches PostgreSQL through a small TCP proxy in this process, which is stopped: it
refuses new connections and cuts the open ones, then started again).

gunicorn serves the app as in production (two sync workers, docs/operations.md), with the test
settings (DEBUG off, plain-HTTP cookies), on the test database.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.conf import settings
from django.db import connection, transaction
from django.test import Client
from rest_framework.authtoken.models import Token

from referrals.tests.makers import make_household
from registry.models import Household, Member
from registry.tests.factories import MemberFactory
from spf.idempotency.models import IdempotencyKey

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parent.parent
# Far above what any request here needs on a busy shared machine; only a hung request reaches it.
REQUEST_TIMEOUT_SECONDS = 30
START_TIMEOUT_SECONDS = 90


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresProxy:
    """127.0.0.1:<port> → PostgreSQL, which can go away the way a restarting server does.

    `stop()` closes the listening socket (a new connection is refused) and cuts every connection
    open through it; `start()` listens on the same port again."""

    def __init__(self, upstream_host: str, upstream_port: int):
        self.upstream = (upstream_host, upstream_port)
        self.port = _free_port()
        self._open: set[socket.socket] = set()
        self._guard = threading.Lock()
        self._listening = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self._listener = listener
        self._listening.set()
        self._thread = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._listening.clear()
        self._thread.join()
        self._listener.close()
        with self._guard:
            cut, self._open = self._open, set()
        for sock in cut:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while self._listening.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            try:
                server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._guard:
                self._open.update((client, server))
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class ServedApp:
    """gunicorn with two workers, connecting to the test database through the proxy."""

    def __init__(self, *, database: dict, proxy: PostgresProxy):
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.application_name = f"spf-restart-test-{uuid.uuid4().hex[:8]}"
        self.log = tempfile.NamedTemporaryFile(prefix="gunicorn-", suffix=".log", delete=False)
        user = database["USER"] or "postgres"
        password = f":{database['PASSWORD']}" if database["PASSWORD"] else ""
        url = (
            f"postgres://{user}{password}@127.0.0.1:{proxy.port}/{database['NAME']}"
            f"?application_name={self.application_name}"
        )
        env = {key: value for key, value in os.environ.items() if key not in ("DJANGO_SETTINGS_MODULE",)}
        # Celery tasks (eligibility after a registration) run in the worker, not queued for nobody.
        env.update(DJANGO_SETTINGS_MODULE="spf.settings.test", DATABASE_URL=url, CELERY_BROKER_URL="")
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self.process = subprocess.Popen(
            [str(gunicorn), "spf.wsgi", "--bind", f"127.0.0.1:{self.port}", "--workers", "2"],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn stopped:\n{self.output()}")
            try:
                if requests.get(f"{self.base}/healthz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.3)
        pytest.fail(f"gunicorn did not serve within {START_TIMEOUT_SECONDS} s:\n{self.output()}")

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.unlink(self.log.name)


@pytest.fixture(scope="module")
def proxy(django_db_setup):
    database = connection.settings_dict
    proxy = PostgresProxy(database["HOST"] or "127.0.0.1", int(database["PORT"] or 5432))
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="module")
def served(proxy):
    app = ServedApp(database=connection.settings_dict, proxy=proxy)
    try:
        app.wait_until_serving()
        yield app
    finally:
        app.stop()


@pytest.fixture
def desk(samfya_officer, samfya_village):
    """A front-desk officer's browser session cookie and API token, usable against the served app."""
    client = Client()
    client.force_login(samfya_officer)
    return {
        "cookies": {settings.SESSION_COOKIE_NAME: client.cookies[settings.SESSION_COOKIE_NAME].value},
        "headers": {"Authorization": f"Token {Token.objects.create(user=samfya_officer).key}"},
    }


def app_connections(served: ServedApp) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", [served.application_name])
        return [row[0] for row in cursor.fetchall()]


def kill_app_connections(served: ServedApp) -> int:
    """What PostgreSQL does to every backend when it restarts."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            [served.application_name],
        )
        return cursor.fetchone()[0]


def get(served: ServedApp, path: str, who: dict) -> requests.Response:
    return requests.get(
        f"{served.base}{path}",
        cookies=who["cookies"],
        headers=who["headers"] if path.startswith("/api/") else {},
        allow_redirects=False,
        timeout=REQUEST_TIMEOUT_SECONDS,
    )


def registration(national_id: str) -> dict:
    return {
        "village": "SAM-W1-V1",
        "address": "Plot 9, by the borehole",
        "members": [
            {
                "first_name": "Chanda",
                "last_name": "Bwalya",
                "sex": "F",
                "date_of_birth": "1984-06-02",
                "relationship": "head",
            },
            {
                "first_name": "Mutale",
                "last_name": "Bwalya",
                "sex": "M",
                "date_of_birth": "1981-01-20",
                "relationship": "spouse",
                "national_id": national_id,
            },
        ],
    }


def test_killed_connections_are_replaced_and_the_very_next_requests_succeed(served, desk):
    # Until each worker holds a kept connection (CONN_MAX_AGE): the next request of either finds it dead.
    deadline = time.monotonic() + REQUEST_TIMEOUT_SECONDS
    while len(app_connections(served)) < 2 and time.monotonic() < deadline:
        assert get(served, "/healthz", desk).status_code == 200
    assert len(app_connections(served)) == 2

    assert kill_app_connections(served) == 2

    answers = [get(served, path, desk) for path in ("/healthz", "/", "/api/v1/households/", "/healthz", "/")]
    assert [a.status_code for a in answers] == [200] * 5, [a.text[:300] for a in answers]


def test_while_postgres_is_away_pages_and_api_answer_503_and_recover_without_a_restart(served, proxy, desk):
    assert get(served, "/", desk).status_code == 200
    proxy.stop()
    try:
        page = get(served, "/", desk)
        listing = get(served, "/api/v1/households/", desk)
        write = requests.post(
            f"{served.base}/api/v1/households/",
            json=registration("470123/61/1"),
            headers=desk["headers"],
            timeout=REQUEST_TIMEOUT_SECONDS,
        )
        health = requests.get(f"{served.base}/healthz", timeout=REQUEST_TIMEOUT_SECONDS)  # as a load balancer asks
        health_with_a_session = get(served, "/healthz", desk)
    finally:
        proxy.start()

    assert page.status_code == 503 and page.headers["Content-Type"].startswith("text/html")
    assert "Try again in a moment" in page.text and "Traceback" not in page.text
    assert page.headers["Retry-After"].isdigit()
    for answer in (listing, write):
        assert answer.status_code == 503 and answer.headers["Retry-After"].isdigit()
        error = answer.json()["error"]
        assert error["code"] == "database_unavailable" and "try again" in error["message"] and error["fields"] == {}
    for answer in (health, health_with_a_session):
        assert answer.status_code == 503 and answer.json()["database"] == "down"

    # Back: the very next requests are served, by the same gunicorn and the same workers.
    answers = [get(served, path, desk) for path in ("/", "/api/v1/households/", "/healthz")]
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text[:300] for a in answers]
    assert served.process.poll() is None
    log = served.output()
    assert log.count("Booting worker") == 2, log
    assert "Traceback" not in log and "Database unavailable, answered 503" in log
    assert not Household.objects.filter(address="Plot 9, by the borehole").exists()


def test_a_registration_whose_connection_dies_in_flight_leaves_nothing_half_written(
    served, desk, samfya_officer, samfya_village
):
    national_id = "470123/61/2"
    body = registration(national_id)
    headers = {**desk["headers"], "Idempotency-Key": "desk-restart-1"}
    answers = []

    def send():
        answers.append(
            requests.post(
                f"{served.base}/api/v1/households/", json=body, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS
            )
        )

    elsewhere = make_household(officer=samfya_officer, village=samfya_village, last_name="Phiri")
    with transaction.atomic():
        # The same national ID, written and not committed: the app's insert of the second member waits
        # on the unique index, with its household and first member already written in its transaction.
        MemberFactory(household=elsewhere, national_id=national_id)
        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + REQUEST_TIMEOUT_SECONDS
        while time.monotonic() < deadline and not waiting_on_a_lock(served):
            time.sleep(0.05)
        assert waiting_on_a_lock(served), "the registration never reached the held national ID"
        kill_app_connections(served)
        transaction.set_rollback(True)
    sender.join()

    assert answers[0].status_code == 503, answers[0].text[:300]
    assert not Household.objects.filter(address="Plot 9, by the borehole").exists()
    assert not Member.objects.filter(first_name__in=("Chanda", "Mutale")).exists()
    assert not IdempotencyKey.objects.exists()

    # The person at the desk sends it again (same key): registered now, whole, once.
    again = requests.post(
        f"{served.base}/api/v1/households/", json=body, headers=headers, timeout=REQUEST_TIMEOUT_SECONDS
    )
    assert again.status_code == 201, again.text[:300]
    household = Household.objects.get(address="Plot 9, by the borehole")
    assert sorted(household.members.values_list("first_name", flat=True)) == ["Chanda", "Mutale"]


def waiting_on_a_lock(served: ServedApp) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock')",
            [served.application_name],
        )
        return cursor.fetchone()[0]
