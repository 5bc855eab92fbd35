"""Eligibility at scale: full recompute, the household panel, and the naive per-household loop.

    .venv/bin/python bench/eligibility.py --database-name spf_bench100k
    .venv/bin/python bench/eligibility.py --database-name spf_bench [--programmes 10] [--sample 2000]

The database must hold a seeded population (`bench/search.py` or `seed_demo`);
this script migrates it, loads the demo catalogue (`seed_demo --skip-eligibility`
with the population's own size adds no household) and adds bench programmes
(codes starting with `B`) until there are `--programmes` active ones. It then
measures, on PostgreSQL:

1. a full recompute of every active programme over every household, three
   times: from empty results (everything written), again (nothing changed),
   and after a rule change that moves some outcomes;
2. GET /households/<id>/ (the programmes panel) as `frontdesk_samfya`, and
   "re-check now" (`eligibility_recompute_household`), p50/p95;
3. the naive alternative: a Python loop with cel-python over a sample,
   extrapolated to the whole population, against the set-based run.

It prints the figures and keeps them in `bench/eligibility-results.json` (one
entry per population size); `bench/eligibility-results.md` is written from it
by hand-checked text (see bench/README.md). `--remove-bench-programmes` deletes
the B-programmes and their results and exits.
"""

import argparse
import datetime
import importlib.util
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "eligibility-results.json"
TARGET_RECOMPUTE_S = 30
TARGET_PANEL_MS = 100

# Four programmes beside the six of the demo catalogue, written as ministry staff
# would; their codes start with B so that they are easy to find and remove.
BENCH_PROGRAMMES = [
    {
        "code": "BOAP",
        "name": "Bench: old-age pension",
        "agency": "MCDSS",
        "kind": "cash_transfer",
        "frequency": "monthly",
        "rule": "household.members.exists(m, m.age >= 65)",
        "formula": '150 * household.count_members("any", 65, 120)',
    },
    {
        "code": "BDIS",
        "name": "Bench: disability grant",
        "agency": "MCDSS",
        "kind": "cash_transfer",
        "frequency": "monthly",
        "rule": "household.members.exists(m, m.severe_disability)",
        "formula": "300 * household.members.filter(m, m.severe_disability).size()",
    },
    {
        "code": "BCHG",
        "name": "Bench: child grant",
        "agency": "MCDSS",
        "kind": "cash_transfer",
        "frequency": "monthly",
        "rule": 'household.count_members("any", 0, 4) >= 1 && household.size >= 3',
        "formula": '100 * household.count_members("any", 0, 4)',
    },
    {
        "code": "BWLP",
        "name": "Bench: women's livelihood programme",
        "agency": "LCCN",
        "kind": "livelihood",
        "frequency": "one_off",
        "rule": "household.female_headed && household.fit_to_work >= 1 && household.dependency_ratio >= 1.0",
        "formula": "",
    },
]
# The rule change of the third run: the pension from 60 instead of 65.
CHANGED_RULE = ("BOAP", "household.members.exists(m, m.age >= 60)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-name", default="spf_bench")
    parser.add_argument("--database-host", default=os.environ.get("BENCH_DATABASE_HOST", "postgres@127.0.0.1:5432"))
    parser.add_argument("--programmes", type=int, default=10, help="Active programmes to assess (default 10).")
    parser.add_argument("--sample", type=int, default=2000, help="Households in the naive cel-python loop.")
    parser.add_argument("--pages", type=int, default=300, help="Household pages timed.")
    parser.add_argument("--rechecks", type=int, default=100, help="'Re-check now' timed.")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--only", choices=["recompute", "panel", "naive"], action="append", help="Run only these parts (repeatable)."
    )
    parser.add_argument(
        "--keep-results",
        action="store_true",
        help="Skip the run from empty: time the second and third runs on the results already stored.",
    )
    parser.add_argument("--remove-bench-programmes", action="store_true")
    options = parser.parse_args()

    os.environ["DATABASE_URL"] = f"postgres://{options.database_host}/{options.database_name}"
    # The test settings: any host for the test client; no broker, so nothing is queued.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spf.settings.test")
    os.environ["CELERY_BROKER_URL"] = ""
    sys.path.insert(0, str(ROOT))

    import django

    django.setup()
    from django.core.management import call_command

    if options.remove_bench_programmes:
        print(f"Removed {remove_bench_programmes()} bench programmes.")
        return
    call_command("migrate", verbosity=0)
    from registry.models import Household, Member

    households = Household.objects.count()
    if not households:
        sys.exit("The database holds no households: seed it first (bench/search.py or seed_demo).")
    call_command("seed_demo", households=households, seed=options.seed, skip_eligibility=True, verbosity=0)
    programmes = bench_programmes_ensure(count=options.programmes)
    analyze()
    parts = options.only or ["recompute", "panel", "naive"]
    entry = {
        "households": households,
        "people": Member.objects.count(),
        "programmes": [p.code for p in programmes],
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "load_before": os.getloadavg(),
    }
    print(f"{households:,} households, {entry['people']:,} people; programmes: {', '.join(entry['programmes'])}")
    print(f"load average before: {fmt_load(entry['load_before'])}")
    if "recompute" in parts:
        entry["recompute"] = measure_recompute(keep_results=options.keep_results)
    if "panel" in parts:
        entry["panel"] = measure_panel(pages=options.pages, rechecks=options.rechecks, seed=options.seed)
    if "naive" in parts:
        entry["naive"] = measure_naive(sample=options.sample, seed=options.seed, households=households)
        if "recompute" in entry:
            set_based = next(r["seconds"] for r in entry["recompute"]["runs"] if r["label"].startswith("second"))
            entry["naive"]["ratio_vs_set_based"] = round(entry["naive"]["extrapolated_seconds"] / set_based, 1)
            print(f"naive / set-based (second run): {entry['naive']['ratio_vs_set_based']}x")
    entry["load_after"] = os.getloadavg()
    print(f"load average after: {fmt_load(entry['load_after'])}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous = results.get(str(households), {})
    if options.keep_results and "recompute" in entry and "recompute" in previous:
        # The run from empty is the one kept from the previous invocation.
        firsts = [r for r in previous["recompute"]["runs"] if r["label"].startswith("first")]
        entry["recompute"]["runs"] = firsts[:1] + entry["recompute"]["runs"]
    results[str(households)] = previous | entry
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True, default=str) + "\n")
    print(f"Kept in {RESULTS.relative_to(ROOT)}.")


