"""Payroll at scale: generation, the payment files and the reconciliation of the provider's file.

    .venv/bin/python bench/payroll.py [--enrolments 200000] [--database-name spf_paybench] [--runs 3]

Builds (or reuses) its own PostgreSQL database: `seed_demo` for the population
(idempotent, as bench/search.py and bench/eligibility.py use it), one bench
programme, `BPAY`, a monthly cash transfer of MCDSS with a formula over the
household's members, and `--enrolments` active enrolments of it, written
set-based (a benchmark's shortcut: what `enrolment_apply` and the approvals
would leave, with the amount set as approval sets it, minus their history
rows). Channels are mixed as in the districts: 60% mobile money, 25% cash,
15% bank.

Then it measures, `--runs` times each (the machine is shared: best and median):

1. `payroll_generate` of a cycle for every enrolment (the payment tables are
   emptied before each run: a benchmark database only);
2. `payroll_export` of the three payment files (bank, mobile money, cash);
3. `reconciliation_import` of a provider's file of one row per payment (96%
   paid, 3% failed, 1% unclaimed), after putting every payment back to
   pending; then the same file again (every row unchanged).

Targets (the design): payroll for 200,000 beneficiaries ≤ 10 s; reconciliation
of 200,000 rows ≤ 30 s. Writes bench/payroll-results.md (and the figures in
bench/payroll-results.json), which docs/benchmarks.md links to. `--explain`
prints EXPLAIN ANALYZE of the query of the first generation that computes the
amounts from the formula. bench/million.py measures the same on its national
database (and uses `enrolments_ensure`, `provider_file` and `record_statements`
from here).
"""

import argparse
import csv
import datetime
import importlib.util
import io
import json
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "payroll-results.json"
REPORT = ROOT / "bench" / "payroll-results.md"
TARGET_GENERATION_S = 10
TARGET_RECONCILIATION_S = 30
PROGRAMME = {
    "code": "BPAY",
    "name": "Bench: payroll cash transfer",
    "agency": "MCDSS",
    # 150 a month, doubled for five people or more, and 12.50 per child under 18.
    "formula": '150 * (household.members.size() >= 5 ? 2 : 1) + 12.5 * household.count_members("any", 0, 17)',
}
PERIOD = datetime.date(2026, 11, 1)
PAYMENT_TABLES = (
    "payments_reconciliationrow",
    "payments_reconciliation",
    "payments_paymentevent",
    "payments_payment",
    "payments_cycleevent",
    "payments_paymentcycle",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--enrolments", type=int, default=200_000)
    parser.add_argument("--database-name", default="spf_paybench")
    parser.add_argument("--database-host", default=os.environ.get("BENCH_DATABASE_HOST", "postgres@127.0.0.1:5432"))
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--runs", type=int, default=3, help="Times each figure is measured (best and median).")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest statements.")
    parser.add_argument("--label", default="", help="What this run measures (kept with its figures).")
    options = parser.parse_args()

    os.environ["DATABASE_URL"] = f"postgres://{options.database_host}/{options.database_name}"
    # The test settings: no broker, so nothing is queued to a worker.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spf.settings.test")
    os.environ["CELERY_BROKER_URL"] = ""
    sys.path.insert(0, str(ROOT))
    search = _bench_search()
    search._create_database(options.database_host, options.database_name)

    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from registry.models import Household

    call_command("migrate", verbosity=0)
    households = Household.objects.count()
    if households < options.enrolments:
        print(f"Seeding {options.enrolments:,} households (seed_demo; {households:,} there)...")
        call_command("seed_demo", households=options.enrolments, seed=options.seed, skip_eligibility=True)
    else:
        call_command("seed_demo", households=households, seed=options.seed, skip_eligibility=True, verbosity=0)
    programme = bench_programme_ensure()
    enrolments_ensure(programme, count=options.enrolments)
    analyze()
    entry = {
        "label": options.label,
        "database": options.database_name,
        "enrolments": enrolments_count(programme),
        "households": Household.objects.count(),
        "date": timezone.localtime().strftime("%Y-%m-%d %H:%M %Z"),
        "machine": search.machine(),
        "formula": PROGRAMME["formula"],
        "load_before": os.getloadavg(),
    }
    print(f"{entry['enrolments']:,} active enrolments of {programme.code}; load {fmt_load(entry['load_before'])}")
    entry["generation"] = measure_generation(programme, runs=options.runs, explain=options.explain)
    cycle = approve_last_cycle(programme)
    entry["export"], files = measure_export(cycle, runs=options.runs)
    content = provider_file(files)
    entry["file"] = {"rows": content.count(b"\n") - 1, "bytes": len(content)}
    entry["reconciliation"] = measure_reconciliation(cycle, content, runs=options.runs)
    entry["load_after"] = os.getloadavg()
    print(f"load after: {fmt_load(entry['load_after'])}")
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[f"{entry['enrolments']}:{options.label or 'now'}"] = entry
    RESULTS.write_text(json.dumps(results, indent=1, sort_keys=True, default=str) + "\n")
    write_markdown(results)
    print(f"Written {REPORT.relative_to(ROOT)} and {RESULTS.relative_to(ROOT)}.")


