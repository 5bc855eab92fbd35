"""A national database in one command, and every figure of the design measured on it.

    .venv/bin/python bench/million.py --households 1000000                 # build (or reuse), then measure
    .venv/bin/python bench/million.py --households 1000000 --measure-only  # the database as it is
    .venv/bin/python bench/million.py --households 100000 --measure-only --only search,payroll
    make bench-all HOUSEHOLDS=1000000

The build, each step idempotent (a second run reuses what is there and adds
only what is missing):

1. the database (`spf_scale1m`, `spf_scale100k`, ... unless `--database-name`),
   created and migrated;
2. the population: `seed_demo --households N --seed S --skip-eligibility`;
3. the catalogue: the demo's six programmes and the eligibility bench's four
   (`bench/eligibility.py`), ten active;
4. eligibility: a full recompute when some household lacks a result;
5. enrolments: one household in five (200,000 at a million) enrolled, active,
   in the monthly cash programmes it is eligible for (the Social Cash Transfer
   first), written set-based by `bench/payroll.py`'s `enrolments_ensure`; each
   district's capacity and yearly budget of those programmes set to fit them;
6. referrals: the automatic sweep (`referrals_from_eligibility`), then a year of
   follow-up written set-based: of the suggestions, 40% still suggested, the
   others cancelled, sent, received, accepted, completed, rejected or expired,
   each step an event by the desk, the agency's officer or the system, at dates
   spread over the past year;
7. payments: twelve monthly cycles (the twelve months before this one) of each
   paying programme through the real services (`payments.demo`'s cycle: create,
   reissue, generate, approve, export, reconcile a provider's file with 94%
   paid, 3% failed, 3% unclaimed);
8. grievances: one per 500 households, through the services, most
   acknowledged, many resolved and closed;
9. the dashboard's summaries (`bench/dashboard.py`'s refresh), then `VACUUM
   ANALYZE` when anything was written.

Then every row of the design's performance table (`--only` picks some):
`search` and `page` (`bench/search.py`), `recompute` (a full run, 10
programmes), `payroll` (a payroll of this month for every paying programme,
its files and the reconciliation of the provider's answer, then removed),
`dashboard` (`bench/dashboard.py`: every variant of the page and the lists of
households behind figures), `import` (100,000 households into Samfya through
the import job, with the error report, then removed) and `load` (`bench/load.py`:
gunicorn and concurrent users). The load average is recorded before and after
each. Results: `bench/million-results.json` (one entry per size) and
`docs/benchmarks.md`, written from it with the notes in `bench/million-notes.md`.
"""

import argparse
import datetime
import importlib.util
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "million-results.json"
NOTES = ROOT / "bench" / "million-notes.md"
REPORT = ROOT / "docs" / "benchmarks.md"
SIZES = (100_000, 1_000_000)  # the two columns of the report

FIGURES = ("search", "recompute", "dashboard", "payroll", "import", "load")
# `page` is measured with the searches (one sample of households, one warm connection).
FIGURE_ALIASES = {"page": "search"}

# One household in five enrolled in a cash programme: the design's 200,000 beneficiaries at a million.
ENROLLED_SHARE = 0.2
# Room above the caseload in each district's capacity and yearly budget of a paying programme:
# twelve cycles, this month's measured one, reissues, and some left for approvals.
CAPACITY_ROOM = 1.1
BUDGET_MONTHS = 15
# A year of payment cycles.
CYCLE_COUNT = 12
# One grievance per this many households (2,000 at a million).
HOUSEHOLDS_PER_GRIEVANCE = 500
# The import figure: the design's 100,000 households, one in 200 with a row the import must refuse.
IMPORT_HOUSEHOLDS = 100_000
IMPORT_BAD_EVERY = 200
# The district the import goes into: a populated one, whose every person the likely-duplicate check compares.
IMPORT_DISTRICT = "Samfya"

# What a year of follow-up leaves of the automatic suggestions, by a hash of the referral id (0..99):
# (first bucket, last bucket, status now, days ago it was suggested: at least, spread).
REFERRAL_FATES = (
    (0, 39, "draft", 0, 60),
    (40, 44, "cancelled", 60, 300),
    (45, 54, "sent", 3, 45),
    (55, 59, "received", 5, 45),
    (60, 69, "accepted", 10, 60),
    (70, 84, "completed", 60, 300),
    (85, 92, "rejected", 60, 300),
    (93, 99, "expired", 150, 210),
)
# The steps that led there: (status now, step, from, to, days after the suggestion, who). None days: the
# programme's service level after sending, and a month more (when the expiry job gives up).
REFERRAL_STEPS = (
    ("cancelled", 1, "draft", "cancelled", 3, "window"),
    *(
        (fate, 1, "draft", "sent", 2, "window")
        for fate in ("sent", "received", "accepted", "completed", "rejected", "expired")
    ),
    *((fate, 2, "sent", "received", 4, "agency") for fate in ("received", "accepted", "completed", "rejected")),
    *((fate, 3, "received", "accepted", 9, "agency") for fate in ("accepted", "completed")),
    ("completed", 4, "accepted", "completed", 30, "agency"),
    ("rejected", 3, "received", "rejected", 10, "agency"),
    ("expired", 2, "sent", "expired", None, "system"),
)
STEP_REASONS = {
    "cancelled": "The household declined at the window.",
    "sent": "",
    "received": "",
    "accepted": "Verified at the household's visit.",
    "completed": "Enrolled by the agency.",
    "rejected": "Not confirmed on verification.",
    "expired": "No answer from the agency within the service level and a month more.",
}
REJECTION_REASONS = ("not_eligible", "capacity_full", "not_reached", "declined", "documents_missing")

GRIEVANCE_CATEGORIES = (
    # (share in percent, category, what the person says)
    (35, "payment", "The household says the last transfer did not arrive at the pay point."),
    (25, "eligibility", "The household asks why it was found not eligible."),
    (20, "data_correction", "A member's date of birth is wrong in the register."),
    (5, "staff_conduct", "The person says an officer asked for money to register them."),
    (5, "fraud", "A neighbour says a registered member has died."),
    (10, "other", "The person asks when the next registration day is."),
)


# --- the command ------------------------------------------------------------------------------


def default_database_name(households: int) -> str:
    if households % 1_000_000 == 0:
        return f"spf_scale{households // 1_000_000}m"
    return f"spf_scale{households // 1000}k"


