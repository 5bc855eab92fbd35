"""Push throughput: outbox rows sent to an agency's system on this machine.

    .venv/bin/python bench/delivery.py [--deliveries 2000] [--database-name spf_delivery_bench]

Starts a receiver in a separate process on 127.0.0.1 (it checks every
signature, as an agency would, and answers 200), writes N pending deliveries
for one referral to a PostgreSQL database, and sends them with
`referrals.delivery.delivery_attempt` from one worker thread, then (after
resetting the rows) from two. Each send is the production path: claim the
row (lock, lease, commit), POST, record the attempt and the result.

Prints deliveries per second and p50/p95 latency, both the HTTP call alone
(the `latency_ms` logged per attempt) and the whole attempt as a worker sees
it, and writes `bench/delivery-results.md`. A measurement, not a test.
"""

import argparse
import datetime
import hashlib
import hmac
import json
import multiprocessing
import os
import platform
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "bench" / "delivery-results.md"
SECRET = "bench-secret"


# --- the agency's side, in its own process (its own interpreter lock) ---------------------


def serve(port_out, tolerance: int = 300) -> None:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            timestamp = self.headers.get("X-SPF-Timestamp", "0")
            expected = (
                "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            )
            ok = hmac.compare_digest(expected, self.headers.get("X-SPF-Signature", "")) and (
                abs(time.time() - int(timestamp)) <= tolerance
            )
            reply = b'{"ok":true}' if ok else b'{"ok":false}'
            self.send_response(200 if ok else 401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format, *args):  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    port_out.put(server.server_address[1])
    server.serve_forever()


# --- the window's side ---------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--database-name", default="spf_delivery_bench")
    parser.add_argument("--database-host", default=os.environ.get("BENCH_DATABASE_HOST", "postgres@127.0.0.1:5432"))
    options = parser.parse_args()

    ports = multiprocessing.Queue()
    receiver = multiprocessing.Process(target=serve, args=(ports,), daemon=True)
    receiver.start()
    port = ports.get(timeout=10)

    os.environ["DATABASE_URL"] = f"postgres://{options.database_host}/{options.database_name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spf.settings.test")
    os.environ["CELERY_BROKER_URL"] = ""
    sys.path.insert(0, str(ROOT))
    create_database(options.database_host, options.database_name)

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    referral_id, event_id, agency_id = setup_referral(port)
    runs = []
    for workers in (1, 2):
        ids = reset_deliveries(options.deliveries, referral_id=referral_id, event_id=event_id, agency_id=agency_id)
        runs.append(measure(ids, workers=workers))
    receiver.terminate()
    report(options, runs)


def create_database(host: str, name: str) -> None:
    import psycopg2

    user, _, address = host.rpartition("@")
    hostname, _, port = address.partition(":")
    connection = psycopg2.connect(dbname="postgres", user=user or "postgres", host=hostname, port=port or 5432)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cursor.fetchone() is None:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def setup_referral(port: int) -> tuple[int, int, int]:
    """One referral to an agency that pushes: the rows to send all announce it (the payload is the real one)."""
    from programmes.models import Agency, AgencyKind, Programme, ProgrammeDistrict, ProgrammeKind, ProgrammeStatus
    from referrals.models import Referral
    from referrals.services import referral_create
    from referrals.tests.delivery_receiver import household_in
    from registry.tests.factories import UserFactory, make_district, make_village
    from spf.models import Role

    agency, _ = Agency.objects.update_or_create(
        code="BENCH",
        defaults={
            "name": "Bench agency",
            "kind": AgencyKind.NGO,
            "referral_delivery": "webhook",
            "webhook_url": f"http://127.0.0.1:{port}/hook",
            "webhook_secret": SECRET,
        },
    )
    referral = Referral.objects.filter(agency=agency).first()
    if referral is None:
        district = make_district("BEN", "Bench")
        officer = UserFactory(username="bench_frontdesk", role=Role.FRONT_DESK, districts=[district])
        programme = Programme.objects.create(
            code="BENCH",
            name="Bench programme",
            agency=agency,
            description="",
            kind=ProgrammeKind.CASH_TRANSFER,
            status=ProgrammeStatus.ACTIVE,
            currency="ZMW",
            referral_sla_days=10,
        )
        ProgrammeDistrict.objects.create(programme=programme, district=district)
        household = household_in(make_village(district), officer=officer)
        referral = referral_create(acting_user=officer, household=household, programme=programme)
    event = referral.events.get(to_status="sent")
    return referral.pk, event.pk, agency.pk


