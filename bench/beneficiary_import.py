"""Import of a programme's beneficiary list, with matching, on PostgreSQL.

    .venv/bin/python bench/beneficiary_import.py [--households 100000] [--rows 100000] [--seed 2026]
        [--database-name spf_benef_bench] [--database-host postgres@127.0.0.1:5432]

Creates the database if needed (its own), migrates it and seeds it with
`seed_demo --households N` (idempotent: a second run reuses the population).
Then it makes a bench programme running in every district (code BLIST, the
formula 150, doubled for five people or more), removes what an earlier run of
this bench left in it (its lists and enrolments), and writes a list of
`--rows` rows, one per household:

* 79.5 % matched by national ID (one member of a household, the ID given);
* 10 % matched by name: no ID, the name, the date of birth and the village;
* 5 % new people (invented names, complete details): registered and enrolled;
* 5 % ambiguous: the name and the village, no date of birth (score 0.85);
* 0.5 % invalid (an impossible date of birth).

Half the rows give an amount, half leave it to the formula; most are paid by
mobile money, the rest in cash at the mapping's default pay point. The list is
uploaded and run through the services a page calls (`beneficiary_list_upload`,
`beneficiary_list_start`: above the inline limit, the Celery task, eager here),
with each phase timed. Then: the same file uploaded again (nothing changes),
the report, and an officer's decision on ambiguous rows. Figures go to
`bench/beneficiary-import-results.md`, which `docs/benchmarks.md` gathers.
"""

import argparse
import csv
import datetime
import io
import os
import platform
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "beneficiary-import-results.md"
PROGRAMME_CODE = "BLIST"
FORMULA = "150 * (household.members.size() >= 5 ? 2 : 1)"
# Syllables for the new people's names: Bantu-sounding, and never together in the demo's name list.
SYLLABLES = ("ka", "lu", "mbe", "nso", "twi", "fya", "ngo", "zhi", "pwe", "rka", "vuu", "dzo", "qe")
DECISIONS_TIMED = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--database-name", default="spf_benef_bench")
    parser.add_argument("--database-host", default=os.environ.get("BENCH_DATABASE_HOST", "postgres@127.0.0.1:5432"))
    parser.add_argument("--no-report", action="store_true", help="Print the figures; write no results file.")
    options = parser.parse_args()

    os.environ["DATABASE_URL"] = f"postgres://{options.database_host}/{options.database_name}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spf.settings.test")
    # No broker: the list's Celery task runs in this process, as in the embedded default.
    os.environ["CELERY_BROKER_URL"] = ""
    sys.path.insert(0, str(ROOT))
    _create_database(options.database_host, options.database_name)

    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    from registry.models import Household

    call_command("migrate", verbosity=0)
    before = Household.objects.count()
    started = time.monotonic()
    if before < options.households:
        from programmes.models import Programme

        # The demo runs payrolls for every active programme with a formula: not for the bench's.
        Programme.objects.filter(code=PROGRAMME_CODE).update(status="suspended")
        call_command("seed_demo", households=options.households, seed=options.seed)
    seed_seconds = time.monotonic() - started
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    with tempfile.TemporaryDirectory() as folder:
        settings.MEDIA_ROOT = folder
        figures = run(options, seed_seconds=seed_seconds, seeded_before=before)
    print_figures(figures)
    if not options.no_report:
        write_results(figures)
        sys.path.insert(0, str(ROOT / "bench"))
        import json

        import search

        if search.RESULTS.exists():
            search.write_report(json.loads(search.RESULTS.read_text()))
            print(f"\nWritten {RESULTS.relative_to(ROOT)} and {search.REPORT.relative_to(ROOT)}.")


