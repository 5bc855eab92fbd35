"""Load test: gunicorn on 127.0.0.1 and front-desk officers working at once, over real HTTP.

    .venv/bin/python bench/load.py --households 100000 [--users 8,16] [--seconds 60] [--workers 4]
    .venv/bin/python bench/million.py --households 1000000 --measure-only --only load   # the same, from there

On a database built by bench/million.py (`spf_scale100k`, `spf_scale1m`, or `--database-name`):

1. starts gunicorn (`--workers` sync workers, as the Dockerfile runs it) on a free port of 127.0.0.1
   with the production settings (`spf.settings.production`: DEBUG off, a generated SECRET_KEY,
   ALLOWED_HOSTS=127.0.0.1, SECURE_SSL_REDIRECT=false since there is no TLS proxy in front), and one
   Celery worker on Redis database 8 for what the requests queue (a registered household's
   eligibility, a sent referral's delivery), as docker-compose runs them;
2. for each number of users (`--users`, one run each), every user is a front-desk officer of Samfya
   (`load_desk_NN`, created here) who logs in through the login form (CSRF token from the page) and
   then, for `--seconds`, works without pause on one keep-alive connection (stdlib http.client):
   50% searches (a third each by household number or national ID, by phone, by a misspelt name),
   30% household pages, 10% registrations (the form fetched, every hidden field it holds sent
   back, a new household of one to five invented people; confirmed when the page suspects a
   duplicate), 10% referral updates (a suggested referral's page fetched, its "send" form posted);
3. reports requests a second, p50/p95/max per kind of operation (an operation is every request
   it takes: a registration is a GET and a POST, or three requests when confirmed) and every
   error (a status other than the one expected, or a failed connection), which must be none;
4. waits for the worker to finish what was queued, stops gunicorn and the worker, and deletes the
   households it registered (their people, history and eligibility), so the database keeps its size.
   The referrals it sent stay sent (a few hundred a run, of hundreds of thousands of suggestions).

Results go into `bench/million-results.json` (the entry of the database's size) and
`docs/benchmarks.md` (bench/million.py's report).
"""

import argparse
import html.parser
import http.client
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REDIS_DB = 8
# The mix of a front desk's day, in percent (searches split evenly between the three kinds).
MIX = (("search", 50), ("household page", 30), ("registration", 10), ("referral update", 10))
SEARCH_KINDS = ("search by number or ID", "search by phone", "search by misspelt name")
# Households, people and referrals prepared per user: more than a minute's work needs.
SAMPLE_HOUSEHOLDS = 600
REFERRALS_PER_USER = 400
# Syllables of the invented people registered (never in the country's name lists, so few duplicates).
SYLLABLES = ("ka", "lu", "mbe", "nso", "twi", "fya", "ngo", "zhi", "pwe", "rka", "vuu", "dzo", "qe")
STATUS_EXPECTED = {"GET": (200,), "POST": (302,)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, required=True, help="The size whose database is used.")
    parser.add_argument("--database-name", help="Default: bench/million.py's name for --households.")
    parser.add_argument("--database-host", default=os.environ.get("BENCH_DATABASE_HOST", "postgres@127.0.0.1:5432"))
    parser.add_argument("--users", default="8,16", help="Concurrent users, one run per number (comma-separated).")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=2026)
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    million = _million()
    name = options.database_name or million.default_database_name(options.households)
    million.django_setup(options.database_host, name)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    runs = measure(
        users=[int(n) for n in options.users.split(",") if n.strip()],
        seconds=options.seconds,
        workers=options.workers,
        seed=options.seed,
    )
    results = json.loads(million.RESULTS.read_text()) if million.RESULTS.exists() else {}
    entry = results.setdefault(str(options.households), {"database": name})
    entry.setdefault("figures", {})["load"] = {
        "runs": runs,
        "workers": options.workers,
        "seconds": options.seconds,
        "date": million.now_text(),
    }
    million.save(results, entry, options.households)
    print(f"Written {million.RESULTS.relative_to(ROOT)} and {million.REPORT.relative_to(ROOT)}.")


def _million():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_million", ROOT / "bench" / "million.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the servers -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment() -> dict:
    from django.conf import settings

    database = settings.DATABASES["default"]
    url = f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}"
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "spf.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1",
        # No TLS proxy in front of this gunicorn: the redirect to https would answer every request.
        "SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": url,
        "CELERY_BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "LOG_LEVEL": "WARNING",
    }