def parse_only(text: str | None) -> list[str]:
    if not text:
        return list(FIGURES)
    chosen = []
    for word in text.split(","):
        word = FIGURE_ALIASES.get(word.strip(), word.strip())
        if word not in FIGURES:
            raise SystemExit(f"--only: unknown figure '{word}'; choose from {', '.join(FIGURES)} (and page)")
        if word not in chosen:
            chosen.append(word)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, required=True)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database-name", help="Default: spf_scale100k, spf_scale1m, ... from --households.")
    parser.add_argument("--database-host", default=os.environ.get("BENCH_DATABASE_HOST", "postgres@127.0.0.1:5432"))
    parser.add_argument("--measure-only", action="store_true", help="Skip the build: measure the database as it is.")
    parser.add_argument("--build-only", action="store_true", help="Build, measure nothing.")
    parser.add_argument("--only", help=f"Measure only these, comma-separated: {', '.join(FIGURES)} (page = search).")
    parser.add_argument("--queries", type=int, default=300, help="Searches timed per kind, and household pages.")
    parser.add_argument("--requests", type=int, default=30, help="Dashboard requests timed per variant.")
    parser.add_argument("--load-users", default="8,16", help="Concurrent users of the load test, comma-separated.")
    parser.add_argument("--load-seconds", type=int, default=60, help="Duration of each load test run.")
    parser.add_argument("--load-workers", type=int, default=4, help="gunicorn workers of the load test.")
    options = parser.parse_args()
    options.database_name = options.database_name or default_database_name(options.households)
    figures = parse_only(options.only)

    django_setup(options.database_host, options.database_name)
    from django.core.management import call_command

    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    entry = results.get(str(options.households), {})
    entry.update(households_wanted=options.households, database=options.database_name, seed=options.seed)
    entry["machine"] = machine()
    print(f"{options.database_name}: {options.households:,} households wanted; machine {entry['machine']['summary']}")

    if not options.measure_only:
        started = time.perf_counter()
        build = entry.setdefault("build", {})
        build["_started"] = now_text()
        call_command("migrate", verbosity=0)
        build_all(options, build, keep=lambda: save(results, entry, options.households))
        build["_seconds"] = round(time.perf_counter() - started, 1)
        build["_finished"] = now_text()
        print(f"Build finished in {build['_seconds']:,.0f} s.")
    else:
        call_command("migrate", verbosity=0)
    entry["state"] = database_state()
    entry.setdefault("figures", {})
    save(results, entry, options.households)
    if options.build_only:
        return
    for figure in figures:
        measure = MEASURES[figure]
        load_before = os.getloadavg()
        print(f"\n== {figure} (load {fmt_load(load_before)})")
        started = time.perf_counter()
        measured = measure(options, entry)
        for key, value in measured.items():
            value.update(
                load_before=[round(x, 2) for x in load_before],
                load_after=[round(x, 2) for x in os.getloadavg()],
                date=now_text(),
            )
            entry["figures"][key] = value
        print(f"== {figure}: {time.perf_counter() - started:,.0f} s (load after {fmt_load(os.getloadavg())})")
        # Saved after each figure: a long run interrupted keeps what it measured.
        save(results, entry, options.households)
    print(f"\nWritten {RESULTS.relative_to(ROOT)} and {REPORT.relative_to(ROOT)}.")


def django_setup(host: str, name: str) -> None:
    os.environ["DATABASE_URL"] = f"postgres://{host}/{name}"
    # The test settings: any host for the test client, cheap password hashing for the bench users,
    # and no broker: whatever a service queues runs in this process, nothing waits in Redis.
    os.environ["DJANGO_SETTINGS_MODULE"] = "spf.settings.test"
    os.environ["CELERY_BROKER_URL"] = ""
    sys.path.insert(0, str(ROOT))
    bench("search")._create_database(host, name)
    import django

    django.setup()


def save(results: dict, entry: dict, households: int) -> None:
    """This size's entry into the results file (read again: a run at another size may have written it since)."""
    results.clear()
    results.update(json.loads(RESULTS.read_text()) if RESULTS.exists() else {})
    results[str(households)] = entry
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True, default=str) + "\n")
    write_report(results)


_BENCHES: dict = {}


def bench(name: str):
    """Another bench script of this folder, as a module (bench/ is not a package)."""
    if name not in _BENCHES:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _BENCHES[name] = module
    return _BENCHES[name]


def now_text() -> str:
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def fmt_load(load) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def machine() -> dict:
    """bench/search.py's description of the machine, and the PostgreSQL settings that matter here."""
    from django.db import connection

    described = bench("search").machine()
    names = (
        "shared_buffers",
        "work_mem",
        "maintenance_work_mem",
        "effective_cache_size",
        "max_parallel_workers_per_gather",
        "random_page_cost",
        "jit",
        "synchronous_commit",
        "max_wal_size",
        "autovacuum",
        "fsync",
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s) ORDER BY name", [list(names)])
        settings = {name: _with_unit(setting, unit) for name, setting, unit in cursor.fetchall()}
        cursor.execute(
            "SELECT name, setting, unit FROM pg_settings WHERE source NOT IN ('default', 'override', 'client', 'session') "
            "AND name NOT LIKE 'lc\\_%%' AND name NOT IN ('DateStyle', 'TimeZone', 'log_timezone', "
            "'default_text_search_config', 'dynamic_shared_memory_type', 'cluster_name', 'listen_addresses', "
            "'port', 'unix_socket_directories', 'ssl', 'ssl_cert_file', 'ssl_key_file', 'data_directory', "
            "'hba_file', 'ident_file', 'external_pid_file', 'log_line_prefix', 'max_connections') ORDER BY name"
        )
        changed = [f"{name} {_with_unit(setting, unit)}" for name, setting, unit in cursor.fetchall()]
    described["postgresql_settings"] = settings
    described["postgresql_changed"] = changed
    described["summary"] = (
        f"{described['cores']} cores ({described['cpu']}), {described['memory_gb']} GB, "
        f"PostgreSQL {described['postgresql'].split(' ')[0]}"
    )
    return described


def _with_unit(setting: str, unit: str | None) -> str:
    if unit == "8kB":
        return _bytes(int(setting) * 8192)
    if unit == "kB":
        return _bytes(int(setting) * 1024)
    if unit == "MB":
        return _bytes(int(setting) * 1024 * 1024)
    return setting