def _bench_search():
    spec = importlib.util.spec_from_file_location("bench_search", ROOT / "bench" / "search.py")
    search = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(search)
    return search


# --- the population ----------------------------------------------------------------------------


def bench_programme_ensure():
    from django.db import transaction

    from programmes.models import Agency, BenefitFrequency, Programme, ProgrammeDistrict, ProgrammeStatus
    from programmes.services import programme_set_rules
    from registry.countries import current_country
    from registry.models import Household, Location
    from spf.models import User

    existing = Programme.objects.filter(code=PROGRAMME["code"]).first()
    if existing is not None:
        return existing
    country = current_country()
    with transaction.atomic():
        programme = Programme.objects.create(
            code=PROGRAMME["code"],
            name=PROGRAMME["name"],
            agency=Agency.objects.get(code=PROGRAMME["agency"]),
            description="A programme made up for the payroll benchmark (bench/payroll.py).",
            kind="cash_transfer",
            frequency=BenefitFrequency.MONTHLY,
            currency=country.currency,
            # A draft while the rules are set, so that saving them queues no run.
            status=ProgrammeStatus.DRAFT,
        )
        districts = Location.objects.filter(pk__in=Household.objects.values("district_id").distinct())
        for district in districts:
            ProgrammeDistrict.objects.create(programme=programme, district=district)
        programme_set_rules(
            acting_user=User.objects.get(username="ministry_admin"),
            programme=programme,
            eligibility_rule="true",
            benefit_formula=PROGRAMME["formula"],
            note="payroll benchmark",
        )
        Programme.objects.filter(pk=programme.pk).update(status=ProgrammeStatus.ACTIVE)
    programme.refresh_from_db()
    return programme


def enrolments_count(programme) -> int:
    from payments.models import Enrolment, EnrolmentStatus

    return Enrolment.objects.filter(programme=programme, status=EnrolmentStatus.ACTIVE).count()


