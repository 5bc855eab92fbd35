"""The district committee dashboard at a million households: the summary job, then the page's p95.

    .venv/bin/python bench/dashboard.py --database-name spf_bench [--requests 100] [--skip-refresh]

The database must hold a seeded population with eligibility results (`bench/search.py`,
`bench/eligibility.py`, `bench/referrals.py` leave one). The script adds the dashboard's summary
tables (`migrate dashboard`) and changes nothing else: it reads the registry, eligibility,
referrals, payments and grievances as they are.

1. The summary job (`dashboard.summaries.summaries_refresh_district`, what beat runs every 30
   minutes) rebuilds every district's summaries, timed, with the rows it writes.
2. The page, `GET /dashboard/` through Django's test client (the whole request: session, scope,
   form, every query, the template), as `committee_samfya` (one district) and `ministry_admin`
   (every district, or two compared), with the splits and filters a committee uses, and the API.
   Each variant is requested `--requests` times after five warm-up requests; p50, p95 and max.
3. The same pages with a busy year in Samfya's summaries: the benchmark population has no
   enrolments, payments or grievances and its referrals were never sent, so the summaries of
   those sections are nearly empty. Summary rows for a year of referrals, acceptances, payments
   and grievances are inserted in a transaction that is rolled back after the measurement
   (nothing stays): every ward, kind of household, group of people, programme (or category),
   state and month has some, acceptances on 16 different numbers of days, payments paid on 7
   days of each cycle, grievances resolved on 23 — more filled cells than a real district's year.
4. The first page of the households behind a few figures (live queries on the registry), for
   information: the target is the dashboard's.

Results go to `bench/dashboard-results.json` and `bench/dashboard-results.md`, which
`docs/benchmarks.md` links to (bench/million.py measures the page and the lists with the
functions here, on its own database).
Do not run it while another benchmark uses the same database: they compete for the same two cores.
"""

import argparse
import datetime
import importlib.util
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "dashboard-results.json"
REPORT = ROOT / "bench" / "dashboard-results.md"
TARGET_MS = 200
WARM_UP = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-name", default="spf_bench")
    parser.add_argument("--database-host", default=os.environ.get("BENCH_DATABASE_HOST", "postgres@127.0.0.1:5432"))
    parser.add_argument("--requests", type=int, default=100, help="Timed requests per variant of the page.")
    parser.add_argument("--skip-refresh", action="store_true", help="Reuse the summaries already there.")
    options = parser.parse_args()

    os.environ["DATABASE_URL"] = f"postgres://{options.database_host}/{options.database_name}"
    # The test settings: any host for the test client, no broker (nothing queued to a worker).
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spf.settings.test")
    os.environ["CELERY_BROKER_URL"] = ""
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.core import signals
    from django.core.management import call_command
    from django.db import close_old_connections
    from django.utils import timezone

    from registry.models import Household, Member

    # One connection for the whole run, as the test runner does: the busy year lives in a
    # transaction that the request machinery must not close.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)

    call_command("migrate", "dashboard", verbosity=0)
    search = _bench_search()
    entry = {
        "database": options.database_name,
        "households": Household.objects.count(),
        "people": Member.objects.filter(status="present").count(),
        "date": timezone.localtime().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": search.machine(),
        "requests": options.requests,
        "load_before": os.getloadavg(),
    }
    print(f"{entry['households']:,} households, {entry['people']:,} people; load {_load(entry['load_before'])}")
    if not options.skip_refresh:
        entry["refresh"] = measure_refresh()
    analyze()
    entry["tally_rows"] = tally_rows()
    entry["pages"] = measure_pages(options.requests)
    entry["busy"] = measure_busy_year(options.requests)
    entry["lists"] = measure_lists()
    entry["load_after"] = os.getloadavg()
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if options.skip_refresh and "refresh" in previous.get(options.database_name, {}):
        entry["refresh"] = previous[options.database_name]["refresh"]
        entry["refresh_note"] = "from the previous run (--skip-refresh)"
    previous[options.database_name] = entry
    RESULTS.write_text(json.dumps(previous, indent=1, sort_keys=True, default=str) + "\n")
    write_markdown(entry)
    print(f"Written {REPORT.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}.")