def _bytes(size: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if size >= scale and size % scale == 0:
            return f"{size // scale}{unit}"
    return f"{size}B"


# --- the build ----------------------------------------------------------------------------------


def build_all(options, build: dict, keep) -> None:
    """Every build step in order; `keep` saves the results after each (an interrupted build keeps its times)."""
    steps = (
        ("population", lambda: build_population(options)),
        ("catalogue", build_catalogue),
        ("eligibility", build_eligibility),
        ("enrolments", lambda: build_enrolments(options.households)),
        ("referrals", build_referrals),
        ("payments", build_payments),
        ("grievances", lambda: build_grievances(options.households)),
        ("summaries", build_summaries),
    )
    wrote_any = False
    for name, step in steps:
        load = os.getloadavg()
        print(f"\n-- build: {name} (load {fmt_load(load)})")
        started = time.perf_counter()
        done = step()
        seconds = round(time.perf_counter() - started, 1)
        wrote = bool(done.pop("wrote", True))
        wrote_any = wrote_any or wrote
        record = {**done, "seconds": seconds, "load_before": [round(x, 2) for x in load], "date": now_text()}
        if wrote or name not in build:
            build[name] = record
        else:
            # Nothing to do this time: keep how long the step took when it did its work.
            build[name]["reused"] = now_text()
            build[name]["reuse_seconds"] = seconds
        print(f"-- build: {name}: {seconds:,.1f} s {done}")
        keep()
    if wrote_any:
        from django.db import connection

        load = os.getloadavg()
        started = time.perf_counter()
        with connection.cursor() as cursor:
            # What autovacuum would do some minutes after the bulk writes: measured figures should not pay
            # for hint bits of millions of fresh rows or plan with stale statistics.
            cursor.execute("VACUUM ANALYZE")
        build["vacuum"] = {
            "seconds": round(time.perf_counter() - started, 1),
            "load_before": [round(x, 2) for x in load],
            "date": now_text(),
        }
        print(f"-- build: VACUUM ANALYZE {build['vacuum']['seconds']} s")


def build_population(options) -> dict:
    from django.core.management import call_command

    from registry.models import Household

    before = Household.objects.count()
    call_command("seed_demo", households=options.households, seed=options.seed, skip_eligibility=True)
    after = Household.objects.count()
    return {"wrote": after != before, "households_before": before, "households": after}


def build_catalogue() -> dict:
    from programmes.models import Programme

    before = Programme.objects.count()
    programmes = bench("eligibility").bench_programmes_ensure(count=10)
    return {"wrote": Programme.objects.count() != before, "programmes": [p.code for p in programmes]}


def build_eligibility() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        # Fewer results of an active programme than active households in its districts: some are missing.
        # (Counts, not an anti-join: at a million households that reads ten million results once, not per row.)
        cursor.execute(
            "SELECT p.id, (SELECT COUNT(*) FROM registry_household h JOIN programmes_programmedistrict pd "
            "ON pd.district_id = h.district_id WHERE pd.programme_id = p.id AND h.status = 'active') "
            "FROM programmes_programme p WHERE p.status = 'active' AND p.current_version_id IS NOT NULL"
        )
        wanted = dict(cursor.fetchall())
        cursor.execute("SELECT programme_id, COUNT(*) FROM programmes_eligibilityresult GROUP BY programme_id")
        have = dict(cursor.fetchall())
        missing = any(have.get(programme, 0) < count for programme, count in wanted.items())
        from_empty = not have
    if not missing:
        return {"wrote": False}
    label = "build: first assessment, from empty results" if from_empty else "build: households added"
    row = bench("eligibility").full_recompute(label)
    return {"from_empty": from_empty, **row}


def paying_programmes() -> list:
    """The monthly cash programmes of households, the Social Cash Transfer first."""
    from programmes.models import BenefitFrequency, Programme, ProgrammeStatus, TargetUnit

    programmes = (
        Programme.objects.filter(
            status=ProgrammeStatus.ACTIVE,
            frequency=BenefitFrequency.MONTHLY,
            target_unit=TargetUnit.HOUSEHOLD,
            current_version__isnull=False,
            agency__code=bench("payroll").PROGRAMME["agency"],
        )
        .exclude(current_version__benefit_formula="")
        .exclude(code=bench("payroll").PROGRAMME["code"])
        .select_related("current_version")
    )
    return sorted(programmes, key=lambda p: (p.code != "SCT", p.code))


def cycle_periods() -> list[datetime.date]:
    """The first days of the twelve months before this one."""
    from django.utils import timezone

    this_month = timezone.localdate().replace(day=1)
    return [_months_before(this_month, CYCLE_COUNT - i) for i in range(CYCLE_COUNT)]


def _months_before(day: datetime.date, months: int) -> datetime.date:
    month = day.year * 12 + day.month - 1 - months
    return datetime.date(month // 12, month % 12 + 1, 1)


def build_enrolments(households: int) -> dict:
    from django.db.models import Count, Max, Sum
    from django.utils import timezone

    from payments.models import Enrolment, EnrolmentStatus
    from programmes.models import EligibilityResult, ProgrammeDistrict

    payroll = bench("payroll")
    wanted = round(households * ENROLLED_SHARE)
    programmes = paying_programmes()
    active = Enrolment.objects.filter(programme__in=programmes, status=EnrolmentStatus.ACTIVE)
    first_period = cycle_periods()[0]
    activated = timezone.make_aware(datetime.datetime.combine(first_period, datetime.time(9))) - datetime.timedelta(
        days=30
    )
    written = 0
    for programme in programmes:
        missing = wanted - active.count()
        if missing <= 0:
            break
        eligible = EligibilityResult.objects.filter(programme=programme, outcome="eligible", amount__gt=0).count()
        have = payroll.enrolments_count(programme)
        written += payroll.enrolments_ensure(
            programme, count=min(have + missing, eligible), eligible_only=True, activated=activated
        )
    # Each district's capacity and yearly budget, as ministry staff set them for a caseload this size.
    for programme in programmes:
        by_district = (
            Enrolment.objects.filter(programme=programme, status=EnrolmentStatus.ACTIVE)
            .values("district_id")
            .annotate(n=Count("pk"), monthly=Sum("amount"), largest=Max("amount"))
        )
        for row in by_district:
            capacity = math.ceil(row["n"] * CAPACITY_ROOM)
            ProgrammeDistrict.objects.filter(programme=programme, district_id=row["district_id"]).update(
                capacity=max(capacity, 1),
                budget=math.ceil(float(row["monthly"]) * BUDGET_MONTHS * CAPACITY_ROOM),
            )
    counts = {p.code: Enrolment.objects.filter(programme=p, status=EnrolmentStatus.ACTIVE).count() for p in programmes}
    return {"wrote": bool(written), "written": written, "active_by_programme": counts, "wanted": wanted}


def build_referrals() -> dict:
    from django.db import connection, transaction
    from django.utils import timezone

    from referrals.services import referrals_from_eligibility

    swept = referrals_from_eligibility()
    now = timezone.now()
    fates = ", ".join(
        f"({lo}, {hi}, '{status}', {least}, {spread})" for lo, hi, status, least, spread in REFERRAL_FATES
    )
    steps = ", ".join(
        f"('{fate}', {n}, '{before}', '{after}', {'NULL' if days is None else days}, '{who}')"
        for fate, n, before, after, days, who in REFERRAL_STEPS
    )
    reasons = ", ".join(
        f"('{status}', '{reason.replace(chr(39), chr(39) * 2)}')" for status, reason in STEP_REASONS.items()
    )
    rejections = "ARRAY[" + ", ".join(f"'{r}'" for r in REJECTION_REASONS) + "]"
    bucket = "((hashint8(r.id)::bigint & 2147483647) %% 100)::int"
    age = "((hashint8(r.id + 7919)::bigint & 2147483647) %% f.spread)::int"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE scale_fates (lo int, hi int, status text, least_days int, spread int) "
            f"ON COMMIT DROP; INSERT INTO scale_fates VALUES {fates}"
        )
        cursor.execute(
            "CREATE TEMPORARY TABLE scale_steps (fate text, n int, from_status text, to_status text, days int, "
            f"who text) ON COMMIT DROP; INSERT INTO scale_steps VALUES {steps}"
        )
        cursor.execute(
            "CREATE TEMPORARY TABLE scale_reasons (status text, reason text) ON COMMIT DROP; "
            f"INSERT INTO scale_reasons VALUES {reasons}"
        )
        # Who acts: each district's front desk, each agency's officer (the demo's users).
        cursor.execute(
            "CREATE TEMPORARY TABLE scale_desks ON COMMIT DROP AS "
            "SELECT ud.location_id AS district_id, MIN(u.id) AS user_id FROM spf_user u "
            "JOIN spf_user_districts ud ON ud.user_id = u.id WHERE u.username LIKE 'frontdesk\\_%%' "
            "GROUP BY ud.location_id",
            [],
        )
        cursor.execute(
            "CREATE TEMPORARY TABLE scale_officers ON COMMIT DROP AS "
            "SELECT a.id AS agency_id, u.id AS user_id FROM programmes_agency a "
            "JOIN spf_user u ON u.username = 'officer_' || lower(a.code)"
        )
        # The suggestions the sweep has just made (this run or an earlier one that stopped before this step).
        cursor.execute(
            "CREATE TEMPORARY TABLE scale_spread ON COMMIT DROP AS "
            f"SELECT r.id, r.district_id, r.agency_id, f.status AS fate, {bucket} AS bucket, p.referral_sla_days AS sla, "
            f"%s::timestamptz - make_interval(days => f.least_days + {age}, hours => ({bucket} %% 8)) AS suggested "
            "FROM referrals_referral r JOIN scale_fates f ON "
            f"{bucket} BETWEEN f.lo AND f.hi JOIN programmes_programme p ON p.id = r.programme_id "
            "WHERE r.source = 'automatic' AND r.status = 'draft' AND r.created_at > %s::timestamptz - interval '1 day'",
            [now, now],
        )
        cursor.execute("SELECT COUNT(*) FROM scale_spread")
        spread = cursor.fetchone()[0]
        cursor.execute("CREATE INDEX ON scale_spread (id)")
        cursor.execute("ANALYZE scale_spread")
        cursor.execute(
            "CREATE TEMPORARY TABLE scale_moves ON COMMIT DROP AS "
            "SELECT s.id, s.district_id, s.agency_id, st.n, st.from_status, st.to_status, st.who, "
            "s.suggested + make_interval(days => COALESCE(st.days, 2 + s.sla + 30)) AS at, "
            "CASE WHEN st.to_status = 'rejected' THEN "
            f"({rejections})[1 + (s.bucket %% {len(REJECTION_REASONS)})] ELSE '' END AS rejection_reason "
            "FROM scale_spread s JOIN scale_steps st ON st.fate = s.fate",
            [],
        )
        cursor.execute("CREATE INDEX ON scale_moves (id, n)")
        cursor.execute("ANALYZE scale_moves")
        cursor.execute(
            "INSERT INTO referrals_referralevent (referral_id, from_status, to_status, actor_id, agency_id, reason, "
            "rejection_reason, idempotency_key, changes, at) "
            "SELECT m.id, m.from_status, m.to_status, "
            "CASE m.who WHEN 'window' THEN d.user_id WHEN 'agency' THEN o.user_id END, "
            "CASE WHEN m.who = 'agency' THEN m.agency_id END, rs.reason, m.rejection_reason, '', '{}'::jsonb, m.at "
            "FROM scale_moves m JOIN scale_reasons rs ON rs.status = m.to_status "
            "LEFT JOIN scale_desks d ON d.district_id = m.district_id "
            "LEFT JOIN scale_officers o ON o.agency_id = m.agency_id"
        )
        events = cursor.rowcount
        # The suggestion's own event is as old as the suggestion.
        cursor.execute(
            "UPDATE referrals_referralevent e SET at = s.suggested FROM scale_spread s "
            "WHERE e.referral_id = s.id AND e.from_status = '' AND e.to_status = 'draft'"
        )
        cursor.execute(
            "UPDATE referrals_referral r SET status = s.fate, created_at = s.suggested, "
            "sent_at = sent.at, due_date = (sent.at AT TIME ZONE %s)::date + s.sla, "
            "closed_at = CASE WHEN s.fate IN ('cancelled', 'completed', 'rejected', 'expired') THEN last.at END, "
            "rejection_reason = COALESCE(last.rejection_reason, ''), "
            "status_note = COALESCE(rs.reason, ''), updated_at = COALESCE(last.at, s.suggested), "
            "overdue_since = CASE WHEN s.fate IN ('sent', 'received', 'accepted') "
            "AND (sent.at AT TIME ZONE %s)::date + s.sla < (%s::timestamptz AT TIME ZONE %s)::date "
            "THEN (sent.at AT TIME ZONE %s)::date + s.sla + 1 END "
            "FROM scale_spread s "
            "LEFT JOIN scale_moves sent ON sent.id = s.id AND sent.to_status = 'sent' "
            "LEFT JOIN LATERAL (SELECT m.at, m.rejection_reason FROM scale_moves m WHERE m.id = s.id "
            "ORDER BY m.n DESC LIMIT 1) last ON true "
            "LEFT JOIN scale_reasons rs ON rs.status = s.fate "
            "WHERE r.id = s.id",
            [_tz(), _tz(), now, _tz(), _tz()],
        )
        moved = cursor.rowcount
        cursor.execute("SELECT status, COUNT(*) FROM referrals_referral GROUP BY status ORDER BY status")
        by_status = dict(cursor.fetchall())
    return {
        "wrote": bool(swept.created or moved),
        "created_by_sweep": swept.created,
        "followed_up": spread,
        "events_written": events,
        "by_status": by_status,
    }


def _tz() -> str:
    from django.conf import settings

    return settings.TIME_ZONE


def build_payments() -> dict:
    from payments.demo import _run_cycle
    from payments.models import Payment, PaymentCycle

    maker, checker = bench("payroll").users()
    ran = []
    for programme in paying_programmes():
        if not programme.enrolments.exists():
            continue
        for period_start in cycle_periods():
            if PaymentCycle.objects.filter(programme=programme, period_start=period_start).exists():
                continue
            started = time.perf_counter()
            # The demo's cycle, through the real services: create, reissue the last cycle's failures,
            # generate, approve (the other officer), export each channel, reconcile the provider's file.
            cycle = _run_cycle(programme=programme, period_start=period_start, maker=maker, checker=checker)
            ran.append(
                {
                    "programme": programme.code,
                    "period": f"{period_start:%Y-%m}",
                    "payments": cycle.payment_count,
                    "status": cycle.status,
                    "seconds": round(time.perf_counter() - started, 1),
                }
            )
            print(f"   cycle {programme.code} {period_start:%Y-%m}: {cycle.payment_count:,} payments, {ran[-1]}")
    from django.db.models import Count

    by_status = dict(Payment.objects.values_list("status").annotate(n=Count("pk")).order_by())
    return {
        "wrote": bool(ran),
        "cycles_run": len(ran),
        "cycle_seconds": [r["seconds"] for r in ran],
        "payments_by_status": by_status,
    }


def build_grievances(households: int) -> dict:
    import zlib

    from django.core.exceptions import ValidationError

    from grievances.models import Grievance
    from grievances.services import grievance_acknowledge, grievance_close, grievance_register, grievance_resolve
    from registry.models import Household, HouseholdStatus
    from spf.models import User

    wanted = households // HOUSEHOLDS_PER_GRIEVANCE
    have = Grievance.objects.count()
    if have >= wanted:
        return {"wrote": False, "grievances": have}
    desks = {}
    for user in User.objects.filter(username__startswith="frontdesk_").prefetch_related("districts"):
        for district in user.districts.all():
            desks.setdefault(district.pk, user)
    # Households spread over the registry: every k-th by id.
    step = max(1, Household.objects.count() // wanted)
    ids = list(
        Household.objects.filter(status=HouseholdStatus.ACTIVE)
        .order_by("pk")
        .values_list("pk", flat=True)[have * step :: step][: wanted - have]
    )
    made = 0
    for household in Household.objects.filter(pk__in=ids).select_related("head", "district").order_by("pk"):
        desk = desks.get(household.district_id)
        if desk is None or household.head is None:
            continue
        bucket = zlib.crc32(f"grievance:{household.number}".encode()) % 100
        category, description = _grievance_kind(bucket)
        grievance = grievance_register(
            acting_user=desk,
            category=category,
            description=description,
            household=household,
            complainant=household.head,
            channel="walk_in" if bucket % 3 else "phone",
        )
        try:
            if bucket < 80:
                grievance = grievance_acknowledge(acting_user=desk, grievance=grievance)
            if bucket < 55 and category not in ("staff_conduct", "fraud"):
                grievance = grievance_resolve(
                    acting_user=desk, grievance=grievance, resolution="Checked with the records and explained."
                )
            if bucket < 35 and category not in ("staff_conduct", "fraud"):
                grievance_close(acting_user=desk, grievance=grievance, accepted=bucket % 5 != 0)
        except ValidationError as problem:
            print(f"   grievance {grievance.pk}: {problem}")
        made += 1
    return {"wrote": bool(made), "grievances": Grievance.objects.count(), "added": made}


def _grievance_kind(bucket: int) -> tuple[str, str]:
    share = 0
    for percent, category, description in GRIEVANCE_CATEGORIES:
        share += percent
        if bucket < share:
            return category, description
    return GRIEVANCE_CATEGORIES[-1][1:]


def build_summaries() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        # The statistics autovacuum would have gathered after the bulk steps above (it is off on the bench
        # server): the refresh's queries are planned from them.
        cursor.execute("ANALYZE")
    runs = bench("dashboard").measure_refresh()
    return {"districts": runs}


def database_state() -> dict:
    """What the database holds: rows of the main tables (estimated where counting would take long) and size."""
    from django.db import connection

    from registry.models import Household

    tables = {
        "households": "registry_household",
        "people": "registry_member",
        "eligibility results": "programmes_eligibilityresult",
        "eligibility changes": "programmes_eligibilitychange",
        "referrals": "referrals_referral",
        "referral events": "referrals_referralevent",
        "enrolments": "payments_enrolment",
        "payment cycles": "payments_paymentcycle",
        "payments": "payments_payment",
        "payment events": "payments_paymentevent",
        "reconciliation rows": "payments_reconciliationrow",
        "grievances": "grievances_grievance",
        "history entries": "registry_changeentry",
    }
    state: dict = {}
    with connection.cursor() as cursor:
        for label, table in tables.items():
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            state[label] = cursor.fetchone()[0]
        cursor.execute("SELECT pg_database_size(current_database())")
        state["database size"] = f"{cursor.fetchone()[0] / (1 << 30):.1f} GB"
        cursor.execute("SELECT status, COUNT(*) FROM referrals_referral GROUP BY status ORDER BY status")
        state["referrals by status"] = dict(cursor.fetchall())
        cursor.execute(
            "SELECT p.code, COUNT(*) FROM payments_enrolment e JOIN programmes_programme p ON p.id = e.programme_id "
            "WHERE e.status = 'active' GROUP BY p.code ORDER BY p.code"
        )
        state["active enrolments by programme"] = dict(cursor.fetchall())
        cursor.execute("SELECT status, COUNT(*) FROM payments_payment GROUP BY status ORDER BY status")
        state["payments by status"] = dict(cursor.fetchall())
        cursor.execute("SELECT COUNT(*) FROM programmes_programme WHERE status = 'active'")
        state["active programmes"] = cursor.fetchone()[0]
    state["districts"] = Household.objects.values("district_id").distinct().count()
    return state


# --- the figures ---------------------------------------------------------------------------------


def summarise(samples: list[float]) -> dict:
    return bench("search").summarise(samples)


def measure_search(options, entry: dict) -> dict:
    """Search by number, national ID, phone and misspelt name, and the household page: bench/search.py."""
    measured = bench("search").measure(SimpleNamespace(seed=options.seed, queries=options.queries))
    keys = {
        "household number": "search_number",
        "national ID": "search_id",
        "phone": "search_phone",
        "fuzzy name": "search_name",
    }
    figures = {}
    for kind, row in measured.items():
        if kind == "people":
            continue
        key = keys.get(kind, "page")
        figures[key] = {**row, "what": kind}
        print(f"   {kind}: {row}")
    return figures


def measure_recompute(options, entry: dict) -> dict:
    """A full run over every active programme and household, as the nightly job does (nothing has changed)."""
    row = bench("eligibility").full_recompute("measured: every programme, every household")
    print(f"   {row}")
    return {"recompute": row}


def measure_dashboard(options, entry: dict) -> dict:
    """bench/dashboard.py's variants of the page, and the households behind figures, as they are."""
    dashboard = bench("dashboard")
    pages = dashboard.measure_pages(options.requests)
    lists = dashboard.measure_lists()
    every_list = [row for row in lists.values()]
    return {
        "dashboard": {**pages.pop("all requests"), "variants": pages},
        "dashboard_lists": {
            # The lists' samples are not kept, only their figures: the slowest list's p95 stands for all.
            "n": sum(row["n"] for row in every_list),
            "p50": statistics.median(row["p50"] for row in every_list),
            "p95": max(row["p95"] for row in every_list),
            "max": max(row["max"] for row in every_list),
            "lists": lists,
        },
    }


def measure_payroll(options, entry: dict) -> dict:
    """This month's payroll of every paying programme: generation, files, the provider's answer; then removed.

    The cycle after the year of cycles the build ran: the same services, the
    database as it is (a year of payments in the tables). Removed afterwards so
    that a second measurement finds the database as the first did.
    """
    from django.db import connection
    from django.utils import timezone

    from payments.models import PaymentChannel
    from payments.payroll import payment_cycle_create, payroll_approve, payroll_export, payroll_generate
    from payments.reconciliation import reconciliation_import

    payroll = bench("payroll")
    maker, checker = payroll.users()
    period = timezone.localdate().replace(day=1)
    figures = {"generation": 0.0, "export": 0.0, "reconciliation": 0.0}
    detail = []
    statements = {"generation": [], "reconciliation": []}
    for programme in paying_programmes():
        if not programme.enrolments.exists():
            continue
        remove_cycle(programme, period)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE payments_payment")
        cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=period)
        try:
            started = time.perf_counter()
            with payroll.record_statements(statements["generation"]):
                report = payroll_generate(acting_user=maker, cycle=cycle)
            generation = time.perf_counter() - started
            cycle = payroll_approve(acting_user=checker, cycle=cycle)
            started = time.perf_counter()
            files = {}
            for channel in PaymentChannel.values:
                _name, files[channel] = payroll_export(acting_user=maker, cycle=cycle, channel=channel)
            export = time.perf_counter() - started
            content = payroll.provider_file(files)
            started = time.perf_counter()
            with payroll.record_statements(statements["reconciliation"]):
                reconciled = reconciliation_import(
                    acting_user=maker, cycle=cycle, file_name="provider.csv", content=content
                )
            reconciliation = time.perf_counter() - started
        finally:
            remove_cycle(programme, period)
        figures["generation"] += generation
        figures["export"] += export
        figures["reconciliation"] += reconciliation
        detail.append(
            {
                "programme": programme.code,
                "payments": report.created,
                "total": f"{report.total_amount:.2f}",
                "generation_seconds": round(generation, 2),
                "export_seconds": round(export, 2),
                "reconciliation_rows": reconciled.rows_total,
                "reconciliation_seconds": round(reconciliation, 2),
                "outcomes": {k: v for k, v in reconciled.summary["outcomes"].items() if v},
            }
        )
        print(f"   {detail[-1]}")
    payments = sum(row["payments"] for row in detail)
    rows = sum(row["reconciliation_rows"] for row in detail)
    return {
        "payroll": {
            "seconds": round(figures["generation"], 2),
            "payments": payments,
            "export_seconds": round(figures["export"], 2),
            "programmes": detail,
            "slowest": payroll.slowest(statements["generation"], 4),
        },
        "reconciliation": {
            "seconds": round(figures["reconciliation"], 2),
            "rows": rows,
            "slowest": payroll.slowest(statements["reconciliation"], 4),
        },
    }


def remove_cycle(programme, period: datetime.date) -> None:
    """A measured cycle and everything it wrote (a benchmark's own cycle only)."""
    from django.db import connection, transaction

    from payments.models import PaymentCycle

    cycle = PaymentCycle.objects.filter(programme=programme, period_start=period).first()
    if cycle is None:
        return
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in (
            "DELETE FROM payments_reconciliationrow WHERE reconciliation_id IN "
            "(SELECT id FROM payments_reconciliation WHERE cycle_id = %s)",
            "DELETE FROM payments_paymentevent WHERE payment_id IN (SELECT id FROM payments_payment WHERE cycle_id = %s)",
            "DELETE FROM payments_reconciliation WHERE cycle_id = %s",
            "DELETE FROM payments_enrolmentevent WHERE cycle_id = %s",
            "DELETE FROM payments_payment WHERE cycle_id = %s",
            "DELETE FROM payments_cycleevent WHERE cycle_id = %s",
            "DELETE FROM payments_paymentcycle WHERE id = %s",
        ):
            cursor.execute(statement, [cycle.pk])


def measure_import(options, entry: dict) -> dict:
    """100,000 households imported into Samfya, a district of the database, then removed.

    Through the worker's path, `import_job_run`: every row checked (the national
    IDs against the registry, the likely duplicates against every person
    registered in the district), the good households written, and the row-level
    error report. The eligibility re-assessment it asks for is left out (the
    worker's next job, not the import). The imported households are deleted
    afterwards: the database keeps its size.
    """
    from django.conf import settings
    from django.core.files import File
    from django.db import connection
    from django.db.models import Max, Min

    from programmes.receivers import reassess_changed_households
    from registry import imports
    from registry.countries import current_country
    from registry.imports import import_error_report_csv, import_job_run
    from registry.models import ChangeEntry, Household, ImportJob, ImportMode, ImportStatus, Location, LocationLevel
    from registry.signals import households_changed
    from spf.models import Role, User

    district = Location.objects.get(level=LocationLevel.DISTRICT, name=IMPORT_DISTRICT)
    officer, _ = User.objects.get_or_create(username="bench_import_officer", defaults={"role": Role.FRONT_DESK})
    officer.districts.set([district])
    villages = list(
        Location.objects.filter(level=LocationLevel.VILLAGE, parent__parent=district).values_list("code", flat=True)
    )
    # What an interrupted run left: the households its import wrote, the district's newest.
    left = ChangeEntry.objects.filter(import_job__created_by=officer, entity="household").aggregate(
        first=Min("household_id")
    )["first"]
    removed = remove_households(district_id=district.pk, after_id=left - 1) if left else 0
    ImportJob.objects.filter(created_by=officer).delete()
    district_households = Household.objects.filter(district=district).count()
    last_id = Household.objects.aggregate(last=Max("pk"))["last"] or 0
    with tempfile.TemporaryDirectory() as folder:
        settings.MEDIA_ROOT = folder
        path = Path(folder) / "households.csv"
        rows = bench("import_bench").write_file(
            path,
            households=IMPORT_HOUSEHOLDS,
            seed=options.seed,
            villages=villages,
            country=current_country(),
            bad_every=IMPORT_BAD_EVERY,
        )
        with open(path, "rb") as handle:
            job = ImportJob(original_name="households.csv", created_by=officer, mode=ImportMode.GOOD_ROWS)
            job.uploaded_file.save("households.csv", File(handle), save=False)
            job.save()
        households_changed.disconnect(reassess_changed_households)
        # The likely-duplicate check's share of the time, by wrapping the function the job calls.
        check, checked = imports._likely_duplicates, {}

        def timed_check(*args, **kwargs):
            started = time.perf_counter()
            found = check(*args, **kwargs)
            checked["seconds"] = time.perf_counter() - started
            return found

        imports._likely_duplicates = timed_check
        try:
            started = time.perf_counter()
            job = import_job_run(job_id=job.pk)
            report = import_error_report_csv(job=job)
            seconds = time.perf_counter() - started
        finally:
            households_changed.connect(reassess_changed_households)
            imports._likely_duplicates = check
    print(
        f"   import into {IMPORT_DISTRICT} ({district_households:,} households): {job.status}, {job.households_created:,} households, "
        f"{job.members_created:,} members, {job.error_count:,} errors, {job.duplicate_count:,} likely duplicates, "
        f"{seconds:.1f} s, of which the likely-duplicate check {checked.get('seconds', 0):.1f} s"
    )
    if job.status != ImportStatus.DONE:
        raise SystemExit(f"The import did not finish: {job.status} {job.message}")
    started = time.perf_counter()
    removed += remove_households(district_id=district.pk, after_id=last_id)
    ImportJob.objects.filter(pk=job.pk).delete()
    with connection.cursor() as cursor:
        for table in ("registry_household", "registry_member", "registry_changeentry"):
            cursor.execute(f"VACUUM ANALYZE {table}")
    print(f"   removed {removed:,} imported households in {time.perf_counter() - started:.1f} s")
    return {
        "import": {
            "seconds": round(seconds, 1),
            "rows": rows,
            "district_households": district_households,
            "households": job.households_created,
            "members": job.members_created,
            "errors": job.error_count,
            "error_report_lines": report.count("\n") - 1,
            "duplicates": job.duplicate_count,
            "duplicate_check_seconds": round(checked.get("seconds", 0), 1),
        },
    }


def remove_households(*, district_id: int, after_id: int) -> int:
    """Delete the district's households with ids above `after_id`, their people and whatever names them."""
    from django.db import connection, transaction

    from registry.models import Household

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE scale_gone ON COMMIT DROP AS "
            "SELECT id FROM registry_household WHERE id > %s AND district_id = %s",
            [after_id, district_id],
        )
        cursor.execute("SELECT COUNT(*) FROM scale_gone")
        count = cursor.fetchone()[0]
        delete_with_dependents(cursor, Household, "SELECT id FROM scale_gone")
    return count