# --- the catalogue ---------------------------------------------------------------------


def bench_programmes_ensure(*, count: int) -> list:
    """The active programmes to assess: the demo ones, then bench programmes until there are `count`."""
    from django.db import transaction

    from programmes.models import Agency, Programme, ProgrammeDistrict, ProgrammeStatus
    from programmes.services import programme_set_rules
    from registry.countries import current_country
    from registry.models import Location, LocationLevel
    from spf.models import User

    country = current_country()
    acting_user = User.objects.get(username="ministry_admin")
    districts = list(Location.objects.filter(level=LocationLevel.DISTRICT, code__in=country.demo_districts))
    active = Programme.objects.filter(status=ProgrammeStatus.ACTIVE, current_version__isnull=False)
    for spec in BENCH_PROGRAMMES:
        if active.count() >= count:
            break
        if Programme.objects.filter(code=spec["code"]).exists():
            continue
        with transaction.atomic():
            programme = Programme.objects.create(
                code=spec["code"],
                name=spec["name"],
                agency=Agency.objects.get(code=spec["agency"]),
                description="A programme made up for the eligibility benchmark (bench/eligibility.py).",
                kind=spec["kind"],
                frequency=spec["frequency"],
                currency=country.currency,
                # A draft while the rules are set, so that saving them queues no run.
                status=ProgrammeStatus.DRAFT,
            )
            for district in districts:
                ProgrammeDistrict.objects.create(programme=programme, district=district)
            programme_set_rules(
                acting_user=acting_user,
                programme=programme,
                eligibility_rule=spec["rule"],
                benefit_formula=spec["formula"],
                note="eligibility benchmark",
            )
            Programme.objects.filter(pk=programme.pk).update(status=ProgrammeStatus.ACTIVE)
    return list(active.order_by("pk"))


def remove_bench_programmes() -> int:
    from django.db import connection

    from programmes.models import EligibilityChange, EligibilityResult, Programme, RecomputeRun, RuleVersion

    bench = Programme.objects.filter(code__startswith="B")
    with connection.cursor() as cursor:
        # Their results first, in bulk (a cascade through the ORM would load millions of rows).
        for model in (EligibilityResult, EligibilityChange):
            cursor.execute(
                f"DELETE FROM {model._meta.db_table} WHERE programme_id IN ("
                f"SELECT id FROM {Programme._meta.db_table} WHERE code LIKE 'B%%')"
            )
    RecomputeRun.objects.filter(programme__in=bench).delete()
    n = bench.count()
    bench.update(current_version=None)
    RuleVersion.objects.filter(programme__in=bench).delete()
    bench.delete()
    return n


def analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- 1. the full recompute ---------------------------------------------------------------