def reset_deliveries(count: int, *, referral_id: int, event_id: int, agency_id: int) -> list[int]:
    from django.utils import timezone

    from referrals.models import Delivery, DeliveryAttempt

    template = Delivery.objects.filter(referral_id=referral_id).order_by("pk").first()
    DeliveryAttempt.objects.filter(delivery__referral_id=referral_id).delete()
    Delivery.objects.filter(referral_id=referral_id).exclude(pk=template.pk).delete()
    now = timezone.now()
    rows = [
        Delivery(
            referral_id=referral_id,
            event_id=event_id,
            agency_id=agency_id,
            payload=template.payload,
            idempotency_key=f"bench-{now.timestamp():.0f}-{i}",
            next_attempt_at=now,
        )
        for i in range(count)
    ]
    return [d.pk for d in Delivery.objects.bulk_create(rows, batch_size=1000)]


def measure(ids: list[int], *, workers: int) -> dict:
    from django.db import connection

    from referrals.delivery import delivery_attempt
    from referrals.models import DeliveryAttempt

    todo = list(reversed(ids))
    lock = threading.Lock()
    whole_ms: list[float] = []
    outcomes: dict[str, int] = {}

    def work():
        try:
            while True:
                with lock:
                    if not todo:
                        return
                    delivery_id = todo.pop()
                started = time.perf_counter()
                outcome = delivery_attempt(delivery_id=delivery_id)
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    whole_ms.append(elapsed)
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
        finally:
            connection.close()

    load_before = os.getloadavg()
    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    http_ms = list(DeliveryAttempt.objects.filter(delivery_id__in=ids).values_list("latency_ms", flat=True))
    figures = {
        "workers": workers,
        "deliveries": len(ids),
        "seconds": round(seconds, 2),
        "per_second": round(len(ids) / seconds, 1),
        "http_p50_ms": percentile(http_ms, 50),
        "http_p95_ms": percentile(http_ms, 95),
        "attempt_p50_ms": round(percentile(whole_ms, 50), 1),
        "attempt_p95_ms": round(percentile(whole_ms, 95), 1),
        "outcomes": outcomes,
        "load_before": load_before,
    }
    print(json.dumps(figures))
    return figures


def percentile(values: list[float], p: int) -> float:
    if not values:
        return 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def machine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0].split()[0]
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), PostgreSQL {postgres}, Python {platform.python_version()}"


def report(options, runs: list[dict]) -> None:
    lines = [
        "## Push to an agency's system (`bench/delivery.py`)",
        "",
        f"- Date: {datetime.date.today().isoformat()}. Machine: {machine()}.",
        f"- Load average (1, 5, 15 min) before the runs: {', '.join(f'{x:.2f}' for x in runs[0]['load_before'])}; "
        f"after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}.",
        f"- {options.deliveries:,} deliveries per run to a receiver on 127.0.0.1 in its own process (checks each "
        "signature, answers 200); each is the production path: claim (row lock, lease, commit), signed POST on a new "
        "connection, record the attempt and the result (two short transactions).",
        "- Workers are threads of one process here; production runs Celery worker processes (no shared interpreter "
        "lock), so two workers there do at least as well as two threads here.",
        "",
        "| workers | deliveries | seconds | deliveries per second | HTTP p50 | HTTP p95 | whole attempt p50 | "
        "whole attempt p95 | outcomes |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for run in runs:
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(run["outcomes"].items()))
        lines.append(
            f"| {run['workers']} | {run['deliveries']:,} | {run['seconds']} | {run['per_second']} | "
            f"{run['http_p50_ms']:.0f} ms | {run['http_p95_ms']:.0f} ms | {run['attempt_p50_ms']} ms | "
            f"{run['attempt_p95_ms']} ms | {outcomes} |"
        )
    lines.append("")
    REPORT.write_text("\n".join(lines) + "\n" + NOTES)
    print(f"Wrote {REPORT.relative_to(ROOT)}")


NOTES = """
What the figures mean: the HTTP latency is what `DeliveryAttempt.latency_ms` records (connect, send, answer);
the whole attempt adds the two short transactions around it. A real agency's system is across a network:
its latency, not this machine, will bound throughput, and more Celery workers (or a higher worker
concurrency) scale it, since a worker spends most of an attempt waiting. The beat sweep queues at most
`DELIVERY_SWEEP_BATCH` rows a minute per sweep; after an outage the backlog drains at the sweep's pace or the
workers', whichever is slower.
"""


if __name__ == "__main__":
    main()