def delete_with_dependents(cursor, model, ids_sql: str, *, path: tuple = (), names: list | None = None) -> None:
    """Delete the rows of `model` whose id `ids_sql` selects, after every row that names them (a bench's clean-up).

    Rows that name them through a nullable SET_NULL key, or through a key back to
    a model being deleted (a household's head), have the key cleared instead.
    """
    from django.db import models

    names = [] if names is None else names
    table, pk = model._meta.db_table, model._meta.pk.column
    for relation in model._meta.related_objects:
        if relation.many_to_many:
            continue
        related, column = relation.related_model, relation.field.column
        related_table = related._meta.db_table
        if relation.on_delete is models.SET_NULL or related in (*path, model):
            if relation.field.null:
                cursor.execute(f"UPDATE {related_table} SET {column} = NULL WHERE {column} IN ({ids_sql})")
            continue
        names.append(f"scale_gone_{len(names)}")
        cursor.execute(
            f"CREATE TEMPORARY TABLE {names[-1]} ON COMMIT DROP AS "
            f"SELECT {related._meta.pk.column} AS id FROM {related_table} WHERE {column} IN ({ids_sql})"
        )
        delete_with_dependents(cursor, related, f"SELECT id FROM {names[-1]}", path=(*path, model), names=names)
    cursor.execute(f"DELETE FROM {table} WHERE {pk} IN ({ids_sql})")