def enrolments_ensure(
    programme, *, count: int, eligible_only: bool = False, activated: datetime.datetime | None = None
) -> int:
    """`count` active enrolments, in household order, as enrolment and approval would leave them.

    `eligible_only` enrols only households assessed eligible for the programme
    with an amount (bench/million.py; this bench's own programme takes anyone);
    `activated` is when they became active (default: 60 days ago). Returns how
    many were written.
    """
    from django.db import connection, transaction
    from django.utils import timezone

    from payments.amounts import benefit_amounts_sql
    from payments.models import Enrolment

    missing = count - enrolments_count(programme)
    if missing <= 0:
        return 0
    maker, checker = users()
    now = timezone.now()
    activated = activated or now - datetime.timedelta(days=60)
    eligible = (
        "AND EXISTS (SELECT 1 FROM programmes_eligibilityresult r WHERE r.household_id = h.id "
        "AND r.programme_id = %s AND r.outcome = 'eligible' AND r.amount > 0) "
        if eligible_only
        else ""
    )
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO payments_enrolment (status, source, external_reference, amount, currency, channel, "
            "account_number, account_name, pay_point, applied_at, verified_at, approved_at, activated_at, "
            "suspension_reason, exit_reason, exit_note, review_reason, created_at, updated_at, applied_by_id, "
            "verified_by_id, approved_by_id, district_id, household_id, programme_id) "
            "SELECT 'active', 'agency', '', NULL, %s, "
            "CASE WHEN h.id %% 20 < 12 THEN 'mobile_money' WHEN h.id %% 20 < 17 THEN 'cash' ELSE 'bank' END, "
            "CASE WHEN h.id %% 20 < 12 THEN '097' || LPAD(CAST(h.id AS TEXT), 7, '0') "
            "WHEN h.id %% 20 < 17 THEN '' ELSE '6001' || LPAD(CAST(h.id AS TEXT), 9, '0') END, "
            "COALESCE(m.first_name || ' ' || m.last_name, ''), "
            "CASE WHEN h.id %% 20 BETWEEN 12 AND 16 THEN 'Pay point ' || v.name ELSE '' END, "
            "%s, %s, %s, %s, '', '', '', '', %s, %s, %s, %s, %s, h.district_id, h.id, %s "
            "FROM registry_household h JOIN registry_location v ON v.id = h.village_id "
            "LEFT JOIN registry_member m ON m.id = h.head_id "
            "WHERE NOT EXISTS (SELECT 1 FROM payments_enrolment e WHERE e.household_id = h.id AND e.programme_id = %s) "
            + eligible
            + "ORDER BY h.id LIMIT %s",
            [
                programme.currency,
                activated,
                activated,
                activated,
                activated,
                activated,
                activated,
                maker.pk,
                maker.pk,
                checker.pk,
                programme.pk,
                programme.pk,
                *([programme.pk] if eligible_only else []),
                missing,
            ],
        )
        written = cursor.rowcount
        # The amount as approval sets it: the formula on the household's data.
        amounts = benefit_amounts_sql(
            programme=programme,
            enrolments=Enrolment.objects.filter(programme=programme, amount__isnull=True),
            reference_date=PERIOD,
        )
        cursor.execute(
            f"UPDATE payments_enrolment e SET amount = a.amount, amount_rule_version_id = %s "
            f"FROM ({amounts[0]}) a WHERE a.enrolment_id = e.id",
            [programme.current_version_id, *amounts[1]],
        )
    print(f"Wrote {written:,} active enrolments of {programme.code} in {time.perf_counter() - started:.1f} s.")
    return written


def users():
    from programmes.models import Agency
    from registry.models import Location, LocationLevel
    from spf.models import Role, User

    agency = Agency.objects.get(code=PROGRAMME["agency"])
    people = []
    for name in ("bench_payroll_maker", "bench_payroll_checker"):
        user, created = User.objects.get_or_create(
            username=name, defaults={"role": Role.PROGRAMME_OFFICER, "agency": agency}
        )
        if created:
            user.districts.set(Location.objects.filter(level=LocationLevel.DISTRICT))
        people.append(user)
    return people


def truncate_payments() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # With the enrolments' history, which names cycles: the bench writes none of its own
        # (its enrolments are made in SQL), only the amount changes of earlier generations.
        cursor.execute(f"TRUNCATE {', '.join(PAYMENT_TABLES)}, payments_enrolmentevent")


def analyze(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        if tables:
            for table in tables:
                cursor.execute(f"VACUUM ANALYZE {table}")
        else:
            cursor.execute("ANALYZE")


# --- 1. generation ----------------------------------------------------------------------------


def measure_generation(programme, *, runs: int, explain: bool) -> dict:
    from payments.payroll import payment_cycle_create, payroll_generate

    maker, _checker = users()
    rows = []
    for run in range(runs):
        truncate_payments()
        analyze("payments_payment", "payments_paymentevent", "payments_enrolment")
        cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=PERIOD)
        statements: list = []
        load = os.getloadavg()
        started = time.perf_counter()
        with record_statements(statements):
            report = payroll_generate(acting_user=maker, cycle=cycle)
        seconds = time.perf_counter() - started
        row = {
            "seconds": round(seconds, 2),
            "created": report.created,
            "amounts_changed": report.amounts_changed,
            "without_amount": report.without_amount,
            "total": f"{report.total_amount:.2f}",
            "load": load,
            "slowest": slowest(statements),
        }
        rows.append(row)
        print(
            f"generation {run + 1}: {row['seconds']:.2f} s, {report.created:,} payments, "
            f"{cycle.currency} {report.total_amount:,.2f}, {report.amounts_changed} amounts changed "
            f"(load {fmt_load(load)})"
        )
        print_slowest(row["slowest"])
        if explain and run == 0:
            row["explain"] = explain_slowest(statements)
    return summarise(rows)