def bench_programme(ministry):
    from programmes.models import Agency, Programme, ProgrammeDistrict, ProgrammeKind, ProgrammeStatus
    from programmes.services import programme_set_rules
    from registry.models import Household, Location

    programme = Programme.objects.filter(code=PROGRAMME_CODE).first()
    if programme is not None and programme.status != ProgrammeStatus.ACTIVE:
        programme.status = ProgrammeStatus.ACTIVE
        programme.save(update_fields=["status"])
    if programme is None:
        programme = Programme.objects.create(
            code=PROGRAMME_CODE,
            name="Bench cash transfer (beneficiary list import)",
            agency=Agency.objects.get(code="MCDSS"),
            description="Made by bench/beneficiary_import.py.",
            kind=ProgrammeKind.CASH_TRANSFER,
            status=ProgrammeStatus.ACTIVE,
            currency="ZMW",
            auto_referral="off",
        )
        programme_set_rules(acting_user=ministry, programme=programme, eligibility_rule="true", benefit_formula=FORMULA)
    districts = Household.objects.order_by().values_list("district_id", flat=True).distinct()
    for district in Location.objects.filter(pk__in=districts):
        ProgrammeDistrict.objects.get_or_create(programme=programme, district=district)
    programme.refresh_from_db()
    return programme


def clear_earlier_runs(programme) -> None:
    """This bench's programme only: its lists (their rows go with them) and its enrolments."""
    from django.db import connection

    from payments.models import BeneficiaryList, Enrolment

    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM payments_enrolmentevent WHERE enrolment_id IN "
            "(SELECT id FROM payments_enrolment WHERE programme_id = %s)",
            [programme.pk],
        )
    BeneficiaryList.objects.filter(programme=programme).delete()
    Enrolment.objects.filter(programme=programme).delete()


def write_list(path: Path, *, rows: int, seed: int, run_number: int) -> Counter:
    """The list's CSV; returns how many rows of each kind it has."""
    from django.db.models import Exists, OuterRef

    from registry.models import Household, Member, MemberStatus

    rng = random.Random(seed + run_number)
    with_id = Member.objects.filter(household_id=OuterRef("pk"), national_id__isnull=False, status=MemberStatus.PRESENT)
    households = list(
        Household.objects.filter(status="active", head__status=MemberStatus.PRESENT)
        .annotate(has_id=Exists(with_id))
        .values_list("pk", "has_id")
    )
    rng.shuffle(households)
    kinds = Counter()
    plan = []
    wanted = {
        "national_id": int(rows * 0.795),
        "name": int(rows * 0.10),
        "ambiguous": int(rows * 0.05),
        "invalid": int(rows * 0.005),
    }
    wanted["new"] = rows - sum(wanted.values())
    by_id = [pk for pk, has_id in households if has_id]
    rest = [pk for pk, has_id in households if not has_id]
    taken_by_id = by_id[: wanted["national_id"]]
    others = by_id[wanted["national_id"] :] + rest
    plan += [("national_id", pk) for pk in taken_by_id]
    plan += [("name", pk) for pk in others[: wanted["name"]]]
    plan += [("ambiguous", pk) for pk in others[wanted["name"] : wanted["name"] + wanted["ambiguous"]]]
    start = wanted["name"] + wanted["ambiguous"]
    plan += [("invalid", pk) for pk in others[start : start + wanted["invalid"]]]
    plan += [("new", None)] * wanted["new"]
    rng.shuffle(plan)

    people = {}
    ids = [pk for kind, pk in plan if kind == "national_id"]
    for member in (
        Member.objects.filter(household_id__in=ids, national_id__isnull=False, status=MemberStatus.PRESENT)
        .order_by("household_id", "id")
        .values(
            "household_id", "first_name", "last_name", "sex", "date_of_birth", "national_id", "household__village__code"
        )
        .iterator(chunk_size=10_000)
    ):
        people.setdefault(member["household_id"], member)
    heads = [pk for kind, pk in plan if kind in ("name", "ambiguous", "invalid")]
    for member in (
        Member.objects.filter(pk__in=Household.objects.filter(pk__in=heads).values("head_id"))
        .values(
            "household_id", "first_name", "last_name", "sex", "date_of_birth", "national_id", "household__village__code"
        )
        .iterator(chunk_size=10_000)
    ):
        people[member["household_id"]] = member
    villages = list(Household.objects.order_by().values_list("village__code", flat=True).distinct())

    header = ["S/N", "NRC No.", "First Name", "Surname", "Gender", "Date of Birth", "Village Code",
              "BLIST No", "Amount (ZMW)", "Payment Mode", "Wallet/Account"]  # fmt: skip
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for number, (kind, pk) in enumerate(plan, start=1):
            amount = f"{rng.choice((150, 200, 300)):.2f}" if rng.random() < 0.5 else ""
            cash = rng.random() < 0.2
            channel, wallet = ("Cash", "") if cash else ("Mobile money", f"097{rng.randrange(1_000_000, 9_999_999)}")
            if kind == "new":
                first = "".join(rng.choice(SYLLABLES) for _ in range(3)).title()
                last = "".join(rng.choice(SYLLABLES) for _ in range(3)).title()
                born = datetime.date(1950, 1, 1) + datetime.timedelta(days=rng.randrange(0, 365 * 50))
                # Fresh per run (an earlier run's new person would match by ID), never twice in the file.
                nid = f"{900_000 + run_number * 10_000 + kinds['new']:06d}/{rng.randint(10, 99)}/1"
                cells = [nid, first, last, rng.choice("FM"), born.strftime("%d/%m/%Y"), rng.choice(villages)]
            else:
                person = people[pk]
                born = person["date_of_birth"]
                date = born.strftime("%d/%m/%Y") if born else ""
                village = person["household__village__code"]
                if kind == "national_id":
                    cells = [
                        person["national_id"],
                        person["first_name"],
                        person["last_name"],
                        person["sex"],
                        date,
                        village,
                    ]
                elif kind == "name":
                    cells = ["", person["first_name"], person["last_name"], person["sex"], date, village]
                elif kind == "ambiguous":
                    cells = ["", person["first_name"], person["last_name"], person["sex"], "", village]
                else:
                    cells = ["", person["first_name"], person["last_name"], person["sex"], "31/02/1980", village]
            writer.writerow([number, *cells, f"BL-{number:06d}", amount, channel, wallet])
            kinds[kind] += 1
    return kinds