def measure_load(options, entry: dict) -> dict:
    load = bench("load")
    runs = load.measure(
        users=[int(n) for n in options.load_users.split(",") if n.strip()],
        seconds=options.load_seconds,
        workers=options.load_workers,
        seed=options.seed,
    )
    return {"load": {"runs": runs, "workers": options.load_workers, "seconds": options.load_seconds}}


MEASURES = {
    "search": measure_search,
    "recompute": measure_recompute,
    "dashboard": measure_dashboard,
    "payroll": measure_payroll,
    "import": measure_import,
    "load": measure_load,
}


# --- the report ------------------------------------------------------------------------------


# (key, what, unit, target): the design's table, one row per figure measured.
ROWS = (
    ("search_number", "front-desk search by household number, p95", "ms", 50),
    ("search_id", "front-desk search by national ID, p95", "ms", 50),
    ("search_phone", "front-desk search by phone, p95", "ms", 50),
    ("search_name", "front-desk search by a misspelt name, p95", "ms", 50),
    ("page", "household page with eligibility for every programme, p95", "ms", 100),
    ("recompute", "full eligibility recompute, 10 programmes (the nightly run)", "s", 30),
    ("recompute_from_empty", "full eligibility recompute, 10 programmes, from empty (the build's first)", "s", 30),
    ("import", "bulk import of 100,000 households, with the row-level error report", "s", 60),
    ("payroll", "payroll for one household in five (200,000 at a million)", "s", 10),
    ("reconciliation", "reconciliation of the provider's file, a row per payment", "s", 30),
    ("dashboard", "district dashboard, every variant, p95", "ms", 200),
    ("dashboard_lists", "households behind a dashboard figure, p95 (of the slowest list)", "ms", 200),
)