def approve_last_cycle(programme):
    from payments.models import PaymentCycle
    from payments.payroll import payroll_approve

    _maker, checker = users()
    cycle = PaymentCycle.objects.get(programme=programme, period_start=PERIOD)
    return payroll_approve(acting_user=checker, cycle=cycle)


# --- 2. the payment files ---------------------------------------------------------------------


def measure_export(cycle, *, runs: int) -> tuple[dict, dict]:
    from payments.models import PaymentChannel
    from payments.payroll import payroll_export

    maker, _checker = users()
    rows, files = [], {}
    for run in range(runs):
        load = os.getloadavg()
        started = time.perf_counter()
        per_channel = {}
        for channel in PaymentChannel.values:
            channel_started = time.perf_counter()
            name, content = payroll_export(acting_user=maker, cycle=cycle, channel=channel)
            per_channel[channel] = {
                "seconds": round(time.perf_counter() - channel_started, 2),
                "rows": content.count(b"\n") - 2,
                "bytes": len(content),
            }
            files[channel] = content
        seconds = time.perf_counter() - started
        rows.append({"seconds": round(seconds, 2), "channels": per_channel, "load": load})
        print(
            f"export {run + 1}: {seconds:.2f} s for "
            + ", ".join(f"{c} {v['rows']:,} rows {v['seconds']:.2f} s" for c, v in per_channel.items())
        )
    return summarise(rows), files


# --- 3. reconciliation ------------------------------------------------------------------------


def provider_file(files: dict) -> bytes:
    """The provider's answer to the payment files: 96% paid, 3% failed, 1% unclaimed, in its own column names."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["Reference", "Status", "Amount", "Paid At", "Transaction ID"])
    paid_at = (datetime.datetime.now() - datetime.timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S")
    number = 0
    for content in files.values():
        reader = csv.DictReader(io.StringIO(content.decode()))
        for row in reader:
            if row["reference"] == "TOTAL":
                continue
            number += 1
            bucket = number % 100
            if bucket < 96:
                writer.writerow([row["reference"], "paid", row["amount"], paid_at, f"MP{number:09d}"])
            elif bucket < 99:
                writer.writerow([row["reference"], "failed", row["amount"], "", f"MP{number:09d}"])
            else:
                writer.writerow([row["reference"], "unclaimed", "", "", ""])
    return out.getvalue().encode()


def reset_reconciliation(cycle) -> None:
    """Every payment of the cycle back to pending, as exported and not yet reconciled (bench only)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM payments_paymentevent WHERE reconciliation_id IS NOT NULL")
        cursor.execute("TRUNCATE payments_reconciliationrow, payments_reconciliation CASCADE")
        cursor.execute(
            "UPDATE payments_payment SET status = 'pending', paid_amount = NULL, paid_at = NULL, "
            "provider_transaction_id = '', status_note = '', reconciled_at = NULL WHERE cycle_id = %s",
            [cycle.pk],
        )
        cursor.execute(
            "DELETE FROM payments_cycleevent WHERE cycle_id = %s AND action IN ('reconciled', 'closed')", [cycle.pk]
        )
        cursor.execute(
            "UPDATE payments_paymentcycle SET status = 'exported', closed_at = NULL WHERE id = %s", [cycle.pk]
        )
    analyze("payments_payment", "payments_paymentevent", "payments_reconciliationrow")