def run(options, *, seed_seconds: float, seeded_before: int) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.db import connection

    from payments import beneficiaries
    from payments.beneficiaries import (
        beneficiary_list_report_csv,
        beneficiary_list_start,
        beneficiary_list_upload,
        beneficiary_row_resolve,
    )
    from payments.models import BeneficiaryList, BeneficiaryRow, BeneficiaryRowState, Enrolment
    from registry.models import Household, ImportJob, Member
    from spf.models import Role, User

    ministry, _ = User.objects.get_or_create(username="bench_ministry", defaults={"role": Role.MINISTRY})
    programme = bench_programme(ministry)
    officer, _ = User.objects.get_or_create(
        username="bench_list_officer", defaults={"role": Role.PROGRAMME_OFFICER, "agency": programme.agency}
    )
    officer.districts.set(programme.districts.all())
    clear_earlier_runs(programme)
    run_number = ImportJob.objects.filter(original_name__startswith="beneficiary-list-").count()

    figures: dict = {
        "date": datetime.date.today().isoformat(),
        "machine": machine(),
        "households": Household.objects.count(),
        "people": Member.objects.count(),
        "seed_seconds": seed_seconds if seeded_before < options.households else None,
    }
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "blist-beneficiaries.csv"
        started = time.monotonic()
        figures["kinds"] = write_list(path, rows=options.rows, seed=options.seed, run_number=run_number)
        figures["write_seconds"] = time.monotonic() - started
        content = path.read_bytes()
    figures["file_mb"] = len(content) / 1_000_000

    # Each phase of the run, timed where the run calls it.
    phases: dict[str, float] = {}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            begun = time.monotonic()
            try:
                return function(*args, **kwargs)
            finally:
                phases[name] = phases.get(name, 0.0) + time.monotonic() - begun

        return wrapper

    run_class = beneficiaries._ListRun
    for name in ("read", "match", "write_rows", "apply"):
        setattr(run_class, name, timed(name, getattr(run_class, name)))
    beneficiaries._register_new_households = timed("register", beneficiaries._register_new_households)
    beneficiaries._enrol_rows = timed("enrol", beneficiaries._enrol_rows)

    # Production runs the list on a worker, and what it sets off (eligibility of the new households,
    # referrals, review flags) on the workers afterwards. Without a broker every task would run here,
    # inside the list's time: they are counted and left out, as a worker would leave them to the others.
    from celery.app.task import Task

    deferred: Counter = Counter()
    apply_async = Task.apply_async

    def leave_to_the_workers(task, *args, **kwargs):
        if task.name == "payments.beneficiary_list_run":
            return apply_async(task, *args, **kwargs)
        deferred[task.name] += 1
        return None

    Task.apply_async = leave_to_the_workers
    cpu_started = time.process_time()
    started = time.monotonic()
    beneficiary_list, created = beneficiary_list_upload(
        acting_user=officer, programme=programme, upload=SimpleUploadedFile("blist-beneficiaries.csv", content)
    )
    figures["upload_seconds"] = time.monotonic() - started
    assert created
    started = time.monotonic()
    beneficiary_list = beneficiary_list_start(
        acting_user=officer,
        beneficiary_list=beneficiary_list,
        mapping=beneficiary_list.mapping,
        payment_defaults={"payment_channel": "", "pay_point": "Boma pay point"},
    )
    figures["run_seconds"] = time.monotonic() - started
    figures["cpu_seconds"] = time.process_time() - cpu_started
    Task.apply_async = apply_async
    figures["deferred"] = dict(deferred)
    figures["phases"] = phases
    figures["status"] = beneficiary_list.status
    figures["message"] = beneficiary_list.message
    figures["counts"] = {state: n for state, n in beneficiary_list.counts.items() if n}
    figures["enrolments_created"] = beneficiary_list.enrolments_created
    figures["households_created"] = beneficiary_list.households_created
    figures["mapping"] = beneficiary_list.mapping
    figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # By kind of row, what it became: the matching's quality on a list whose truth is known.
    figures["rows"] = len(content.splitlines()) - 1
    lists_before = BeneficiaryList.objects.count()
    enrolments_before = Enrolment.objects.count()
    started = time.monotonic()
    again, created_again = beneficiary_list_upload(
        acting_user=officer, programme=programme, upload=SimpleUploadedFile("copy.csv", content)
    )
    figures["reupload_seconds"] = time.monotonic() - started
    figures["reupload_unchanged"] = (
        not created_again
        and again.pk == beneficiary_list.pk
        and BeneficiaryList.objects.count() == lists_before
        and Enrolment.objects.count() == enrolments_before
    )

    started = time.monotonic()
    report = beneficiary_list_report_csv(user=officer, beneficiary_list=beneficiary_list)
    figures["report_seconds"] = time.monotonic() - started
    figures["report_lines"] = len(list(csv.reader(io.StringIO(report.decode("utf-8-sig"))))) - 1

    waiting = list(
        BeneficiaryRow.objects.filter(beneficiary_list=beneficiary_list, state=BeneficiaryRowState.AMBIGUOUS)
        .exclude(candidates=[])
        .order_by("line")[:DECISIONS_TIMED]
    )
    timings = []
    for row in waiting:
        started = time.monotonic()
        beneficiary_row_resolve(
            acting_user=officer, row=row, decision="match", member_id=row.candidates[0]["member_id"], reason="bench"
        )
        timings.append(time.monotonic() - started)
    figures["decision_ms"] = sorted(timings)[len(timings) // 2] * 1000 if timings else None
    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        figures["postgresql"] = cursor.fetchone()[0].split(" on ")[0]
    figures["load"] = os.getloadavg()
    return figures


def print_figures(figures: dict) -> None:
    phases = figures["phases"]
    print(f"date                  {figures['date']}")
    print(f"machine               {figures['machine']}")
    print(f"registry              {figures['households']:,} households, {figures['people']:,} people")
    if figures["seed_seconds"]:
        print(f"seeded in             {figures['seed_seconds']:.0f} s (not counted)")
    print(f"list                  {figures['rows']:,} rows, {figures['file_mb']:.1f} MB CSV; {dict(figures['kinds'])}")
    print(f"upload                {figures['upload_seconds']:.2f} s (hash, header, sample, mapping guess)")
    print(f"run                   {figures['run_seconds']:.1f} s ({figures['rows'] / figures['run_seconds']:,.0f} rows/s); "
          f"{figures['cpu_seconds']:.1f} s CPU in this process")  # fmt: skip
    for name in ("read", "match", "write_rows", "apply", "register", "enrol"):
        print(f"  {name:<20}{phases.get(name, 0):.1f} s")
    print(f"status                {figures['status']}: {figures['message']}")
    print(
        f"enrolments created    {figures['enrolments_created']:,}; households registered {figures['households_created']:,}"
    )
    print(
        f"same file again       {figures['reupload_seconds']:.2f} s, nothing changed: {figures['reupload_unchanged']}"
    )
    print(f"report                {figures['report_seconds']:.1f} s, {figures['report_lines']:,} lines")
    if figures["decision_ms"] is not None:
        print(f"officer's decision    {figures['decision_ms']:.0f} ms (median of {DECISIONS_TIMED})")
    print(f"left to the workers   {figures['deferred']}")
    print(f"peak memory           {figures['peak_mb']:,.0f} MB")
    print(f"load average          {' '.join(f'{value:.2f}' for value in figures['load'])} (1, 5, 15 min) at the end")


def write_results(figures: dict) -> None:
    phases = figures["phases"]
    kinds = figures["kinds"]
    counts = figures["counts"]
    lines = [
        "## Beneficiary list import with matching (`bench/beneficiary_import.py`)",
        "",
        "- What: a programme's existing list of 100,000 beneficiaries uploaded, mapped and run through the services",
        "  the pages call (`payments/beneficiaries.py`), as the Celery job does it: every row read and checked, matched",
        "  with the registry (national ID exactly, in batches on its unique index; otherwise the sound keys of the name,",
        "  the date of birth and the village, in one pass over the districts' people), written, the unmatched complete",
        "  rows registered through the registry's bulk import, and every matched row enrolled in set-based SQL with",
        "  its event and the formula's amount.",
        f"- Registry: {figures['households']:,} households ({figures['people']:,} people) seeded by `seed_demo`.",
        f"- List: {figures['rows']:,} rows, one per household, {figures['file_mb']:.1f} MB of CSV: "
        f"{kinds['national_id']:,} with a registered national ID, {kinds['name']:,} without one (name, date of birth, "
        f"village), {kinds['new']:,} new people, {kinds['ambiguous']:,} without a date of birth (so uncertain), "
        f"{kinds['invalid']:,} with an impossible date.",
        f"- Machine: {figures['machine']}, {figures['postgresql']} (default settings) on the same machine, shared with",
        "  other engineers' work: the wall clock moves with their load (load average at the end: "
        + ", ".join(f"{value:.1f}" for value in figures["load"])
        + ").",
        f"- Date: {figures['date']}.",
        "",
        "| step | seconds |",
        "| --- | ---: |",
        f"| upload (SHA-256, header, sample, mapping guess) | {figures['upload_seconds']:.2f} |",
        f"| read and check every row | {phases.get('read', 0):.1f} |",
        f"| match (IDs, names) | {phases.get('match', 0):.1f} |",
        f"| write the rows (one transaction) | {phases.get('write_rows', 0):.1f} |",
        f"| register the new households (registry import) | {phases.get('register', 0):.1f} |",
        f"| enrol (events, amounts) | {phases.get('enrol', 0):.1f} |",
        f"| **whole run** | **{figures['run_seconds']:.1f}** ({figures['rows'] / figures['run_seconds']:,.0f} rows/s; "
        f"{figures['cpu_seconds']:.1f} s CPU in Python) |",
        f"| the same file uploaded again (nothing changes) | {figures['reupload_seconds']:.2f} |",
        f"| the report of every row (CSV) | {figures['report_seconds']:.1f} |",
    ]
    if figures["decision_ms"] is not None:
        lines.append(f"| an officer's decision on an ambiguous row (median of {DECISIONS_TIMED}) | "
                     f"{figures['decision_ms'] / 1000:.2f} |")  # fmt: skip
    lines += [
        "",
        "What the rows became: "
        + ", ".join(
            f"{state.replace('_', ' ')} {n:,}" for state, n in sorted(counts.items(), key=lambda item: -item[1])
        )
        + f"; {figures['enrolments_created']:,} enrolments made, {figures['households_created']:,} households"
        f" registered; peak memory {figures['peak_mb']:,.0f} MB.",
        "",
        "What the run sets off is left to the workers, as in production, and not counted above: "
        + ", ".join(f"{name} ({n}×)" for name, n in sorted(figures["deferred"].items()))
        + " (the new households' eligibility, which then suggests referrals and flags reviews).",
        "",
        ANALYSIS.strip(),
        "",
    ]
    notes = ROOT / "bench" / "beneficiary-import-notes.md"
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    RESULTS.write_text("\n".join(lines))


ANALYSIS = """
### What the figures say (2026-11-23)

- **Target.** The design sets none for this import; its bulk household import has 60 s for 100,000 households.
  A 100,000-row list, matched and enrolled, takes about 49 s on this shared 2-core machine at a load average of
  about 2; the process's own CPU is 19 s, the rest is PostgreSQL.
- **The first run took 165.0 s** (load average 4–5), with every phase slower: matching 47.4 s, writing the rows
  26.1 s, applying 82.0 s, an officer's decision 0.85 s. What changed before the run above:
  1. *Matching by name.* The pass over the districts' 460,000 people scored every (row, person) pair sharing the
     sound keys of a first name and surname: 12.7 million pairs for 15,000 rows, since a common name is shared by
     hundreds. With the name's whole weight, a person reaches the candidate score (0.75) only in the row's village
     or born within 31 days of the row's date, so the rows of a key pair are now filed by village and by month of
     birth and only those are scored (`_reachable` derives the bounds from the weights; a test holds the pass to
     the row-by-row search). Name similarities are remembered per pair of spellings, and an ID match whose name is
     the same words is not compared letter by letter. Matching: 47.4 s → 9.7 s, the same outcome for every row.
  2. *COPY* writes the rows on PostgreSQL (ids reserved from the sequence first): 26.1 s → 6.8 s.
  3. *Row-scoped statements.* Events, the formula's amounts and the missing-amount note are written per batch of
     rows by their ids, not by scanning the list: an officer's decision 0.85 s → 0.11 s.
  4. *Work for the workers left to them.* Without a broker, the eligibility recompute and the referral sweep
     that the new households set off ran inside the list's time (about 55 s in the first run); production runs
     them on the workers after the list is done, and so does the bench now (it counts them).
- **Where the time goes now:** enrolling (19.2 s) is the largest part: 94,000 enrolments inserted by
  `INSERT … SELECT … ON CONFLICT DO NOTHING` in batches of 5,000, each checked against the one-current-enrolment
  index and its foreign keys, then their events and the formula over each batch's households. Registering the
  5,000 new households through the registry's import (its checks, its duplicate pass, COPY) is 5.6 s.
- **Matching quality on a list whose truth is known:** every row with a registered ID was enrolled; of the
  10,000 rows without an ID, 9,897 were enrolled by name and 103 held for an officer (the demo plants people
  registered twice, whose two records score within 0.1 of each other, and namesakes born days apart in the same
  village); the 5,000 rows without a date of birth all wait for an officer (0.85 < 0.9); the 500 impossible dates
  are invalid. Of the 5,000 new people, 4,985 were registered and enrolled; 14 were refused as repeating a
  national ID given on an earlier row (the bench's generator gave some IDs twice: fixed since) and one was held
  for an officer because the registry gives its generated ID to someone else (Memory Mpundu, 38 % alike): the
  guard against a mistyped ID enrolling a stranger.
- **Idempotent:** the same file again returns the same list in 0.01 s and writes nothing.
"""


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
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (
        f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), {memory:.0f} GB memory, "
        f"Python {platform.python_version()}"
    )


if __name__ == "__main__":
    main()
