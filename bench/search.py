"""Front-desk search and household page latency on a seeded PostgreSQL database.

    .venv/bin/python bench/search.py --households 100000 [--seed 2026] [--database-name spf_bench]

Seeds the database with `seed_demo` (or reuses it: seeding is idempotent, a
larger N adds the difference), then times a few hundred of each kind of query
as `frontdesk_samfya` and prints p50, p95 and max. Results are kept in
`bench/results.json` (one entry per N) and written out as `bench/search-results.md`
(with the analysis in `bench/notes.md`); `docs/benchmarks.md` is written by
`bench/million.py`, which calls `measure` from here. See bench/README.md.
"""

import argparse
import datetime
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
REPORT = ROOT / "bench" / "search-results.md"
TARGET_SEARCH_MS = 50
TARGET_PAGE_MS = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, required=True)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database-name", default="spf_bench")
    parser.add_argument("--database-host", default=os.environ.get("BENCH_DATABASE_HOST", "postgres@127.0.0.1:5432"))
    parser.add_argument("--queries", type=int, default=300, help="Queries timed per kind.")
    options = parser.parse_args()

    os.environ["DATABASE_URL"] = f"postgres://{options.database_host}/{options.database_name}"
    # The test settings: any host for the test client, no broker needed.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spf.settings.test")
    os.environ.setdefault("CELERY_BROKER_URL", "")
    sys.path.insert(0, str(ROOT))
    _create_database(options.database_host, options.database_name)

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from registry.models import Household

    before = Household.objects.count()
    started = time.monotonic()
    call_command("seed_demo", households=options.households, seed=options.seed)
    seed_seconds = time.monotonic() - started
    added = Household.objects.count() - before
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    figures = measure(options)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous = results.get(str(options.households), {})
    if added:
        seed_note = f"added {added:,} households to a database holding {before:,}" if before else "from empty"
    else:
        # The database was reused: keep the time the seeding took when it was done.
        seed_seconds = previous.get("seed_seconds", seed_seconds)
        seed_note = previous.get("seed_note", "database reused")
    entry = {
        "households": options.households,
        "people": figures.pop("people"),
        "seed": options.seed,
        "seed_seconds": round(seed_seconds, 1),
        "seed_note": seed_note,
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "figures": figures,
        "queries": options.queries,
    }
    print_table(entry)
    results[str(options.households)] = entry
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    write_report(results)
    print(f"\nWritten {REPORT.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}.")


def _create_database(host: str, name: str) -> None:
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


def machine() -> dict:
    from django.db import connection

    memory_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kb = int(line.split()[1])
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        shared_buffers = cursor.fetchone()[0]
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "postgresql": version,
        "shared_buffers": shared_buffers,
        "python": platform.python_version(),
    }


# --- the queries ---------------------------------------------------------------------


def sample_households(user, count: int, rng: random.Random) -> list:
    """Households of the user's districts picked at random by id, with their people."""
    from registry.models import Household
    from registry.selectors import households_for

    scoped = households_for(user)
    bounds = scoped.order_by("id").values_list("id", flat=True)
    low, high = bounds.first(), scoped.order_by("-id").values_list("id", flat=True).first()
    chosen, seen = [], set()
    while len(chosen) < count:
        probe = rng.randint(low, high)
        household = (
            scoped.filter(id__gte=probe).order_by("id").prefetch_related("members").select_related("head").first()
        )
        if household is None or household.pk in seen:
            continue
        seen.add(household.pk)
        chosen.append(household)
    assert all(isinstance(h, Household) for h in chosen)
    return chosen


def misspell(name: str, variants: dict, rng: random.Random) -> str:
    """A realistic misspelling: a known spelling variant of a word if there is one, else a dropped letter."""
    words = name.split()
    respellable = [i for i, w in enumerate(words) if w in variants]
    if respellable and rng.random() < 0.5:
        i = rng.choice(respellable)
        words[i] = rng.choice(variants[words[i]])
    else:
        i = max(range(len(words)), key=lambda j: len(words[j]))
        word = words[i]
        if len(word) > 4:
            drop = rng.randrange(1, len(word) - 1)
            words[i] = word[:drop] + word[drop + 1 :]
    return " ".join(words)


def phone_as_typed(phone: str, country, rng: random.Random) -> str:
    key = country.phone_key(phone)
    return rng.choice([phone, "0" + key, f"+{country.phone_country_code} {key}", key])


def timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return (time.perf_counter() - started) * 1000, result