def _bench_search():
    spec = importlib.util.spec_from_file_location("bench_search", ROOT / "bench" / "search.py")
    search = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search)
    return search


def _load(load: tuple) -> str:
    return ", ".join(f"{value:.2f}" for value in load)


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # VACUUM too: each busy year is hundreds of thousands of rows written and rolled back, and their
        # dead index entries made a second run's queries read ten times as many pages.
        cursor.execute("VACUUM ANALYZE dashboard_tally")
        cursor.execute("ANALYZE dashboard_householdprofile")


def tally_rows() -> dict:
    from django.db.models import Count

    from dashboard.models import Tally

    return {row["subject"]: row["n"] for row in Tally.objects.values("subject").annotate(n=Count("pk")).order_by()}


# --- 1. the summary job ------------------------------------------------------------------------------


def measure_refresh() -> list[dict]:
    from dashboard.summaries import summaries_refresh_district, summary_district_ids
    from registry.models import Location

    runs = []
    for district_id in summary_district_ids():
        name = Location.objects.get(pk=district_id).name
        started = time.perf_counter()
        report = summaries_refresh_district(district_id=district_id)
        seconds = time.perf_counter() - started
        runs.append(
            {
                "district": name,
                "households": report.households,
                "rows": report.tallies,
                "seconds": round(seconds, 1),
                "load": os.getloadavg()[0],
            }
        )
        print(f"refresh {name}: {report.households:,} households, {report.tallies:,} rows in {seconds:.1f} s")
    return runs


# --- 2. the page -----------------------------------------------------------------------------------


def variants() -> list[tuple[str, str, str, dict]]:
    """(label, user, address, query) for each way the page is asked for."""
    from registry.models import Location

    samfya = Location.objects.get(level="district", name="Samfya")
    lunga = Location.objects.filter(level="district").exclude(pk=samfya.pk).order_by("name").first()
    ward = Location.objects.filter(level="ward", parent=samfya).order_by("name").first()
    today = datetime.date.today()
    three_years_ago = today.replace(year=today.year - 3, day=1) + datetime.timedelta(days=32)
    both = {"district": [samfya.pk, lunga.pk]}
    return [
        ("committee: the district, 12 months", "committee_samfya", "/dashboard/", {}),
        ("committee: split by ward", "committee_samfya", "/dashboard/", {"split": "ward"}),
        ("committee: split by age band", "committee_samfya", "/dashboard/", {"split": "age"}),
        ("committee: split by female-headed", "committee_samfya", "/dashboard/", {"split": "female_headed"}),
        ("committee: one ward, split by sex", "committee_samfya", "/dashboard/", {"ward": ward.pk, "split": "sex"}),
        (
            "committee: 36 months, split by disability",
            "committee_samfya",
            "/dashboard/",
            {"from": f"{three_years_ago:%Y-%m}", "split": "disability"},
        ),
        ("ministry: every district", "ministry_admin", "/dashboard/", {}),
        ("ministry: two districts compared", "ministry_admin", "/dashboard/", {**both, "split": "district"}),
        ("API: the district, split by ward", "committee_samfya", "/api/v1/dashboard/", {"split": "ward"}),
    ]


def _time_requests(user, address: str, query: dict, count: int) -> list[float]:
    from django.test import Client

    client = Client()
    client.force_login(user)
    for _ in range(WARM_UP):
        response = client.get(address, query)
        assert response.status_code == 200, (address, query, response.status_code)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(address, query)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return samples


def summarise(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered), 1),
        "p95": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 1),
        "max": round(ordered[-1], 1),
    }