def figure_value(entry: dict, key: str) -> tuple[float | None, str]:
    """The figure compared with its target, and how it is shown."""
    if key == "recompute_from_empty":
        build = entry.get("build", {}).get("eligibility", {})
        if not build.get("from_empty"):
            return None, ""
        return build["seconds"], f"{build['seconds']:,.1f} s"
    row = entry.get("figures", {}).get(key)
    if not row:
        return None, ""
    if "p95" in row:
        return row["p95"], f"{row['p50']} / **{row['p95']}** ms"
    return row["seconds"], f"**{row['seconds']:,.1f}** s"


def growth(small: float | None, large: float | None) -> str:
    """How a figure grows from 100,000 to 1,000,000 households (ten times the registry)."""
    if not small or large is None:
        return ""
    ratio = large / small
    if ratio < 1.5:
        word = "flat"
    elif ratio < 7:
        word = "sub-linear"
    elif ratio <= 14:
        word = "linear"
    else:
        word = "worse than linear"
    return f"×{ratio:.1f} {word}"


def write_report(results: dict) -> None:
    by_size = {int(k): v for k, v in results.items()}
    columns = [size for size in SIZES if size in by_size] + sorted(set(by_size) - set(SIZES))
    lines = [
        "# Benchmarks",
        "",
        "Every figure of the design's performance table (`../shared/DESIGN.md`), measured by one command on a",
        "PostgreSQL database built for it, at 100,000 and at 1,000,000 households. Written by `bench/million.py`",
        "from `bench/million-results.json`; the text after the tables is `bench/million-notes.md`. How to run it,",
        "and the other benchmarks, in `bench/README.md`:",
        "",
        "```sh",
        ".venv/bin/python bench/million.py --households 1000000               # build (or reuse), then measure all",
        ".venv/bin/python bench/million.py --households 1000000 --measure-only --only search,page,payroll",
        "make bench-all HOUSEHOLDS=1000000",
        "```",
        "",
        "Targets are the design's, at a million households on a 2-core machine. A latency is p50 / **p95** of",
        "requests or calls measured one after another in one process (warm database); a job is its total time.",
        "Growth is the 1,000,000 figure over the 100,000 one (ten times the registry): flat below ×1.5,",
        "sub-linear below ×7, linear to ×14, worse above. The load average (1, 5, 15 minutes) before each figure",
        "is in the detail: a figure measured while something else ran on the machine says so there.",
        "",
        "## Every figure",
        "",
        "| figure | target | "
        + " | ".join(f"{size:,} households" for size in columns)
        + " | met at the largest | growth |",
        "| --- | ---: | " + " | ".join("---:" for _ in columns) + " | :---: | --- |",
    ]
    for key, what, unit, target in ROWS:
        values = [figure_value(by_size[size], key) for size in columns]
        if not any(text for _value, text in values):
            continue
        last = values[-1][0]
        met = "" if last is None else ("yes" if last <= target else "**no**")
        grown = growth(values[0][0], values[-1][0]) if len(columns) > 1 else ""
        lines.append(
            f"| {what} | ≤ {target} {unit} | "
            + " | ".join(text or "—" for _v, text in values)
            + f" | {met} | {grown} |"
        )
    lines.append("")
    for size in columns:
        lines += _size_section(by_size[size], size)
    if any(by_size[size].get("figures", {}).get("load") for size in columns):
        lines += ["## Load test (`bench/load.py`)", ""]
        lines += bench("load").report_lines(
            {size: by_size[size]["figures"]["load"] for size in columns if "load" in by_size[size].get("figures", {})}
        )
    if NOTES.exists():
        lines += [NOTES.read_text().rstrip(), ""]
    lines += [
        "## The other benchmarks",
        "",
        "Each part was first measured alone, on its own database, by its own script; their results and the",
        "analysis of what was changed to meet the targets:",
        "",
    ]
    for path in sorted((ROOT / "bench").glob("*-results.md")):
        title = next((line.lstrip("# ").strip() for line in path.read_text().splitlines() if line.startswith("#")), "")
        lines.append(f"- [`bench/{path.name}`](../bench/{path.name}): {title}")
    lines.append("")
    REPORT.write_text("\n".join(lines))


