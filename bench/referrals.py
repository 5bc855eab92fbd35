"""Automatic referrals at scale: `referrals_from_eligibility()` after a full recompute.

    .venv/bin/python bench/referrals.py --database-name spf_bench100k
    .venv/bin/python bench/referrals.py --database-name spf_bench --modes configured

The database must hold a seeded population (`bench/search.py` or `seed_demo`).
The script migrates it, loads the demo catalogue (`seed_demo --skip-eligibility`
with the population's own size adds no household), then:

1. empties the eligibility results, their change events and every referral
   table (a benchmark database only: TRUNCATE), and runs a full eligibility
   recompute from empty, so every eligible household-programme pair has an
   unconsumed "became eligible" change, as after a first recompute or a
   broad rule change;
2. for each mode (`configured`: each programme's own setting, the demo's
   suggestions; `create`: every programme sends at once, with due dates and
   outbox rows for push agencies), empties the referrals again, marks the
   changes unconsumed, and times `referrals_from_eligibility()` creating the
   referrals, then a second call that has nothing to do;
3. prints the slowest SQL statements of each timed call (and, with
   `--explain`, EXPLAIN ANALYZE of the slowest one, in a rolled-back
   transaction).

The programmes' `auto_referral` settings are put back at the end. Results go to
`bench/referrals-results.json` (one entry per population size and mode);
`bench/referrals-results.md` is written from them by hand.

Do not run it while another benchmark uses the same database: it truncates the
eligibility results and competes for the same cores.
"""

import argparse
import datetime
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "referrals-results.json"
TARGET_SECONDS_PER_100K = 30
REFERRAL_TABLES = (
    "referrals_deliveryattempt",
    "referrals_delivery",
    "referrals_notification",
    "referrals_referralattachment",
    "referrals_referralevent",
    "referrals_referral",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-name", default="spf_bench100k")
    parser.add_argument("--database-host", default=os.environ.get("BENCH_DATABASE_HOST", "postgres@127.0.0.1:5432"))
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--modes",
        nargs="+",
        choices=["configured", "create"],
        default=["configured", "create"],
        help="How the programmes refer (default: both, one after the other).",
    )
    parser.add_argument("--skip-recompute", action="store_true", help="Reuse the results and changes already there.")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest statement of each run.")
    options = parser.parse_args()

    os.environ["DATABASE_URL"] = f"postgres://{options.database_host}/{options.database_name}"
    # The test settings: no broker, so nothing is queued to a worker.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spf.settings.test")
    os.environ["CELERY_BROKER_URL"] = ""
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.core.management import call_command

    from programmes.models import EligibilityChange, EligibilityResult, Programme, ProgrammeStatus
    from registry.models import Household

    call_command("migrate", verbosity=0)
    households = Household.objects.count()
    if not households:
        sys.exit("The database holds no households: seed it first (bench/search.py or seed_demo).")
    call_command("seed_demo", households=households, seed=options.seed, skip_eligibility=True, verbosity=0)
    active = list(Programme.objects.filter(status=ProgrammeStatus.ACTIVE).order_by("code"))
    settings_before = {p.pk: p.auto_referral for p in active}
    entry = {
        "database": options.database_name,
        "households": households,
        "date": datetime.datetime.now().isoformat(timespec="minutes"),
        "machine": machine(),
        "programmes": {p.code: p.auto_referral for p in active},
        "load_before": os.getloadavg(),
        "runs": {},
    }
    print(f"{households:,} households on {options.database_name}; programmes: {entry['programmes']}")
    print(f"machine: {entry['machine']}; load average before: {fmt_load(entry['load_before'])}")

    if not options.skip_recompute:
        truncate(("programmes_eligibilityresult", "programmes_eligibilitychange", *REFERRAL_TABLES))
        entry["recompute"] = full_recompute()
        print(
            f"full recompute from empty: {entry['recompute']['seconds']:.1f} s, "
            f"{entry['recompute']['changes']:,} change events"
        )
    eligible_changes = EligibilityChange.objects.filter(outcome="eligible").count()
    entry["eligible_results"] = EligibilityResult.objects.filter(outcome="eligible").count()
    print(f"eligible results: {entry['eligible_results']:,}; 'became eligible' changes: {eligible_changes:,}")
    try:
        for mode in options.modes:
            if mode == "create":
                Programme.objects.filter(pk__in=settings_before).update(auto_referral="create")
            else:
                for pk, value in settings_before.items():
                    Programme.objects.filter(pk=pk).update(auto_referral=value)
            reset_referrals()
            entry["runs"][mode] = measure(mode, explain=options.explain)
    finally:
        for pk, value in settings_before.items():
            Programme.objects.filter(pk=pk).update(auto_referral=value)
    entry["load_after"] = os.getloadavg()
    print(f"load average after: {fmt_load(entry['load_after'])}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[f"{options.database_name}:{households}"] = entry
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True, default=str) + "\n")
    print(f"Kept in {RESULTS.relative_to(ROOT)}.")