def measure_pages(count: int) -> dict:
    from spf.models import User

    figures = {}
    everything = []
    for label, username, address, query in variants():
        samples = _time_requests(User.objects.get(username=username), address, query, count)
        everything += samples
        figures[label] = {**summarise(samples), "load": os.getloadavg()[0]}
        print(f"{label}: {figures[label]}")
    figures["all requests"] = summarise(everything)
    return figures


# --- 3. a busy year -----------------------------------------------------------------------------------

GROUPS = ("", "sex:F", "sex:M", "age:0-4", "age:5-17", "age:18-59", "age:60+", "disability")


def _busy_rows(district_id: int, first: datetime.date, last: datetime.date) -> int:
    """Summary rows for a year of everything, every cell filled; returns how many."""
    from django.db import connection

    # The whole (group '') by female-headed or not; the groups of people without (as the job writes them).
    groups = ", ".join(f"('{g}', {b})" for g in GROUPS for b in (("true", "false") if not g else ("false",)))
    common = (
        f"FROM (VALUES {groups}) g(grp, fh) "
        "CROSS JOIN generate_series(%(first)s::date, %(last)s::date, interval '1 month') m(month) "
        # Each cell by ward, and added up for the whole district (ward NULL), as the job keeps them.
        "CROSS JOIN (SELECT id, false AS whole FROM registry_location WHERE level = 'ward' AND parent_id = %(district)s "
        "UNION ALL SELECT NULL, true) w "
        "CROSS JOIN (SELECT id, agency_id FROM programmes_programme) p "
    )
    insert = (
        'INSERT INTO dashboard_tally (district_id, subject, "group", month, ward_id, female_headed, whole_district, '
        "programme_id, "
        "agency_id, state, category, days, count, people, overdue, timely, amount, paid_amount) "
    )
    statements = [
        # Referrals: every status of a sent referral, and the suggestions never sent (drafts, cancelled).
        insert
        + "SELECT %(district)s, 'referrals', g.grp, m.month, w.id, g.fh AND NOT w.whole, w.whole, p.id, p.agency_id, s.state, s.cat, "
        "NULL, 40, 0, 3, 0, NULL, NULL " + common + "CROSS JOIN (VALUES ('sent', 'sent'), ('received', 'sent'), "
        "('accepted', 'sent'), ('completed', 'sent'), ('rejected', 'sent'), ('expired', 'sent'), "
        "('cancelled', 'sent'), ('draft', 'not_sent'), ('cancelled', 'not_sent')) s(state, cat)",
        # Acceptances on sixteen different numbers of days: 0 to 14, and 30.
        insert
        + "SELECT %(district)s, 'acceptances', g.grp, m.month, w.id, g.fh AND NOT w.whole, w.whole, p.id, p.agency_id, '', '', d.days, "
        "6, 0, 0, 5, NULL, NULL " + common + "CROSS JOIN (SELECT generate_series(0, 14) UNION SELECT 30) d(days)",
        # Payments paid on seven different days of the period (first payments and reissues), and the other statuses.
        insert
        + "SELECT %(district)s, 'payments', g.grp, m.month, w.id, g.fh AND NOT w.whole, w.whole, p.id, NULL, 'paid', c.cat, d.days, "
        "120, 0, 0, 110, 18000, 18000 " + common + "CROSS JOIN generate_series(2, 8) d(days) "
        "CROSS JOIN (VALUES (''), ('reissue')) c(cat)",
        insert
        + "SELECT %(district)s, 'payments', g.grp, m.month, w.id, g.fh AND NOT w.whole, w.whole, p.id, NULL, s.state, '', NULL, "
        "30, 0, 0, 0, 4500, NULL " + common + "CROSS JOIN (VALUES ('failed'), ('unclaimed'), ('pending')) s(state)",
    ]
    grievance_common = common.replace(
        "CROSS JOIN (SELECT id, agency_id FROM programmes_programme) p ",
        "CROSS JOIN (VALUES ('eligibility'), ('payment'), ('data_correction'), ('staff_conduct'), ('fraud'), "
        "('other')) k(cat) ",
    )
    statements += [
        insert
        + "SELECT %(district)s, 'grievances', g.grp, m.month, w.id, g.fh AND NOT w.whole, w.whole, NULL, NULL, s.state, k.cat, NULL, "
        "4, 0, 1, 0, NULL, NULL " + grievance_common + "CROSS JOIN (VALUES ('received'), ('acknowledged'), "
        "('assigned'), ('investigated'), ('escalated'), ('resolved'), ('closed')) s(state)",
        # Grievances resolved on twenty-three different numbers of days, from 0 to 44.
        insert
        + "SELECT %(district)s, 'resolutions', g.grp, m.month, w.id, g.fh AND NOT w.whole, w.whole, NULL, NULL, '', k.cat, d.days, "
        "2, 0, 0, 1, NULL, NULL " + grievance_common + "CROSS JOIN generate_series(0, 44, 2) d(days)",
    ]
    written = 0
    with connection.cursor() as cursor:
        for statement in statements:
            # The district's own rows are not by female-headed or not: one row where the wards have two.
            cursor.execute(
                statement + " WHERE NOT (w.whole AND g.fh)", {"district": district_id, "first": first, "last": last}
            )
            written += cursor.rowcount
        cursor.execute("ANALYZE dashboard_tally")
    return written