class Servers:
    """gunicorn and a Celery worker, started and stopped by this process (never anyone else's)."""

    def __init__(self, *, workers: int, log_folder: Path):
        self.workers = workers
        self.port = free_port()
        self.log_folder = log_folder
        self.processes: list[subprocess.Popen] = []

    def __enter__(self):
        environment = server_environment()
        self._purge_queue()
        self.log_folder.mkdir(parents=True, exist_ok=True)
        for old_log in self.log_folder.glob("*.log"):
            old_log.unlink()
        self.gunicorn_log = self.log_folder / "gunicorn.log"
        self.worker_log = self.log_folder / "worker.log"
        self.processes.append(
            subprocess.Popen(
                [
                    str(ROOT / ".venv" / "bin" / "gunicorn"),
                    "spf.wsgi",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--workers",
                    str(self.workers),
                    "--error-logfile",
                    str(self.gunicorn_log),
                ],
                cwd=ROOT,
                env=environment,
                # Django's own log (a 500's traceback) goes to the console: kept beside gunicorn's.
                stdout=open(self.log_folder / "django.log", "wb"),  # noqa: SIM115 - closed with the process
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        self.processes.append(
            subprocess.Popen(
                [
                    str(ROOT / ".venv" / "bin" / "celery"),
                    "-A",
                    "spf",
                    "worker",
                    "--concurrency",
                    "1",
                    "--loglevel",
                    "warning",
                    "--without-gossip",
                    "--without-mingle",
                    "--logfile",
                    str(self.worker_log),
                ],
                cwd=ROOT,
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        self.__exit__(None, None, None)
        raise SystemExit(f"gunicorn did not answer on port {self.port}; see {self.gunicorn_log}")

    def queued(self) -> int:
        import redis

        return redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).llen("celery")

    def wait_for_worker(self, limit: float = 300) -> float:
        """Until the queue is empty (and a moment for the task in hand), or `limit` seconds."""
        started = time.monotonic()
        while self.queued() and time.monotonic() - started < limit:
            time.sleep(1)
        time.sleep(3)
        return time.monotonic() - started

    def _purge_queue(self) -> None:
        import redis

        # Redis database 8 is this bench's own: what an interrupted run left queued is dropped.
        redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB).flushdb()

    def __exit__(self, *exc):
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return False


# --- what the users will ask --------------------------------------------------------------------


def desk_users(count: int) -> tuple[list[str], str]:
    """`count` front-desk officers of Samfya, with one password, hashed as production hashes it."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    from registry.models import Location, LocationLevel
    from spf.models import Role, User

    samfya = Location.objects.get(level=LocationLevel.DISTRICT, name="Samfya")
    password = "load " + secrets.token_urlsafe(12)
    # The production settings check passwords with PBKDF2; these settings (the test ones) would hash with MD5.
    hasher = PBKDF2PasswordHasher()
    encoded = hasher.encode(password, hasher.salt())
    names = []
    for number in range(1, count + 1):
        user, _ = User.objects.get_or_create(username=f"load_desk_{number:02d}", defaults={"role": Role.FRONT_DESK})
        user.role, user.password, user.is_active = Role.FRONT_DESK, encoded, True
        user.save()
        user.districts.set([samfya])
        names.append(user.username)
    return names, password


def prepare_work(*, users: int, seed: int) -> dict:
    """Searches, household ids, villages and referral numbers of Samfya for the users to work through."""
    from referrals.models import Referral, referral_number
    from registry.countries import current_country
    from registry.models import Location, LocationLevel
    from spf.models import User

    search = _million().bench("search")
    rng = random.Random(seed)
    country = current_country()
    variants = country.names().get("spelling_variants", {})
    desk = User.objects.get(username="frontdesk_samfya")
    households = search.sample_households(desk, SAMPLE_HOUSEHOLDS, rng)
    searches = {kind: [] for kind in SEARCH_KINDS}
    for household in households:
        members = list(household.members.all())
        with_id = [m for m in members if m.national_id]
        searches[SEARCH_KINDS[0]].append(rng.choice(with_id).national_id if with_id else household.number)
        with_phone = [m for m in members if m.phone]
        if with_phone:
            searches[SEARCH_KINDS[1]].append(search.phone_as_typed(rng.choice(with_phone).phone, country, rng))
        person = rng.choice(members)
        searches[SEARCH_KINDS[2]].append(search.misspell(f"{person.first_name} {person.last_name}", variants, rng))
    samfya = Location.objects.get(level=LocationLevel.DISTRICT, name="Samfya")
    villages = list(
        Location.objects.filter(level=LocationLevel.VILLAGE, parent__parent=samfya).values_list("pk", flat=True)
    )
    # Suggestions the desk may send: Samfya's drafts, taken at random from the oldest ids up.
    drafts = list(
        Referral.objects.filter(district=samfya, status="draft")
        .order_by("pk")
        .values_list("pk", flat=True)[: users * REFERRALS_PER_USER * 4]
    )
    rng.shuffle(drafts)
    return {
        "searches": searches,
        "households": [h.pk for h in households],
        "villages": villages,
        "referrals": [referral_number(pk) for pk in drafts[: users * REFERRALS_PER_USER]],
    }


# --- a user ----------------------------------------------------------------------------------------


class Forms(html.parser.HTMLParser):
    """The forms of a page: action, and the value of every field as the browser would send it untouched."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._select: str | None = None
        self._selected = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append({"action": attrs.get("action", ""), "method": attrs.get("method", "get"), "fields": {}})
        if not self.forms:
            return
        fields = self.forms[-1]["fields"]
        name = attrs.get("name")
        if tag == "input" and name:
            kind = attrs.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    fields[name] = attrs.get("value", "on")
            elif kind not in ("submit", "button", "file", "image", "reset"):
                fields[name] = attrs.get("value") or ""
        elif tag == "textarea" and name:
            fields[name] = ""
        elif tag == "select" and name:
            self._select, self._selected = name, False
            fields[name] = ""
        elif tag == "option" and self._select and not self._selected:
            # The selected option, else the first one, as a browser sends a select left alone.
            if "selected" in attrs or not fields[self._select]:
                fields[self._select] = attrs.get("value") or ""
            self._selected = "selected" in attrs

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None


def page_forms(body: bytes) -> list[dict]:
    parser = Forms()
    parser.feed(body.decode("utf-8", "replace"))
    return parser.forms


class Unexpected(Exception):
    pass


class Desk:
    """One officer at the window: a keep-alive connection, cookies, and what was done and how long it took."""

    def __init__(self, port: int, username: str, password: str, work: dict, rng: random.Random):
        self.port, self.username, self.password = port, username, password
        self.work, self.rng = work, rng
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.cookies: dict[str, str] = {}
        self.samples: list[tuple[str, float, int]] = []  # (kind, ms, requests)
        self.errors: list[str] = []
        self.registered: list[int] = []

    def request(self, method: str, path: str, fields: dict | None = None, expect=None) -> http.client.HTTPResponse:
        headers = {"Host": f"127.0.0.1:{self.port}", "User-Agent": "spf-load-bench"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if fields is not None:
            body = urllib.parse.urlencode(fields)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"http://127.0.0.1:{self.port}{path}"
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            response.body = response.read()
        except (OSError, http.client.HTTPException):
            # A connection the server closed (a worker restarted): one new connection, one retry.
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            response.body = response.read()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
        if response.status not in (expect or STATUS_EXPECTED[method]):
            raise Unexpected(f"{method} {path}: {response.status} {response.body[:300]!r}")
        return response

    def log_in(self) -> None:
        page = self.request("GET", "/accounts/login/")
        form = next(f for f in page_forms(page.body) if "password" in f["fields"])
        fields = {**form["fields"], "username": self.username, "password": self.password}
        answer = self.request("POST", "/accounts/login/", fields)
        if "sessionid" not in self.cookies:
            raise Unexpected(f"login of {self.username} gave no session: {answer.status}")

    # One operation each; returns the number of requests it took.

    def search(self, kind: str) -> int:
        query = self.rng.choice(self.work["searches"][kind])
        self.request("GET", "/?" + urllib.parse.urlencode({"q": query}))
        return 1

    def household_page(self) -> int:
        self.request("GET", f"/households/{self.rng.choice(self.work['households'])}/")
        return 1

    def registration(self) -> int:
        page = self.request("GET", "/households/new/")
        form = next(f for f in page_forms(page.body) if "village" in f["fields"])
        fields = dict(form["fields"])
        fields.update(
            village=str(self.rng.choice(self.work["villages"])),
            address=f"Plot {self.rng.randint(1, 9999)}, near the clinic",
            phone=f"097{self.rng.randint(1000000, 9999999)}",
        )
        surname = self._name()
        size = self.rng.randint(1, 5)
        for index in range(size):
            prefix = f"members-{index}-"
            adult = index < 2
            fields.update(
                {
                    prefix + "first_name": self._name(),
                    prefix + "last_name": surname,
                    prefix + "sex": "F" if index % 2 == 0 else "M",
                    prefix
                    + "date_of_birth": f"{self.rng.randint(1950, 2000) if adult else self.rng.randint(2010, 2024)}"
                    f"-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}",
                    prefix + "relationship": "head" if index == 0 else ("spouse" if index == 1 else "child"),
                }
            )
        fields["members-TOTAL_FORMS"] = str(max(size, int(fields.get("members-TOTAL_FORMS") or 1)))
        answer = self.request("POST", "/households/new/", fields, expect=(302, 409))
        requests = 2
        if answer.status == 409:
            # The page suspects a duplicate: the officer checks and registers anyway.
            again = next(f for f in page_forms(answer.body) if "village" in f["fields"])
            fields = {
                **fields,
                **{k: v for k, v in again["fields"].items() if k not in fields or not k.startswith("members-")},
            }
            fields["duplicates_confirmed"] = "on"
            answer = self.request("POST", "/households/new/", fields)
            requests += 1
        location = answer.getheader("Location", "")
        household_id = location.rstrip("/").rsplit("/", 1)[-1]
        if not household_id.isdigit():
            raise Unexpected(f"registration went to {location!r}")
        self.registered.append(int(household_id))
        return requests

    def referral_update(self) -> int:
        with self.work["lock"]:
            if not self.work["referrals"]:
                raise Unexpected("no suggested referral left to send")
            number = self.work["referrals"].pop()
        page = self.request("GET", f"/referrals/{number}/")
        send = next(
            (f for f in page_forms(page.body) if f["fields"].get("to_status") == "sent" and "/move/" in f["action"]),
            None,
        )
        if send is None:
            raise Unexpected(f"referral {number} offers no 'send'")
        self.request("POST", send["action"], send["fields"])
        return 2

    def _name(self) -> str:
        return "".join(self.rng.choice(SYLLABLES) for _ in range(self.rng.randint(2, 3))).capitalize()

    def work_until(self, deadline: float) -> None:
        kinds, weights = zip(*MIX, strict=True)
        while time.monotonic() < deadline:
            kind = self.rng.choices(kinds, weights)[0]
            if kind == "search":
                kind = self.rng.choice(SEARCH_KINDS)
            started = time.perf_counter()
            try:
                if kind in SEARCH_KINDS:
                    requests = self.search(kind)
                elif kind == "household page":
                    requests = self.household_page()
                elif kind == "registration":
                    requests = self.registration()
                else:
                    requests = self.referral_update()
            except Exception as problem:  # noqa: BLE001 - every failure is counted and reported, none stops the run
                self.errors.append(f"{kind}: {problem}"[:500])
                continue
            self.samples.append((kind, (time.perf_counter() - started) * 1000, requests))


# --- a run ---------------------------------------------------------------------------------------


def run_once(*, port: int, users: int, seconds: int, seed: int, work: dict, names: list[str], password: str) -> dict:
    rng = random.Random(seed + users)
    desks = [Desk(port, names[i], password, work, random.Random(rng.random())) for i in range(users)]
    # Logging in (PBKDF2, about a second each on this machine) is not part of the run.
    for desk in desks:
        desk.log_in()
    started = time.monotonic()
    threads = [threading.Thread(target=desk.work_until, args=(started + seconds,)) for desk in desks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    samples = [s for desk in desks for s in desk.samples]
    errors = [e for desk in desks for e in desk.errors]
    kinds = {}
    for kind in (*SEARCH_KINDS, "household page", "registration", "referral update"):
        times = sorted(ms for k, ms, _n in samples if k == kind)
        if times:
            kinds[kind] = {
                "n": len(times),
                "p50": round(statistics.median(times), 1),
                "p95": round(times[max(0, round(0.95 * len(times)) - 1)], 1),
                "max": round(times[-1], 1),
                "requests": sum(n for k, _ms, n in samples if k == kind),
            }
    every = sorted(ms for _k, ms, _n in samples)
    requests = sum(n for _k, _ms, n in samples)
    return {
        "users": users,
        "seconds": round(elapsed, 1),
        "operations": len(samples),
        "requests": requests,
        "requests_per_second": round(requests / elapsed, 1),
        "operations_per_second": round(len(samples) / elapsed, 1),
        "p50": round(statistics.median(every), 1) if every else None,
        "p95": round(every[max(0, round(0.95 * len(every)) - 1)], 1) if every else None,
        "kinds": kinds,
        "errors": len(errors),
        "error_examples": errors[:10],
        "registered": [h for desk in desks for h in desk.registered],
    }


def measure(*, users: list[int], seconds: int, workers: int, seed: int) -> list[dict]:
    names, password = desk_users(max(users))
    work = prepare_work(users=sum(users), seed=seed)
    work["lock"] = threading.Lock()
    runs = []
    log_folder = Path(os.environ.get("TMPDIR", "/tmp")) / "spf-load-bench"
    print(f"   removed {remove_registered()} households an earlier run registered")
    try:
        with Servers(workers=workers, log_folder=log_folder) as servers:
            for count in users:
                load_before = os.getloadavg()
                print(
                    f"   {count} users for {seconds} s against {workers} gunicorn workers (load {load_before[0]:.2f})"
                )
                run = run_once(
                    port=servers.port,
                    users=count,
                    seconds=seconds,
                    seed=seed,
                    work=work,
                    names=names,
                    password=password,
                )
                run["registered"] = len(run["registered"])
                run["load_before"] = [round(x, 2) for x in load_before]
                run["load_after"] = [round(x, 2) for x in os.getloadavg()]
                run["worker_drain_seconds"] = round(servers.wait_for_worker(), 1)
                runs.append(run)
                print(
                    f"   {count} users: {run['requests_per_second']} requests/s, p95 {run['p95']} ms, "
                    f"{run['errors']} errors; " + ", ".join(f"{k} p95 {v['p95']}" for k, v in run["kinds"].items())
                )
                for example in run["error_examples"]:
                    print(f"      error: {example}")
    finally:
        print(f"   removed {remove_registered()} households registered by the load test")
    return runs


def remove_registered() -> int:
    """The households registered by the load test's users (this run's, and any an interrupted run left),
    with their people, history, eligibility and whatever names them."""
    from django.db import connection, transaction

    from registry.models import Household

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE load_gone ON COMMIT DROP AS SELECT DISTINCT c.household_id AS id "
            "FROM registry_changeentry c JOIN spf_user u ON u.id = c.actor_id "
            "WHERE u.username LIKE 'load\\_desk\\_%%' AND c.entity = 'household' AND c.action = 'create'",
            [],
        )
        cursor.execute("SELECT COUNT(*) FROM load_gone")
        count = cursor.fetchone()[0]
        _million().delete_with_dependents(cursor, Household, "SELECT id FROM load_gone")
    return count


# --- the report -----------------------------------------------------------------------------------


def report_lines(by_size: dict) -> list[str]:
    """The section of docs/benchmarks.md: each size, each number of users."""
    lines = [
        "gunicorn (sync workers, the production settings: DEBUG off, a generated SECRET_KEY, ALLOWED_HOSTS",
        "127.0.0.1, SECURE_SSL_REDIRECT off as there is no TLS proxy) and one Celery worker on Redis, on the same",
        "machine as PostgreSQL and as the client (Python threads, one keep-alive connection per user, no pause",
        "between operations: each user is a desk working flat out). Each user logs in through the login form; the",
        "mix is 50% searches (number or ID, phone, misspelt name), 30% household pages, 10% registrations through",
        "the form (every hidden field sent back; a suspected duplicate confirmed), 10% referrals sent from their",
        "page. A latency is the whole operation (a registration is two or three requests). An error is any status",
        "other than the one expected, or a failed connection. The households registered are deleted afterwards.",
        "",
        "| households | users | workers | seconds | requests/s | operations | p50 ms | p95 ms | errors | load before |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    details = []
    for size, figure in by_size.items():
        for run in figure.get("runs", []):
            lines.append(
                f"| {size:,} | {run['users']} | {figure.get('workers', '')} | {run['seconds']} | "
                f"**{run['requests_per_second']}** | {run['operations']:,} | {run['p50']} | **{run['p95']}** | "
                f"**{run['errors']}** | {' '.join(str(x) for x in run['load_before'])} |"
            )
            details += [
                "",
                f"{size:,} households, {run['users']} users:",
                "",
                "| operation | n | requests | p50 ms | p95 ms | max ms |",
                "| --- | ---: | ---: | ---: | ---: | ---: |",
            ]
            for kind, row in run["kinds"].items():
                details.append(
                    f"| {kind} | {row['n']:,} | {row['requests']:,} | {row['p50']} | {row['p95']} | {row['max']} |"
                )
            for example in run.get("error_examples", []):
                details.append(f"\n- error: `{example}`")
    return lines + details + [""]


if __name__ == "__main__":
    main()