def _size_section(entry: dict, size: int) -> list[str]:
    m = entry.get("machine", {})
    state = entry.get("state", {})
    build = entry.get("build", {})
    pg = m.get("postgresql_settings", {})
    lines = [
        f"## {size:,} households: `{entry.get('database', '')}`",
        "",
        f"- Machine: {m.get('cores')} cores ({m.get('cpu')}), {m.get('memory_gb')} GB memory, Python {m.get('python')}",
        f"- PostgreSQL {m.get('postgresql', '')}: " + ", ".join(f"{k} {v}" for k, v in pg.items()),
        f"- Set in the server's configuration file: {', '.join(m.get('postgresql_changed', [])) or 'nothing'}"
        + (
            " (autovacuum is off on this server: the build ends with `VACUUM ANALYZE`)"
            if "autovacuum off" in m.get("postgresql_changed", [])
            else ""
        ),
        "- Holds: "
        + ", ".join(
            f"{value:,} {label}" if isinstance(value, int) else f"{label} {value}"
            for label, value in state.items()
            if not isinstance(value, dict)
        ),
    ]
    for label in ("active enrolments by programme", "referrals by status", "payments by status"):
        if state.get(label):
            lines.append(f"- {label.capitalize()}: " + ", ".join(f"{k} {v:,}" for k, v in state[label].items()))
    if build:
        lines += [
            "",
            f"Built {build.get('_started', '')} – {build.get('_finished', '')}"
            + (f" ({build['_seconds']:,.0f} s of this command's last build run)" if build.get("_seconds") else "")
            + ". Each step, when it last did its work:",
            "",
            "| build step | seconds | load before | when | what |",
            "| --- | ---: | --- | --- | --- |",
        ]
        for name in (
            "population",
            "catalogue",
            "eligibility",
            "enrolments",
            "referrals",
            "payments",
            "grievances",
            "summaries",
            "vacuum",
        ):
            step = build.get(name)
            if not step:
                continue
            what = _step_words(name, step) + (f" ({step['note']})" if step.get("note") else "")
            lines.append(
                f"| {name} | {step['seconds']:,.1f} | {fmt_load(step.get('load_before', []))} | {step.get('date', '')} | {what} |"
            )
    figures = entry.get("figures", {})
    latency = [key for key, *_ in ROWS if "p95" in figures.get(key, {})]
    if latency:
        lines += [
            "",
            "| latency | n | p50 ms | p95 ms | max ms | load before | load after | when |",
            "| --- | ---: | ---: | ---: | ---: | --- | --- | --- |",
        ]
        for key in latency:
            row = figures[key]
            what = next(w for k, w, *_ in ROWS if k == key)
            lines.append(
                f"| {what} | {row['n']} | {row['p50']} | {row['p95']} | {row['max']} | "
                f"{fmt_load(row['load_before'])} | {fmt_load(row['load_after'])} | {row['date']} |"
            )
        for key in ("search_name",):
            if "found" in figures.get(key, {}):
                lines += ["", f"A misspelt name found the intended person in {figures[key]['found']:.0%} of searches."]
        variants = figures.get("dashboard", {}).get("variants")
        if variants:
            lines += [
                "",
                "The dashboard's variants (`bench/dashboard.py`), and the lists of households behind figures:",
                "",
                "| variant | n | p50 ms | p95 ms | max ms |",
                "| --- | ---: | ---: | ---: | ---: |",
            ]
            for label, row in {**variants, **figures.get("dashboard_lists", {}).get("lists", {})}.items():
                lines.append(f"| {label} | {row['n']} | {row['p50']} | {row['p95']} | {row['max']} |")
    totals = [key for key, *_ in ROWS if "seconds" in figures.get(key, {})]
    if totals:
        lines += [
            "",
            "| job | seconds | what | load before | load after | when |",
            "| --- | ---: | --- | --- | --- | --- |",
        ]
        for key in totals:
            row = figures[key]
            what = next(w for k, w, *_ in ROWS if k == key)
            lines.append(
                f"| {what} | {row['seconds']:,.1f} | {_figure_words(key, row)} | {fmt_load(row['load_before'])} | "
                f"{fmt_load(row['load_after'])} | {row['date']} |"
            )
    lines.append("")
    return lines