def measure_busy_year(count: int) -> dict:
    from django.db import transaction

    from dashboard.selectors import Period
    from registry.models import Location
    from spf.models import User

    samfya = Location.objects.get(level="district", name="Samfya")
    period = Period.default()
    figures = {}
    with transaction.atomic():
        started = time.perf_counter()
        figures["rows added"] = _busy_rows(samfya.pk, period.first, period.last)
        print(f"busy year: {figures['rows added']:,} rows added in {time.perf_counter() - started:.1f} s")
        everything = []
        for label, username, address, query in variants():
            if "36 months" in label:
                continue
            samples = _time_requests(User.objects.get(username=username), address, query, count)
            everything += samples
            figures[label] = {**summarise(samples), "load": os.getloadavg()[0]}
            print(f"busy, {label}: {figures[label]}")
        figures["all requests"] = summarise(everything)
        transaction.set_rollback(True)
    analyze()
    return figures


# --- 4. the households behind a figure ----------------------------------------------------------------


def measure_lists() -> dict:
    from django.test import Client

    from programmes.models import Programme
    from registry.models import Location
    from spf.models import User

    samfya = Location.objects.get(level="district", name="Samfya")
    ward = Location.objects.filter(level="ward", parent=samfya).order_by("name").first()
    # The demo's cash transfer: it has households in the gap and referrals suggested to it.
    programme = Programme.objects.filter(code="SCT").first() or Programme.objects.order_by("code").first()
    client = Client()
    client.force_login(User.objects.get(username="committee_samfya"))
    lists = {
        f"gap for {programme.code}": {"figure": "coverage", "state": "gap", "programme": programme.pk},
        f"gap for {programme.code} in a ward": {
            "figure": "coverage",
            "state": "gap",
            "programme": programme.pk,
            "ward": ward.pk,
        },
        "in the gap of any programme, with a child aged 0–4": {
            "figure": "coverage",
            "state": "gap_any",
            "group": "age:0-4",
        },
        f"suggested referrals to {programme.code}": {
            "figure": "referrals",
            "state": "draft",
            "programme": programme.pk,
            "category": "not_sent",
        },
        "registered in the period, female-headed": {"figure": "registrations", "group": "female_headed:yes"},
    }
    figures = {}
    for label, query in lists.items():
        samples = []
        for index in range(22):
            started = time.perf_counter()
            response = client.get("/dashboard/households/", query)
            elapsed = (time.perf_counter() - started) * 1000
            assert response.status_code == 200, (label, response.status_code)
            if index >= 2:
                samples.append(elapsed)
        figures[label] = {**summarise(samples), "rows": response.content.count(b'data-label="Household"')}
        print(f"list, {label}: {figures[label]}")
    return figures