def full_recompute(label: str) -> dict:
    """One run over every active programme and household, timed; rows written counted from the database."""
    from django.utils import timezone

    from programmes.models import EligibilityChange, EligibilityResult
    from programmes.services import recompute_run_create, recompute_run_execute

    load = os.getloadavg()
    run = recompute_run_create(reason=f"benchmark: {label}")
    started_at = timezone.now()
    started = time.perf_counter()
    run = recompute_run_execute(run_id=run.pk)
    seconds = time.perf_counter() - started
    written = EligibilityResult.objects.filter(evaluated_at__gte=started_at).count()
    events = EligibilityChange.objects.filter(run=run).count()
    row = {
        "label": label,
        "seconds": round(seconds, 1),
        "steps": run.total_steps,
        "assessments": run.households_assessed,
        "assessments_per_second": round(run.households_assessed / seconds),
        "households_per_second": None,
        "results_written": written,
        "change_events": events,
        "load_before": load,
    }
    return row


def measure_recompute(*, keep_results: bool = False) -> dict:
    from django.db import connection

    from programmes.models import Programme
    from programmes.services import programme_set_rules
    from registry.models import Household, HouseholdStatus
    from spf.models import User

    households = Household.objects.filter(status=HouseholdStatus.ACTIVE).count()
    runs = []
    if not keep_results:
        with connection.cursor() as cursor:
            # From empty: a benchmark database only. Referrals point at change events; a database
            # holding referrals is someone else's benchmark, left alone.
            cursor.execute("SELECT to_regclass('referrals_referral') IS NOT NULL")
            if cursor.fetchone()[0]:
                cursor.execute("SELECT EXISTS (SELECT 1 FROM referrals_referral)")
                if cursor.fetchone()[0]:
                    sys.exit("The database holds referrals: the recompute from empty would remove them; not run.")
            cursor.execute("TRUNCATE programmes_eligibilityresult, programmes_eligibilitychange CASCADE")
        runs.append(full_recompute("first run, empty results"))
        print_run(runs[-1], households)
    else:
        # The stored results were left by an earlier benchmark, whose last step put a rule back:
        # one run, not timed, brings them up to date so that the next one has nothing to change.
        settle = full_recompute("settling run")
        print(f"settling run (not counted): {settle['seconds']} s, {settle['change_events']:,} changes")
    # What autovacuum does some minutes after a bulk load: without it the next run pays for
    # setting the hint bits of ten million fresh rows and plans with stale statistics.
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE programmes_eligibilityresult")
        cursor.execute("VACUUM ANALYZE programmes_eligibilitychange")
    vacuum_seconds = round(time.perf_counter() - started, 1)
    print(f"VACUUM ANALYZE of the results and change events: {vacuum_seconds} s")
    runs.append(full_recompute("second run, nothing changed"))
    print_run(runs[-1], households)
    code, rule = CHANGED_RULE
    programme = Programme.objects.get(code=code)
    original = programme.current_version
    # Changed while a draft, so that the change queues no run of its own: the full run is what is timed.
    Programme.objects.filter(pk=programme.pk).update(status="draft")
    programme_set_rules(
        acting_user=User.objects.get(username="ministry_admin"),
        programme=programme,
        eligibility_rule=rule,
        benefit_formula=original.benefit_formula,
        note="benchmark rule change",
    )
    Programme.objects.filter(pk=programme.pk).update(status="active")
    runs.append(full_recompute(f"third run, after {code} changed to `{rule}`"))
    print_run(runs[-1], households)
    # Put the rule back for the next benchmark (this queues nothing either).
    Programme.objects.filter(pk=programme.pk).update(status="draft")
    programme_set_rules(
        acting_user=User.objects.get(username="ministry_admin"),
        programme=Programme.objects.get(pk=programme.pk),
        eligibility_rule=original.eligibility_rule,
        benefit_formula=original.benefit_formula,
        note="benchmark rule change undone",
    )
    Programme.objects.filter(pk=programme.pk).update(status="active")
    for row in runs:
        row["households_per_second"] = round(households / row["seconds"])
    return {"active_households": households, "runs": runs, "vacuum_seconds": vacuum_seconds}


def print_run(row: dict, households: int) -> None:
    print(
        f"{row['label']:<60} {row['seconds']:>7.1f} s  {households / row['seconds']:>9,.0f} households/s  "
        f"{row['results_written']:>10,} results written  {row['change_events']:>10,} change events  "
        f"(load {fmt_load(row['load_before'])})"
    )


# --- 2. the household page and "re-check now" -----------------------------------------------


def sample_ids(queryset, count: int, rng: random.Random) -> list[int]:
    ids = list(queryset.order_by().values_list("pk", flat=True))
    return rng.sample(ids, min(count, len(ids)))