def measure(mode: str, *, explain: bool) -> dict:
    from referrals.models import Referral, ReferralEvent
    from referrals.services import referrals_from_eligibility

    row = {"load_before": os.getloadavg()}
    statements: list[tuple[float, str, tuple]] = []
    started = time.perf_counter()
    with record_statements(statements):
        report = referrals_from_eligibility()
    row["seconds"] = round(time.perf_counter() - started, 2)
    row.update(
        created=report.created,
        sent=report.sent,
        withdrawn=report.withdrawn,
        changes_consumed=report.changes_consumed,
        referrals_in_table=Referral.objects.count(),
        events_in_table=ReferralEvent.objects.count(),
        statements=len(statements),
    )
    row["referrals_per_second"] = round(report.created / row["seconds"]) if row["seconds"] else None
    row["seconds_per_100k"] = round(row["seconds"] * 100_000 / report.created, 1) if report.created else None
    started = time.perf_counter()
    again = referrals_from_eligibility()
    row["second_call_seconds"] = round(time.perf_counter() - started, 3)
    row["second_call_created"] = again.created
    statements.sort(key=lambda s: -s[0])
    row["slowest_statements"] = [{"seconds": round(s, 2), "sql": sql[:300]} for s, sql, _ in statements[:5]]
    print(
        f"[{mode}] created {report.created:,} referrals ({report.sent:,} sent) in {row['seconds']:.1f} s: "
        f"{row['referrals_per_second']:,} referrals/s, {row['seconds_per_100k']} s per 100,000 "
        f"(target {TARGET_SECONDS_PER_100K} s); {report.changes_consumed:,} changes consumed; "
        f"second call {row['second_call_seconds']:.3f} s, created {again.created}"
    )
    for s in row["slowest_statements"]:
        print(f"   {s['seconds']:>7.2f} s  {s['sql'][:160]}")
    if explain and statements:
        # Back to the state the first call found, so the plan is the one it ran.
        reset_referrals()
        row["explain"] = explain_analyze(statements[0][1], statements[0][2])
        print("\n".join(row["explain"]))
        referrals_from_eligibility()
    return row


def reset_referrals() -> None:
    from referrals.models import EligibilitySweep

    truncate(REFERRAL_TABLES)
    EligibilitySweep.objects.all().delete()
    analyze()


class record_statements:
    """Time every SQL statement run inside the block."""

    def __init__(self, into: list):
        self.into = into

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.into.append((time.perf_counter() - started, sql, params))

    def __enter__(self):
        from django.db import connection

        self._wrapper = connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc):
        return self._wrapper.__exit__(*exc)


def explain_analyze(sql: str, params) -> list[str]:
    """The plan of `sql` as run, in a transaction that is rolled back (it may be an INSERT)."""
    from django.db import connection, transaction

    lines: list[str] = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            lines = [row[0] for row in cursor.fetchall()]
            raise _Rollback
    except _Rollback:
        pass
    return lines


class _Rollback(Exception):
    pass


def full_recompute() -> dict:
    from programmes.models import EligibilityChange
    from programmes.services import recompute_run_create, recompute_run_execute

    load = os.getloadavg()
    run = recompute_run_create(reason="referral benchmark: from empty")
    started = time.perf_counter()
    run = recompute_run_execute(run_id=run.pk)
    seconds = time.perf_counter() - started
    analyze()
    return {
        "seconds": round(seconds, 1),
        "assessments": run.households_assessed,
        "changes": EligibilityChange.objects.filter(run=run).count(),
        "load_before": load,
    }


def truncate(tables) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # CASCADE: what refers to referrals (enrolments and their payments) goes too; a benchmark database only.
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in (
            "programmes_eligibilityresult",
            "programmes_eligibilitychange",
            "referrals_referral",
            "referrals_referralevent",
            "registry_household",
        ):
            cursor.execute(f"ANALYZE {table}")


def machine() -> str:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{os.cpu_count()} cores {cpu}{memory}, {platform.system()} {platform.release()}, PostgreSQL {postgres}"


def fmt_load(load) -> str:
    return " ".join(f"{x:.2f}" for x in load)


if __name__ == "__main__":
    main()