def measure_reconciliation(cycle, content: bytes, *, runs: int) -> dict:
    from django.db.models import Sum

    from payments.models import Payment, PaymentStatus
    from payments.reconciliation import reconciliation_import

    maker, _checker = users()
    first_rows, again_rows = [], []
    file_paid_total = sum(
        (Decimal(row["Amount"]) for row in csv.DictReader(io.StringIO(content.decode())) if row["Status"] == "paid"),
        Decimal("0"),
    )
    for run in range(runs):
        reset_reconciliation(cycle)
        statements: list = []
        load = os.getloadavg()
        started = time.perf_counter()
        with record_statements(statements):
            first = reconciliation_import(acting_user=maker, cycle=cycle, file_name="provider.csv", content=content)
        seconds = time.perf_counter() - started
        database_paid = Payment.objects.filter(cycle=cycle, status=PaymentStatus.PAID).aggregate(t=Sum("paid_amount"))[
            "t"
        ]
        agree = f"{file_paid_total:.2f}" == first.summary["applied"]["paid_total"] == f"{database_paid:.2f}"
        first_rows.append(
            {
                "seconds": round(seconds, 2),
                "rows": first.rows_total,
                "outcomes": {k: v for k, v in first.summary["outcomes"].items() if v},
                "applied": {k: v for k, v in first.summary["applied"].items() if k != "paid_total"},
                "paid_total": first.summary["applied"]["paid_total"],
                "totals_agree": agree,
                "cycle_closed": first.summary["cycle"]["pending"] == 0,
                "load": load,
                "slowest": slowest(statements),
            }
        )
        print(
            f"reconciliation {run + 1}: {seconds:.2f} s, {first.rows_total:,} rows, {first_rows[-1]['outcomes']}, "
            f"paid {first.summary['applied']['paid_total']} (file {file_paid_total:.2f}, database "
            f"{database_paid:.2f}: {'agree' if agree else 'DISAGREE'}) (load {fmt_load(load)})"
        )
        print_slowest(first_rows[-1]["slowest"])
        load = os.getloadavg()
        started = time.perf_counter()
        again = reconciliation_import(acting_user=maker, cycle=cycle, file_name="provider.csv", content=content)
        seconds = time.perf_counter() - started
        again_rows.append(
            {
                "seconds": round(seconds, 2),
                "rows": again.rows_total,
                "outcomes": {k: v for k, v in again.summary["outcomes"].items() if v},
                "load": load,
            }
        )
        print(f"   the same file again: {seconds:.2f} s, {again_rows[-1]['outcomes']} (load {fmt_load(load)})")
    return {"first": summarise(first_rows), "again": summarise(again_rows)}


# --- measuring --------------------------------------------------------------------------------


class record_statements:
    """Time every SQL statement run inside the block (as bench/referrals.py does)."""

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


def slowest(statements: list, count: int = 6) -> list[dict]:
    return [
        {"seconds": round(s, 3), "sql": " ".join(sql.split())[:220]}
        for s, sql, _params in sorted(statements, key=lambda s: -s[0])[:count]
    ]


def print_slowest(rows: list[dict]) -> None:
    for row in rows:
        print(f"   {row['seconds']:>7.3f} s  {row['sql'][:150]}")


def explain_slowest(statements: list) -> list[str]:
    """EXPLAIN ANALYZE of the slowest statement that can run again alone, in a transaction rolled back.

    The steps that read the run's temporary table cannot (it was dropped); the
    one that builds it, the amounts from the formula, can.
    """
    from django.db import connection, transaction

    runnable = [s for s in statements if "payroll_amounts_" not in s[1] or s[1].startswith("CREATE TEMPORARY TABLE")]
    if not runnable:
        return []
    _duration, sql, params = max(runnable, key=lambda s: s[0])
    lines: list[str] = []
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
            lines = [row[0] for row in cursor.fetchall()]
            raise _Rollback
    except _Rollback:
        pass
    print("\n".join(lines))
    return lines


class _Rollback(Exception):
    pass


def summarise(rows: list[dict]) -> dict:
    seconds = [row["seconds"] for row in rows]
    return {"best": min(seconds), "median": round(statistics.median(seconds), 2), "runs": rows}