def _step_words(name: str, step: dict) -> str:
    if name == "population":
        return f"{step.get('households', 0):,} households ({step.get('households_before', 0):,} before)"
    if name == "catalogue":
        return ", ".join(step.get("programmes", []))
    if name == "eligibility":
        if "assessments" in step:
            return f"{step['label']}: {step['assessments']:,} assessments, {step['results_written']:,} results written"
        return ""
    if name == "enrolments":
        return "active: " + ", ".join(f"{k} {v:,}" for k, v in step.get("active_by_programme", {}).items())
    if name == "referrals":
        return (
            f"{step.get('created_by_sweep', 0):,} suggested by the sweep, {step.get('followed_up', 0):,} followed up "
            f"({step.get('events_written', 0):,} events)"
        )
    if name == "payments":
        seconds = step.get("cycle_seconds", [])
        return f"{step.get('cycles_run', 0)} cycles" + (
            f", {statistics.median(seconds):.0f} s each (median)" if seconds else ""
        )
    if name == "grievances":
        return f"{step.get('grievances', 0):,} grievances"
    if name == "summaries":
        return ", ".join(f"{d['district']} {d['seconds']} s" for d in step.get("districts", []))
    return ""


def _figure_words(key: str, row: dict) -> str:
    if key == "recompute":
        return (
            f"{row.get('assessments', 0):,} assessments, {row.get('results_written', 0):,} results written, "
            f"{row.get('change_events', 0):,} change events"
        )
    if key == "import":
        into = (
            f"into {IMPORT_DISTRICT}'s {row['district_households']:,} households"
            if "district_households" in row
            else ""
        )
        return (
            f"{row['rows']:,} rows {into}: {row['households']:,} households and {row['members']:,} people written, "
            f"{row['errors']:,} row errors reported, {row['duplicates']:,} likely duplicates flagged"
            + (f" (the check {row['duplicate_check_seconds']} s)" if "duplicate_check_seconds" in row else "")
        )
    if key == "payroll":
        return f"{row['payments']:,} payments ({', '.join(p['programme'] for p in row['programmes'])}); files {row['export_seconds']} s"
    if key == "reconciliation":
        return f"{row['rows']:,} rows"
    return ""


if __name__ == "__main__":
    main()
