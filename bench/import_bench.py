"""Bulk import of N households on PostgreSQL: time to check every row, time to write.

    .venv/bin/python bench/import_bench.py [--households 100000] [--seed 2026] [--database-name spf_import_bench]

Creates the database if needed (its own, never the demo's), migrates it, loads
the country's locations, empties the registry tables, writes a CSV file of N
households (one to eight members each, about 4.5 on average, as in the
districts served; adults mostly with a national ID), then runs the import's two
steps as the worker does, `import_validate` and `import_apply`, and prints the
figures. Target (docs/imports.md): 100,000 households in 60 s or less.
"""

import argparse
import csv
import datetime
import os
import platform
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 60
# Household sizes 1..8, weighted so the mean is about 4.5 people.
SIZE_WEIGHTS = (6, 9, 13, 17, 18, 15, 12, 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database-name", default="spf_import_bench")
    parser.add_argument("--database-host", default=os.environ.get("BENCH_DATABASE_HOST", "postgres@127.0.0.1:5432"))
    options = parser.parse_args()

    os.environ["DATABASE_URL"] = f"postgres://{options.database_host}/{options.database_name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spf.settings.test")
    os.environ["CELERY_BROKER_URL"] = ""
    sys.path.insert(0, str(ROOT))
    _create_database(options.database_host, options.database_name)

    import django

    django.setup()
    from django.core.files import File
    from django.core.management import call_command
    from django.db import connection

    from registry.countries import current_country
    from registry.imports import import_apply, import_validate
    from registry.models import ImportJob, ImportStatus, Location, LocationLevel
    from registry.services import locations_load
    from spf.models import Role, User

    call_command("migrate", verbosity=0)
    country = current_country()
    locations_load(rows=country.location_rows())
    with connection.cursor() as cursor:
        # The bench's own database: start every run from an empty registry.
        cursor.execute(
            "TRUNCATE registry_changeentry, registry_member, registry_household, registry_importjob RESTART IDENTITY CASCADE"
        )
        cursor.execute("UPDATE registry_householdnumbersequence SET last_number = 0")
    officer, _ = User.objects.get_or_create(username="bench_import_officer", defaults={"role": Role.FRONT_DESK})
    districts = list(Location.objects.filter(level=LocationLevel.DISTRICT))
    officer.districts.set(districts)
    villages = list(Location.objects.filter(level=LocationLevel.VILLAGE).values_list("code", flat=True))

    with tempfile.TemporaryDirectory() as folder:
        from django.conf import settings

        settings.MEDIA_ROOT = folder
        path = Path(folder) / "bench.csv"
        started = time.monotonic()
        rows = write_file(path, households=options.households, seed=options.seed, villages=villages, country=country)
        generate_seconds = time.monotonic() - started
        with open(path, "rb") as handle:
            job = ImportJob(original_name="bench.csv", created_by=officer, mode="all_or_nothing")
            job.uploaded_file.save("bench.csv", File(handle), save=False)
            job.save()

        started, cpu_started = time.monotonic(), time.process_time()
        plan = import_validate(job=job)
        validate_seconds, validate_cpu = time.monotonic() - started, time.process_time() - cpu_started
        if plan.errors:
            print("The generated file has problems:", plan.errors[:5])
            raise SystemExit(1)
        started, cpu_started = time.monotonic(), time.process_time()
        households, members = import_apply(job=job, plan=plan)
        apply_seconds, apply_cpu = time.monotonic() - started, time.process_time() - cpu_started
        job.status = ImportStatus.DONE
        job.save()

    total = validate_seconds + apply_seconds
    print(f"date                 {datetime.date.today().isoformat()}")
    print(f"machine              {machine()}")
    print(f"households           {households:,}")
    print(f"members (rows)       {members:,} ({rows:,} rows in the file)")
    print(f"duplicates flagged   {len(plan.duplicates):,}")
    print(f"file written in      {generate_seconds:.1f} s (not counted)")
    # CPU seconds of this process beside the wall clock: on a shared machine the wall clock
    # moves with the others' load; the rest of apply's wall clock is PostgreSQL's work.
    print(
        f"validation           {validate_seconds:.1f} s ({rows / validate_seconds:,.0f} rows/s; {validate_cpu:.1f} s CPU here)"
    )
    print(
        f"apply                {apply_seconds:.1f} s ({rows / apply_seconds:,.0f} rows/s; {apply_cpu:.1f} s CPU here)"
    )
    print(f"total                {total:.1f} s ({rows / total:,.0f} rows/s, {households / total:,.0f} households/s)")
    # Peak resident memory of this process (Linux reports kilobytes): the file, the plan and the writer's batches.
    print(f"peak memory          {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")
    print(f"load average         {' '.join(f'{value:.2f}' for value in os.getloadavg())} (1, 5, 15 min) at the end")
    print(
        f"target               {TARGET_SECONDS} s for 100,000 households: {'met' if total <= TARGET_SECONDS * options.households / 100_000 else 'NOT met'}"
    )