# --- the report --------------------------------------------------------------------------------------


def _table(figures: dict) -> list[str]:
    lines = ["| page | n | p50 ms | p95 ms | max ms | load (1 min) |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for label, row in figures.items():
        if not isinstance(row, dict):
            continue
        ok = " ✓" if row["p95"] <= TARGET_MS else " ✗"
        load = f"{row['load']:.2f}" if "load" in row else ""
        name = f"**{label}**" if label == "all requests" else label
        lines.append(f"| {name} | {row['n']} | {row['p50']} | {row['p95']}{ok} | {row['max']} | {load} |")
    return lines


def write_markdown(entry: dict) -> None:
    m = entry["machine"]
    lines = [
        "## District dashboard (`bench/dashboard.py`)",
        "",
        f"Target (the design): the district dashboard's p95 ≤ {TARGET_MS} ms at 1,000,000 households. Measured by",
        "`bench/dashboard.py` (see its docstring): the whole request through Django's test client (session, scope,",
        "filters, every query, the template), as the committee member of Samfya and as ministry staff. The page reads",
        "only the summaries (`dashboard_tally`) that the Celery job keeps current; the job's own cost is the first",
        "table.",
        "",
        f"- Date: {entry['date']}; database `{entry['database']}`: {entry['households']:,} households, "
        f"{entry['people']:,} people",
        f"- Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB memory, PostgreSQL {m['postgresql']} "
        f"(shared_buffers {m['shared_buffers']}, otherwise default settings), Python {m['python']}; shared with "
        "other engineers' work, hence the load average beside each figure",
        "",
        "### The summary job",
        "",
        "| district | households | summary rows written | seconds | load (1 min) |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for run in entry.get("refresh", []):
        lines.append(
            f"| {run['district']} | {run['households']:,} | {run['rows']:,} | {run['seconds']} | {run['load']:.2f} |"
        )
    if entry.get("refresh_note"):
        lines += ["", f"({entry['refresh_note']})"]
    rows = ", ".join(f"{subject} {n:,}" for subject, n in sorted(entry["tally_rows"].items()))
    lines += [
        "",
        f"Summary rows after the job, every district: {rows}.",
        "",
        "### The page",
        "",
        f"Each variant requested {entry['requests']} times after {WARM_UP} warm-up requests.",
        "",
        *_table(entry["pages"]),
        "",
        "### The page with a busy year in the summaries",
        "",
        "The benchmark population has no enrolments, payments or grievances, and its 1.7 M referrals are",
        f"suggestions never sent. Here {entry['busy']['rows added']:,} summary rows for a year were added for Samfya,",
        "in a transaction rolled back after the measurement: referrals in every status, acceptances after 0–14 and",
        "30 days, payments paid on 7 different days of each monthly cycle of all 10 programmes (and reissues, failed,",
        "unclaimed, pending), grievances in every category and status resolved after 0–44 days (every other day), in",
        "every ward, kind of household, group of people and month — more filled cells than a real district's year.",
        "",
        *_table(entry["busy"]),
        "",
        "### The households behind a figure (first page, live)",
        "",
        "For information: the list behind a figure is read from the registry as it is now, 50 households a page.",
        "",
        "| list | n | p50 ms | p95 ms | max ms | rows shown |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, row in entry["lists"].items():
        lines.append(f"| {label} | {row['n']} | {row['p50']} | {row['p95']} | {row['max']} | {row['rows']} |")
    lines += ["", f"Load average before: {_load(entry['load_before'])}; after: {_load(entry['load_after'])}.", ""]
    REPORT.write_text("\n".join(lines))


if __name__ == "__main__":
    main()