def measure(options) -> dict:
    from django.test import Client

    from registry.countries import current_country
    from registry.models import Member
    from registry.selectors import household_detail, household_history, household_search
    from spf.models import User

    country = current_country()
    variants = country.names().get("spelling_variants", {})
    user = User.objects.get(username="frontdesk_samfya")
    rng = random.Random(options.seed)
    households = sample_households(user, options.queries, rng)
    people = Member.objects.count()

    def search(query: str, expected) -> tuple[float, bool]:
        """Time one search; found means the household is among the hits, or for a name, a person of that name."""
        elapsed, hits = timed(lambda: household_search(user=user, query=query))
        if isinstance(expected, tuple):
            return elapsed, any(
                hit.member and (hit.member.first_name, hit.member.last_name) == expected for hit in hits
            )
        return elapsed, any(hit.household.pk == expected for hit in hits)

    kinds: dict[str, list[tuple[str, object]]] = {
        "household number": [],
        "national ID": [],
        "phone": [],
        "fuzzy name": [],
    }
    for household in households:
        members = list(household.members.all())
        kinds["household number"].append((household.number, household.pk))
        with_id = [m for m in members if m.national_id]
        if with_id:
            kinds["national ID"].append((rng.choice(with_id).national_id, household.pk))
        with_phone = [m for m in members if m.phone]
        if with_phone:
            kinds["phone"].append((phone_as_typed(rng.choice(with_phone).phone, country, rng), household.pk))
        person = rng.choice(members)
        # A name is shared by many people at this size: the household cannot be told from the name
        # alone, so a name search counts as found when a person of the intended name is listed.
        name = f"{person.first_name} {person.last_name}"
        kinds["fuzzy name"].append((misspell(name, variants, rng), (person.first_name, person.last_name)))

    figures: dict = {"people": people}
    for kind, queries in kinds.items():
        for query, expected in queries[:10]:  # warm the connection and the caches
            search(query, expected)
        runs = [search(query, expected) for query, expected in queries]
        figures[kind] = summarise([ms for ms, _ in runs]) | {"found": round(sum(f for _, f in runs) / len(runs), 3)}

    client = Client(raise_request_exception=False)
    client.force_login(user)
    probe = client.get(f"/households/{households[0].pk}/")
    if probe.status_code == 200:
        label = "household page (GET /households/<id>/)"

        def page(household_id: int) -> float:
            elapsed, response = timed(lambda: client.get(f"/households/{household_id}/"))
            assert response.status_code == 200, response.status_code
            return elapsed
    else:
        label = f"household page (selectors; the page answered {probe.status_code})"

        def page(household_id: int) -> float:
            def read():
                household = household_detail(user=user, household_id=household_id)
                list(household.members.all())
                return list(household_history(household=household, limit=20))

            return timed(read)[0]

    for household in households[:10]:
        page(household.pk)
    figures[label] = summarise([page(household.pk) for household in households])
    return figures


def summarise(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered), 1),
        "p95": round(ordered[max(0, int(round(0.95 * len(ordered))) - 1)], 1),
        "max": round(ordered[-1], 1),
    }


# --- output ----------------------------------------------------------------------------


def print_table(entry: dict) -> None:
    print(f"\n{entry['households']:,} households, {entry['people']:,} people (seed {entry['seed']})")
    print(f"{'query':<52} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'found':>6}")
    for kind, row in entry["figures"].items():
        found = f"{row['found']:.0%}" if "found" in row else ""
        print(f"{kind:<52} {row['n']:>4} {row['p50']:>8} {row['p95']:>8} {row['max']:>8} {found:>6}")


KIND_ORDER = ("household number", "national ID", "phone", "fuzzy name", "household page")


def _kind_order(kind: str) -> int:
    return next((i for i, prefix in enumerate(KIND_ORDER) if kind.startswith(prefix)), len(KIND_ORDER))


def write_report(results: dict) -> None:
    """bench/search-results.md: the figures of every N kept, then the analysis in bench/notes.md."""
    lines = [
        "## Front-desk search and the household page (`bench/search.py`)",
        "",
        "Measured by `bench/search.py` (see `bench/README.md`) on PostgreSQL, as the front-desk officer",
        "`frontdesk_samfya` (so every query carries the district scope). Each kind of query is run a few hundred",
        "times on households picked at random; `found` is the share of queries whose household is among the results",
        "(for a name: a person of the intended name is listed, since hundreds of people share a first name and",
        "surname at this size). Targets (the design): search p95 ≤ "
        f"{TARGET_SEARCH_MS} ms, household page p95 ≤ {TARGET_PAGE_MS} ms, at 1,000,000 households.",
        "",
        "Fuzzy names are two words (first name and surname) typed with a realistic mistake: a known spelling",
        "variant (Mwansa → Mwanza) or a dropped letter. Phones are typed in the forms people use (+260 97…, 097…).",
        "",
    ]
    for key in sorted(results, key=int):
        entry = results[key]
        m = entry["machine"]
        lines += [
            f"### {entry['households']:,} households ({entry['people']:,} people)",
            "",
            f"- Date: {entry['date']}; seed {entry['seed']}",
            f"- Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB memory, PostgreSQL {m['postgresql']} "
            f"(shared_buffers {m['shared_buffers']}, otherwise default settings), Python {m['python']}",
            f"- Seeding (`seed_demo`): {entry['seed_seconds']:,} s"
            + (f" ({entry['seed_note']})" if entry.get("seed_note") else ""),
            "",
            "| query | n | p50 ms | p95 ms | max ms | found |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for kind, row in sorted(entry["figures"].items(), key=lambda item: _kind_order(item[0])):
            found = f"{row['found']:.0%}" if "found" in row else ""
            lines.append(f"| {kind} | {row['n']} | {row['p50']} | {row['p95']} | {row['max']} | {found} |")
        lines.append("")
    notes = ROOT / "bench" / "notes.md"
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    REPORT.write_text("\n".join(lines))


if __name__ == "__main__":
    if re.match(r"^3\.11", platform.python_version()) is None:
        print("Run with the project's Python 3.11: .venv/bin/python bench/search.py ...", file=sys.stderr)
    main()