def write_file(
    path: Path, *, households: int, seed: int, villages: list[str], country, bad_every: int = 0
) -> int:
    """A CSV in the import template's columns; returns the number of member rows.

    With `bad_every` N, every Nth household has a member born in the future, a row
    the import must report (bench/million.py times the error report too).
    """
    rng = random.Random(seed)
    names = country.names()
    today = datetime.date.today()
    header = [
        "household_ref",
        "village_code",
        "address",
        "household_phone",
        "gps_latitude",
        "gps_longitude",
        "relationship",
        "first_name",
        "middle_name",
        "last_name",
        "sex",
        "date_of_birth",
        "date_of_birth_estimated",
        "national_id",
        "phone",
        "disability_seeing",
        "disability_walking",
        "chronic_illness",
        "school_attendance",
        "work_status",
    ]
    rows = 0
    national_id = 100_000
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for number in range(1, households + 1):
            size = rng.choices(range(1, 9), weights=SIZE_WEIGHTS)[0]
            surname = rng.choice(names["last"])
            village = rng.choice(villages)
            latitude, longitude = f"{rng.uniform(-12, -10):.6f}", f"{rng.uniform(28, 31):.6f}"
            phone = f"0{rng.choice(names['phone_prefixes'])}{rng.randrange(1_000_000, 9_999_999)}"
            for index in range(size):
                sex = rng.choice("FM")
                first = rng.choice(names["female_first" if sex == "F" else "male_first"])
                age = rng.randint(25, 80) if index == 0 else rng.randint(0, 60)
                born = today - datetime.timedelta(days=age * 365 + rng.randint(0, 364))
                estimated = rng.random() < 0.1
                nid = ""
                # Six digits give 900,000 IDs: enough for 100,000s of households; beyond that, fewer IDs.
                if age >= 16 and rng.random() < 0.8 and national_id < 999_999:
                    national_id += 1
                    nid = f"{national_id:06d}/{rng.randint(10, 99)}/1"
                if bad_every and number % bad_every == 0 and index == size - 1:
                    born = today + datetime.timedelta(days=400)
                    estimated = False
                writer.writerow(
                    [
                        f"H{number}",
                        village,
                        f"Plot {number}" if index == 0 else "",
                        phone if index == 0 else "",
                        latitude if index == 0 else "",
                        longitude if index == 0 else "",
                        "head"
                        if index == 0
                        else rng.choice(("spouse", "child", "child", "grandchild", "other_relative")),
                        first,
                        "",
                        surname,
                        sex,
                        str(born.year) if estimated else born.isoformat(),
                        "",
                        nid,
                        "",
                        rng.choice(("1", "1", "1", "2", "")),
                        rng.choice(("1", "1", "2", "3", "")),
                        rng.choice(("no", "no", "yes", "")),
                        "attending" if 6 <= age <= 18 else "",
                        "self_employed" if age >= 18 else "",
                    ]
                )
                rows += 1
    return rows


def _create_database(host: str, name: str) -> None:
    import psycopg2

    user, _, address = host.partition("@")
    hostname, _, port = address.partition(":")
    connection = psycopg2.connect(dbname="postgres", user=user, host=hostname, port=port or 5432)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not cursor.fetchone():
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def machine() -> str:
    return f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, Python {platform.python_version()}"


if __name__ == "__main__":
    main()