def measure_panel(*, pages: int, rechecks: int, seed: int) -> dict:
    from django.test import Client

    from programmes.selectors import household_programme_panel
    from programmes.services import eligibility_recompute_household
    from registry.models import Household, HouseholdStatus
    from registry.selectors import households_for
    from spf.models import User

    user = User.objects.get(username="frontdesk_samfya")
    rng = random.Random(seed)
    ids = sample_ids(households_for(user).filter(status=HouseholdStatus.ACTIVE), pages, rng)
    client = Client(raise_request_exception=True)
    client.force_login(user)

    def page(household_id: int) -> float:
        started = time.perf_counter()
        response = client.get(f"/households/{household_id}/")
        elapsed = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, response.status_code
        assert b"Programmes" in response.content
        return elapsed

    def panel(household_id: int) -> float:
        household = Household.objects.get(pk=household_id)
        started = time.perf_counter()
        household_programme_panel(household=household)
        return (time.perf_counter() - started) * 1000

    def recheck(household_id: int) -> float:
        started = time.perf_counter()
        eligibility_recompute_household(household_id=household_id)
        return (time.perf_counter() - started) * 1000

    for household_id in ids[:10]:  # warm the connection and the caches
        page(household_id)
        panel(household_id)
    figures = {
        "household page (GET /households/<id>/)": summarise([page(h) for h in ids]),
        "programmes panel (selector alone)": summarise([panel(h) for h in ids]),
        "re-check now (eligibility_recompute_household)": summarise([recheck(h) for h in ids[:rechecks]]),
    }
    print(f"{'':<52} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    for kind, row in figures.items():
        print(f"{kind:<52} {row['n']:>4} {row['p50']:>8} {row['p95']:>8} {row['max']:>8}")
    return figures


# --- 3. the naive loop --------------------------------------------------------------------


def measure_naive(*, sample: int, seed: int, households: int) -> dict:
    """Every programme explained by cel-python for each household of a random sample, as a loop would do it."""
    from django.utils import timezone

    from programmes.models import Programme, ProgrammeStatus
    from programmes.services import compile_programme_rules
    from registry.models import Household, HouseholdStatus

    rng = random.Random(seed + 1)
    ids = sample_ids(Household.objects.filter(status=HouseholdStatus.ACTIVE), sample, rng)
    today = timezone.localdate()
    programmes = list(
        Programme.objects.filter(status=ProgrammeStatus.ACTIVE, current_version__isnull=False)
        .select_related("current_version")
        .prefetch_related("coverage")
    )
    # Compiled once, as a careful loop would; the cost measured is loading and evaluating.
    compiled = {
        p.pk: compile_programme_rules(
            eligibility_rule=p.current_version.eligibility_rule,
            benefit_formula=p.current_version.benefit_formula,
            target_unit=p.target_unit,
        )
        for p in programmes
    }
    covered = {p.pk: {c.district_id for c in p.coverage.all()} for p in programmes}
    load_seconds = evaluate_seconds = 0.0
    assessments = 0
    for start in range(0, len(ids), 500):
        started = time.perf_counter()
        batch = list(
            Household.objects.filter(pk__in=ids[start : start + 500])
            .select_related("district")
            .prefetch_related("members")
        )
        load_seconds += time.perf_counter() - started
        started = time.perf_counter()
        for household in batch:
            for programme in programmes:
                if household.district_id not in covered[programme.pk]:
                    continue
                rule, formula = compiled[programme.pk]
                explained = rule.explain(household, reference_date=today)
                if explained.outcome == "eligible" and formula is not None:
                    formula.explain(household, reference_date=today)
                assessments += 1
        evaluate_seconds += time.perf_counter() - started
    total = load_seconds + evaluate_seconds
    per_household_ms = total / len(ids) * 1000
    figures = {
        "sample": len(ids),
        "assessments": assessments,
        "load_seconds": round(load_seconds, 2),
        "evaluate_seconds": round(evaluate_seconds, 2),
        "per_household_ms": round(per_household_ms, 2),
        "extrapolated_seconds": round(per_household_ms * households / 1000),
    }
    print(
        f"naive cel-python loop: {len(ids):,} households ({assessments:,} assessments) in {total:.1f} s "
        f"(loading {load_seconds:.1f} s, evaluating {evaluate_seconds:.1f} s): {per_household_ms:.2f} ms a household, "
        f"{figures['extrapolated_seconds']:,} s for {households:,} households (no writes counted)"
    )
    return figures


# --- output ----------------------------------------------------------------------------


def summarise(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered), 1),
        "p95": round(ordered[max(0, int(round(0.95 * len(ordered))) - 1)], 1),
        "max": round(ordered[-1], 1),
    }


def fmt_load(load) -> str:
    return " ".join(f"{x:.2f}" for x in load)


def machine() -> dict:
    """The machine, described as bench/search.py describes it (one wording in docs/benchmarks.md)."""
    spec = importlib.util.spec_from_file_location("bench_search", ROOT / "bench" / "search.py")
    search = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search)
    return search.machine()


if __name__ == "__main__":
    main()