def fmt_load(load) -> str:
    return " ".join(f"{x:.2f}" for x in load)


# --- the report -------------------------------------------------------------------------------


FIGURES_START, FIGURES_END = "<!-- figures: written by bench/payroll.py -->", "<!-- /figures -->"


def write_markdown(results: dict) -> None:
    """The figures part of bench/payroll-results.md, from the kept runs; the analysis around it is kept."""
    lines = [FIGURES_START, ""]
    for entry in sorted(results.values(), key=lambda entry: entry["date"]):
        m = entry["machine"]
        gen, export = entry["generation"], entry["export"]
        first, again = entry["reconciliation"]["first"], entry["reconciliation"]["again"]
        lines += [
            f"### {entry['enrolments']:,} active enrolments — {entry.get('label') or 'the code as it is'}",
            "",
            f"- Date: {entry['date']}; database `{entry['database']}` ({entry['households']:,} households, "
            "`seed_demo` seed 2026)",
            f"- Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gb']} GB memory, PostgreSQL {m['postgresql']} "
            f"(shared_buffers {m['shared_buffers']}, otherwise default settings), Python {m['python']}",
            f"- Programme `BPAY`, monthly, formula `{entry['formula']}`; channels 60% mobile money, 25% cash, 15% bank",
            f"- Provider's file: {entry['file']['rows']:,} rows ({entry['file']['bytes'] / 1e6:.1f} MB), 96% paid, "
            "3% failed, 1% unclaimed",
            "",
            "| what | best s | median s | target s | each run: s (load average, 1 min) |",
            "| --- | ---: | ---: | ---: | --- |",
            _line("payroll generation (`payroll_generate`)", gen, TARGET_GENERATION_S),
            _line("payment files, three channels (`payroll_export` × 3)", export, None),
            _line("reconciliation of the provider's file (`reconciliation_import`)", first, TARGET_RECONCILIATION_S),
            _line("the same file again (every row unchanged)", again, TARGET_RECONCILIATION_S),
            "",
            f"- Generation: {gen['runs'][0]['created']:,} payments, total ZMW {float(gen['runs'][0]['total']):,.2f}, "
            f"{gen['runs'][0]['amounts_changed']:,} amounts changed.",
            f"- Reconciliation: {_counts(first['runs'][0]['outcomes'])}"
            + (f" ({_counts(first['runs'][0]['applied'])})" if first["runs"][0].get("applied") else "")
            + f"; the same file again: {_counts(again['runs'][0]['outcomes'])}. Paid ZMW "
            f"{float(first['runs'][0]['paid_total']):,.2f}; the file, the database and the summary agree to the cent: "
            f"{'yes' if all(r['totals_agree'] for r in first['runs']) else 'NO'}; the cycle closed: "
            f"{'yes' if first['runs'][0]['cycle_closed'] else 'no'}.",
            "",
        ]
    lines.append(FIGURES_END)
    figures = "\n".join(lines)
    text = REPORT.read_text() if REPORT.exists() else ""
    if FIGURES_START in text and FIGURES_END in text:
        before, rest = text.split(FIGURES_START, 1)
        after = rest.split(FIGURES_END, 1)[1]
        text = before + figures + after
    else:
        text = (
            "## Payroll and reconciliation (`bench/payroll.py`)\n\n"
            f"Targets (the design): payroll for 200,000 beneficiaries ≤ {TARGET_GENERATION_S} s; reconciliation of "
            f"200,000 rows ≤ {TARGET_RECONCILIATION_S} s.\n\n" + figures + "\n"
        )
    REPORT.write_text(text)


def _counts(counts: dict) -> str:
    return ", ".join(f"{count:,} {name.replace('_', ' ')}" for name, count in counts.items())


def _line(what: str, figures: dict, target) -> str:
    runs = "; ".join(f"{r['seconds']:.2f} ({fmt_load(r['load'][:1])})" for r in figures["runs"])
    met = "" if target is None else (" ✓" if figures["median"] <= target else " ✗")
    return f"| {what} | {figures['best']:.2f} | {figures['median']:.2f}{met} | {target if target else '—'} | {runs} |"


if __name__ == "__main__":
    main()
