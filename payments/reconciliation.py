"""Reconciliation: the provider's file of what became of each payment, applied to a cycle.

The file (CSV or Excel) has one row per payment: its reference, the status
the provider reports (paid, failed, unclaimed), the amount, when it was paid
and the provider's transaction id. Every row of the file ends in exactly one
`ReconciliationRow` whose outcome says what became of it, and the row-by-row
report is `reconciliation_report_csv`.

How a row is judged, in this order:

* invalid: a cell cannot be read (the message names the column and the
  problem), or the move is not allowed (`PROVIDER_MOVES`);
* duplicate row: the reference is on several rows of the file. When the rows
  agree, the first counts and the others are duplicates; when they disagree,
  none is applied (the provider must say which is right);
* unknown reference: no payment of this cycle has it (the message says when it
  belongs to another cycle);
* unchanged: the payment already has that status (and, for paid, the same
  amount and transaction): the same file imported twice changes nothing;
* already paid: a paid payment is final, never paid twice nor un-paid;
* amount mismatch: the amount is not the payment's: reported, not applied;
* applied: the payment takes the status, with paid amount, time, transaction
  id and reconciliation time, and a `PaymentEvent` (who, which file, which
  line).

A cycle is reconciled once its payment file was exported (sent to the
provider): the provider can only report on what it was sent, and the export is
what records, with its checksum, what that was. A closed cycle still takes
files: a failed or unclaimed payment can be collected later, and importing a
file again must stay safe. When no payment of the cycle is pending any more,
the import closes it.

Set-based: the file is checked cell by cell in Python (strict parsing, one
pass), then the rows go into a temporary table (COPY on PostgreSQL) and are
judged and applied with a few joins, so 200,000 rows take seconds
(bench/payroll-results.md). The whole import is one transaction holding the
cycle's row lock: two imports of the same file at once take turns, and the
second finds every row unchanged.
"""

import csv
import datetime
import hashlib
import io
import math
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from registry.uploads import UploadRefused, csv_text, open_workbook, read_rows_safely, read_upload, upload_limit
from spf.exports import safe_cell

from .models import (
    CycleEvent,
    CycleStatus,
    Payment,
    PaymentCycle,
    PaymentEvent,
    PaymentStatus,
    Reconciliation,
    ReconciliationRow,
    RowOutcome,
)
from .payroll import _lock_cycle, may_run_payroll

P = PaymentStatus
O = RowOutcome  # noqa: E741 - the outcomes read as O.APPLIED, O.UNCHANGED...

# Where a payment may go on the provider's word. A paid payment is final; a failed or
# unclaimed one may still be collected later (the provider pays it after all).
PROVIDER_MOVES: dict[str, tuple[str, ...]] = {
    P.PENDING: (P.PAID, P.FAILED, P.UNCLAIMED),
    P.FAILED: (P.PAID,),
    P.UNCLAIMED: (P.PAID,),
    P.PAID: (),
}
# Cycles a file may be imported into (see the module's docstring).
RECONCILABLE_CYCLES = (CycleStatus.EXPORTED, CycleStatus.CLOSED)

# The columns of the file and the spellings providers use for them (compared in lower
# case, with spaces, dashes and dots read as "_").
COLUMNS: dict[str, tuple[str, ...]] = {
    "reference": (
        "reference",
        "ref",
        "payment_reference",
        "payment_ref",
        "reference_number",
        "client_reference",
        "beneficiary_reference",
        "our_reference",
    ),
    "status": ("status", "payment_status", "transaction_status", "result", "outcome", "state"),
    "amount": ("amount", "amount_paid", "paid_amount", "payment_amount", "value"),
    "paid_at": (
        "paid_at",
        "paid_on",
        "paid_date",
        "paid_time",
        "date_paid",
        "time_paid",
        "payment_date",
        "payment_time",
        "transaction_date",
        "transaction_time",
        "completed_at",
        "date_time",
        "datetime",
        "timestamp",
        "date",
        "time",
    ),
    "provider_transaction_id": (
        "provider_transaction_id",
        "transaction_id",
        "transaction_reference",
        "transaction_ref",
        "transaction_number",
        "txn_id",
        "txn_ref",
        "tx_id",
        "trans_id",
        "provider_reference",
        "provider_ref",
        "receipt",
        "receipt_number",
        "receipt_no",
    ),
}
REQUIRED_COLUMNS = ("reference", "status", "amount", "paid_at")

# The words providers use for the three statuses.
STATUS_WORDS = {
    **dict.fromkeys(("paid", "success", "successful", "succeeded", "completed", "complete"), P.PAID),
    **dict.fromkeys(("failed", "failure", "fail", "rejected", "declined", "error"), P.FAILED),
    **dict.fromkeys(("unclaimed", "uncollected", "not collected", "not_collected", "expired"), P.UNCLAIMED),
}
# An amount as the payment file writes it: digits, and at most two decimals after a point.
# No thousands separators, no decimal commas, no currency: "1,50" is refused, not guessed.
AMOUNT = re.compile(r"(\d{1,10})(?:\.(\d{1,2}))?")
# A provider's clock may run a little ahead of ours; a time later than this is a mistake.
CLOCK_GRACE = datetime.timedelta(minutes=15)
# The report's fields are this long (ReconciliationRow); longer cells are cut there.
REFERENCE_LENGTH, STATUS_LENGTH, AMOUNT_LENGTH, AT_LENGTH, TRANSACTION_LENGTH = 64, 32, 32, 40, 64
# Rows fetched per round trip when writing the report of a national file.
REPORT_CHUNK = 5000


@dataclass(slots=True)
class FileRow:
    """One row of the file, as read: the cells as given (for the report) and their values, or the problem."""

    line: int
    reference: str
    reported_status: str
    reported_amount: str
    reported_at: str
    provider_transaction_id: str
    status: str | None
    amount_cents: int | None
    paid_at: datetime.datetime | None
    problem: str | None


# --- reading the file -----------------------------------------------------------------------


def _file_error(message: str) -> ValidationError:
    return ValidationError({"file": [message]})


def _table(file_name: str, content: bytes) -> tuple[list, Iterator[tuple[int, tuple]]]:
    """The header row and the rows as (line number as the user sees it, cells), through the checks every
    upload passes (registry/uploads.py). A problem that shows only while the rows are read is UploadRefused
    from the rows."""
    suffix = PurePath(file_name or "").suffix.lower()
    try:
        if len(content) > upload_limit():
            raise UploadRefused(f"{file_name} is larger than the {upload_limit() // (1024 * 1024)} MB a file may be.")
        if suffix == ".xlsx" or content[:4] == b"PK\x03\x04":
            workbook = open_workbook(content, file_name=file_name)
            rows = read_rows_safely(workbook.worksheets[0].iter_rows(values_only=True), file_name=file_name)
            header = next(rows, None)
            return list(header or ()), enumerate(rows, start=2)
        if suffix not in (".csv", ".txt", ""):
            raise UploadRefused(f"{file_name}: send the provider's file as CSV (.csv) or Excel (.xlsx).")
        text = csv_text(content, file_name=file_name)
        delimiter = max((",", ";", "\t", "|"), key=text.split("\n", 1)[0].count)
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        rows = read_rows_safely(reader, file_name=file_name, reader=reader)
        header = next(rows, None)
    except UploadRefused as refusal:
        raise _file_error(str(refusal)) from refusal
    return list(header or ()), ((reader.line_num, tuple(cells)) for cells in rows)


def _header_key(cell: Any) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(cell or "").strip().lower()).strip("_")


def _columns(header: list) -> dict[str, tuple[int, str]]:
    """Each column of the file: its position and its name as the file spells it. Refuses a missing column."""
    spellings = {spelling: name for name, variants in COLUMNS.items() for spelling in variants}
    found: dict[str, tuple[int, str]] = {}
    for position, cell in enumerate(header):
        name = spellings.get(_header_key(cell))
        if name is None:
            continue
        if name in found:
            raise _file_error(
                f"The columns '{found[name][1]}' and '{str(cell).strip()}' both give the {name}: keep one of them."
            )
        found[name] = (position, str(cell).strip())
    missing = [name for name in REQUIRED_COLUMNS if name not in found]
    if missing:
        accepted = "; ".join(f"{name}: {', '.join(COLUMNS[name][:4])}" for name in missing)
        raise _file_error(
            f"The file has no {', '.join(missing)} column{'s' if len(missing) > 1 else ''} "
            f"(the first row must name the columns; accepted names: {accepted})."
        )
    return found


def _cell_text(cell: Any) -> str:
    if type(cell) is str:  # every CSV cell: the common case first
        return cell.strip()
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime.datetime):
        return cell.isoformat(sep=" ")
    return str(cell).strip()


def _amount_cents(cell: Any) -> int | None:
    """The amount in cents, or None when it is not written as the payment file writes amounts."""
    if isinstance(cell, bool):
        return None
    if isinstance(cell, int):
        return cell * 100 if 0 <= cell < 10**10 else None
    if isinstance(cell, float):
        if not math.isfinite(cell):
            return None
        cell = repr(cell)  # Excel's 150.35 is the float whose shortest form is "150.35"
    match = AMOUNT.fullmatch(str(cell).strip())
    if match is None:
        return None
    return int(match[1]) * 100 + int((match[2] or "0").ljust(2, "0"))


class _RowReader:
    """Reads and checks the rows of one file: the columns' positions, the time zone and the
    latest believable time are looked up once, not once a row (a national file has 200,000)."""

    def __init__(self, columns: dict[str, tuple[int, str]]):
        self.positions = [(name, columns[name][0] if name in columns else None) for name in COLUMNS]
        self.names = {name: spelt for name, (_position, spelt) in columns.items()}
        self.zone = timezone.get_current_timezone()
        self.latest = timezone.now() + CLOCK_GRACE
        self.moments: dict[str, datetime.datetime | None] = {}

    def moment(self, cell: Any) -> datetime.datetime | None:
        """A time as the file gives it (ISO 8601, or an Excel date); without a zone, the country's local time."""
        if isinstance(cell, datetime.datetime):
            moment = cell
        elif isinstance(cell, datetime.date):
            moment = datetime.datetime.combine(cell, datetime.time())
        else:
            text = str(cell).strip()
            if text in self.moments:  # providers stamp many rows with the same minute
                return self.moments[text]
            try:
                moment = datetime.datetime.fromisoformat(text)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is None:
                moment = moment.replace(tzinfo=self.zone)
            self.moments[text] = moment
            return moment
        return moment.replace(tzinfo=self.zone) if moment.tzinfo is None else moment

    def read(self, line: int, cells: tuple) -> FileRow:
        size = len(cells)
        given = {
            name: cells[position] if position is not None and position < size else None
            for name, position in self.positions
        }
        raw = {name: _cell_text(cell) for name, cell in given.items()}
        column = self.names.get
        problems: list[str] = []
        reference = raw["reference"]
        if not reference:
            problems.append(f"{column('reference')}: empty; give the payment's reference as in the payment file.")
        elif len(reference) > REFERENCE_LENGTH:
            problems.append(f"{column('reference')}: longer than {REFERENCE_LENGTH} characters.")

        status = STATUS_WORDS.get(raw["status"].lower())
        if status is None:
            shown = f"'{raw['status']}' is not" if raw["status"] else "empty; it must be"
            problems.append(f"{column('status')}: {shown} one of paid, failed, unclaimed.")

        amount_cents = None
        if raw["amount"]:
            amount_cents = _amount_cents(given["amount"])
            if amount_cents is None:
                problems.append(
                    f"{column('amount')}: '{raw['amount']}' is not an amount; write digits with a point before "
                    "at most two decimals (150 or 150.00), no thousands separator or currency."
                )
            elif amount_cents == 0 and status != P.PAID:
                amount_cents = None  # nothing was paid: a failed or unclaimed row may say 0
        if status == P.PAID and not raw["amount"]:
            problems.append(f"{column('amount')}: empty; a paid row needs the amount paid.")
        elif status == P.PAID and amount_cents == 0:
            problems.append(f"{column('amount')}: 0; a paid row needs the amount paid.")

        paid_at = None
        if raw["paid_at"]:
            paid_at = self.moment(given["paid_at"])
            if paid_at is None:
                problems.append(
                    f"{column('paid_at')}: '{raw['paid_at']}' is not a date and time; write it as "
                    "2026-11-15 14:30 (year-month-day, 24-hour clock)."
                )
            elif paid_at > self.latest:
                problems.append(f"{column('paid_at')}: {raw['paid_at']} is in the future.")
        elif status == P.PAID:
            problems.append(f"{column('paid_at')}: empty; a paid row needs the time it was paid.")

        transaction_id = raw["provider_transaction_id"]
        if len(transaction_id) > TRANSACTION_LENGTH:
            problems.append(f"{column('provider_transaction_id')}: longer than {TRANSACTION_LENGTH} characters.")
        return FileRow(
            line=line,
            reference=reference[:REFERENCE_LENGTH],
            reported_status=raw["status"][:STATUS_LENGTH],
            reported_amount=raw["amount"][:AMOUNT_LENGTH],
            reported_at=raw["paid_at"][:AT_LENGTH],
            provider_transaction_id=transaction_id[:TRANSACTION_LENGTH],
            status=status,
            amount_cents=amount_cents,
            paid_at=paid_at,
            problem=" ".join(problems)[:255] if problems else None,
        )


def reconciliation_upload_content(upload) -> bytes:
    """The uploaded provider's file; past the upload limit it is refused on "file" without being read."""
    try:
        return read_upload(upload)
    except UploadRefused as refusal:
        raise _file_error(str(refusal)) from refusal


def reconciliation_file_read(*, file_name: str, content: bytes) -> tuple[list[FileRow], dict[str, str]]:
    """Every row of the provider's file, read and checked cell by cell (nothing is looked up),
    and each column's name as the file spells it.

    ValidationError on "file" when the file cannot be read at all: not CSV or
    Excel, a required column missing (named), or no rows.
    """
    header, rows = _table(file_name, content)
    columns = _columns(header)
    reader = _RowReader(columns)
    try:
        read = [
            reader.read(line, cells)
            for line, cells in rows
            if any(cell is not None and str(cell).strip() for cell in cells)  # blank lines are not rows
        ]
    except UploadRefused as problem:  # the file broke off half-way: nothing of it is applied
        raise _file_error(str(problem)) from problem
    if not read:
        raise _file_error(f"{file_name} has a header but no rows.")
    return read, reader.names


# --- importing --------------------------------------------------------------------------------


def reconciliation_import(*, acting_user, cycle: PaymentCycle, file_name: str, content: bytes) -> Reconciliation:
    """Apply the provider's file to `cycle`; every row ends in a `ReconciliationRow` with its outcome.

    PermissionDenied unless the programme's agency or ministry staff;
    ValidationError naming the field when the cycle was not exported
    ("status") or the file cannot be read at all ("file").
    """
    cycle = PaymentCycle.objects.select_related("programme__agency").get(pk=cycle.pk)
    if not may_run_payroll(acting_user, cycle.programme):
        raise PermissionDenied(f"Only {cycle.programme.agency.name} or ministry staff can reconcile its payments.")
    # Read before taking the lock: a large file is parsed while other imports of the cycle proceed.
    rows, column_names = reconciliation_file_read(file_name=file_name, content=content)
    return _import(
        acting_user=acting_user,
        cycle=cycle,
        file_name=file_name,
        content=content,
        rows=rows,
        column_names=column_names,
    )


@transaction.atomic
def _import(
    *,
    acting_user,
    cycle: PaymentCycle,
    file_name: str,
    content: bytes,
    rows: list[FileRow],
    column_names: dict[str, str],
) -> Reconciliation:
    cycle = _lock_cycle(cycle)
    if cycle.status not in RECONCILABLE_CYCLES:
        raise ValidationError(
            {
                "status": [
                    f"The payroll of {cycle} is {cycle.get_status_display().lower()}: export its payment file "
                    "before reconciling, the provider can only report on what it was sent."
                ]
            }
        )
    digest = hashlib.sha256(content).hexdigest()
    earlier = list(cycle.reconciliations.filter(file_sha256=digest).order_by("pk").values_list("pk", flat=True))
    reconciliation = Reconciliation.objects.create(
        cycle=cycle, file_name=file_name[:255], file_sha256=digest, uploaded_by=acting_user
    )
    now = timezone.now()
    name = uuid.uuid4().hex[:12]
    file_table, table = f"reconciliation_file_{name}", f"reconciliation_rows_{name}"
    with connection.cursor() as cursor:
        _load_rows(cursor, file_table, rows)
        _judge_rows(cursor, file_table, table, cycle=cycle, column_names=column_names)
        _apply_rows(cursor, table, reconciliation=reconciliation, acting_user=acting_user, now=now, file_name=file_name)
        _write_report_rows(cursor, table, reconciliation=reconciliation)
        cursor.execute(
            f"SELECT outcome, status, COUNT(*), SUM(amount_cents) FROM {table} GROUP BY outcome, status"  # noqa: S608
        )
        tally = cursor.fetchall()
        cursor.execute(f"DROP TABLE {table}")
        cursor.execute(f"DROP TABLE {file_table}")
    summary = _summary(tally, cycle=cycle)
    if earlier:
        summary["same_file_as"] = earlier
    outcomes = summary["outcomes"]
    reconciliation.rows_total = len(rows)
    reconciliation.rows_applied = outcomes[O.APPLIED]
    reconciliation.rows_unchanged = outcomes[O.UNCHANGED]
    reconciliation.rows_rejected = len(rows) - outcomes[O.APPLIED] - outcomes[O.UNCHANGED]
    reconciliation.summary = summary
    reconciliation.save()
    CycleEvent.objects.create(
        cycle=cycle,
        action="reconciled",
        actor=acting_user,
        detail={
            "reconciliation": reconciliation.pk,
            "file_name": reconciliation.file_name,
            "sha256": digest,
            "rows": len(rows),
            **{outcome: count for outcome, count in outcomes.items() if count},
            "paid_total": summary["applied"]["paid_total"],
        },
    )
    if cycle.status == CycleStatus.EXPORTED and summary["cycle"]["pending"] == 0:
        cycle.status, cycle.closed_at = CycleStatus.CLOSED, now
        cycle.save()
        CycleEvent.objects.create(
            cycle=cycle,
            action="closed",
            actor=acting_user,
            detail={
                "reconciliation": reconciliation.pk,
                "paid": summary["cycle"]["paid"],
                "paid_total": summary["cycle"]["paid_total"],
                "failed": summary["cycle"]["failed"],
                "unclaimed": summary["cycle"]["unclaimed"],
            },
        )
    return reconciliation


# Row values as they go into the temporary table, in this order.
_TEMP_COLUMNS = (
    "line",
    "reference",
    "reported_status",
    "reported_amount",
    "reported_at",
    "provider_transaction_id",
    "status",
    "amount_cents",
    "paid_at",
    "problem",
)


def _load_rows(cursor, table: str, rows: list[FileRow]) -> None:
    """The rows into a temporary table: COPY on PostgreSQL, an executemany elsewhere."""
    postgres = connection.vendor == "postgresql"
    cursor.execute(
        f"CREATE TEMPORARY TABLE {table} ("
        "line INTEGER PRIMARY KEY, reference VARCHAR(64) NOT NULL, reported_status VARCHAR(32) NOT NULL, "
        "reported_amount VARCHAR(32) NOT NULL, reported_at VARCHAR(40) NOT NULL, "
        "provider_transaction_id VARCHAR(64) NOT NULL, status VARCHAR(12), amount_cents BIGINT, "
        f"paid_at {'TIMESTAMP WITH TIME ZONE' if postgres else 'TEXT'}, problem TEXT)"
    )
    if postgres:
        # One big statement per step, run once: compiling them costs more than it saves.
        cursor.execute("SET LOCAL jit = off")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows(
            (
                row.line,
                row.reference,
                row.reported_status,
                row.reported_amount,
                row.reported_at,
                row.provider_transaction_id,
                row.status,
                row.amount_cents,
                row.paid_at.isoformat() if row.paid_at else None,
                row.problem,
            )
            for row in rows
        )
        buffer.seek(0)
        # In CSV an unquoted empty field is NULL: the text cells of the file must stay "".
        cursor.cursor.copy_expert(
            f"COPY {table} ({', '.join(_TEMP_COLUMNS)}) FROM STDIN WITH (FORMAT csv, FORCE_NOT_NULL "
            "(reference, reported_status, reported_amount, reported_at, provider_transaction_id))",
            buffer,
        )
        cursor.execute(f"ANALYZE {table}")  # temporary tables are never analysed by autovacuum
    else:
        adapt = connection.ops.adapt_datetimefield_value
        cursor.executemany(
            f"INSERT INTO {table} ({', '.join(_TEMP_COLUMNS)}) VALUES ({', '.join(['%s'] * len(_TEMP_COLUMNS))})",
            [
                (
                    row.line,
                    row.reference,
                    row.reported_status,
                    row.reported_amount,
                    row.reported_at,
                    row.provider_transaction_id,
                    row.status,
                    row.amount_cents,
                    adapt(row.paid_at),
                    row.problem,
                )
                for row in rows
            ],
        )


def _cents_text(sql: str) -> str:
    """An amount in cents (an integer expression) as text with two decimals, the same on both databases."""
    if connection.vendor == "postgresql":
        return f"CAST(CAST({sql} AS NUMERIC(14, 2)) / 100 AS NUMERIC(14, 2))"
    # %% : the query goes with parameters, and Django's debug log formats it with `%`.
    return f"printf('%%.2f', {sql} / 100.0)"


def _amount_text(sql: str) -> str:
    """A money column as text with two decimals, the same on both databases."""
    if connection.vendor == "postgresql":
        return f"CAST({sql} AS TEXT)"
    return f"printf('%%.2f', {sql})"


def _text(sql: str) -> str:
    return f"CAST({sql} AS TEXT)"


def _allowed_move_sql() -> tuple[str, list[str]]:
    """SQL true when the payment `p` may take the row `t`'s status: PROVIDER_MOVES, as a condition."""
    clauses, params = [], []
    for current, moves in PROVIDER_MOVES.items():
        if moves:
            clauses.append(f"(p.status = %s AND t.status IN ({', '.join(['%s'] * len(moves))}))")
            params += [current, *moves]
    return "(" + " OR ".join(clauses) + ")", params


def _judge_rows(cursor, file_table: str, table: str, *, cycle: PaymentCycle, column_names: dict[str, str]) -> None:
    """The rows of the file with their payment, outcome and message, as the temporary table `table`.

    One pass over the file's rows (a join with the cycle's payments, a window over the
    references), so the rows are written once. `column_names`: the columns as the file spells
    them, for the messages. Nothing is written to the payments yet.
    """
    payment_table = Payment._meta.db_table
    allowed, allowed_params = _allowed_move_sql()
    row_key = "status || '|' || COALESCE(amount_cents, -1) || '|' || provider_transaction_id"
    # The branches of the two CASEs come in the same order: the first that holds decides.
    duplicate = "d.copies > 1 AND (d.differ OR t.line <> d.first_line)"
    unchanged = (
        "p.status = t.status AND (p.status <> %s OR "
        "(t.amount_cents = ROUND(p.paid_amount * 100) AND t.provider_transaction_id = p.provider_transaction_id))"
    )
    mismatch = "t.amount_cents IS NOT NULL AND t.amount_cents <> ROUND(p.amount * 100)"
    outcome = (
        f"CASE WHEN t.problem IS NOT NULL THEN %s WHEN {duplicate} THEN %s WHEN p.id IS NULL THEN %s "
        f"WHEN {unchanged} THEN %s WHEN p.status = %s THEN %s WHEN NOT {allowed} THEN %s "
        f"WHEN {mismatch} THEN %s ELSE %s END"
    )
    outcome_params = [
        O.INVALID,
        O.DUPLICATE_ROW,
        O.UNKNOWN_REFERENCE,
        P.PAID,
        O.UNCHANGED,
        P.PAID,
        O.ALREADY_PAID,
        *allowed_params,
        O.INVALID,
        O.AMOUNT_MISMATCH,
        O.APPLIED,
    ]
    message = (
        f"CASE WHEN t.problem IS NOT NULL THEN t.problem "
        f"WHEN {duplicate} AND d.differ THEN 'Reference on ' || {_text('d.copies')} || "
        f"' rows of the file that differ (first on line ' || {_text('d.first_line')} || "
        f"'): none applied; the provider must say which is right.' "
        f"WHEN {duplicate} THEN 'Reference repeated: the same as line ' || {_text('d.first_line')} || "
        f"', which is the one counted.' "
        f"WHEN p.id IS NULL THEN 'No payment of this cycle has this reference.' "
        f"WHEN {unchanged} THEN 'Already recorded as ' || p.status || '.' "
        f"WHEN p.status = %s AND t.status = %s THEN 'Already paid (' || {_amount_text('p.paid_amount')} || "
        f"', transaction ' || CASE WHEN p.provider_transaction_id = '' THEN 'not given' "
        f"ELSE p.provider_transaction_id END || '): a payment is never paid twice; this row differs, nothing changed.' "
        f"WHEN p.status = %s THEN 'Already paid: a paid payment is final, it cannot become ' || t.status || '.' "
        f"WHEN NOT {allowed} THEN %s || ': the payment is already ' || p.status || "
        f"'; only paid can follow (collected later).' "
        f"WHEN {mismatch} THEN %s || ': the file says ' || {_cents_text('t.amount_cents')} || "
        f"', the payment is ' || {_amount_text('p.amount')} || ': not applied.' "
        f"WHEN t.status = %s AND p.status <> %s THEN 'Paid (collected after being reported ' || p.status || "
        f"'): recorded.' "
        f"WHEN t.status = %s THEN 'Paid: recorded.' "
        f"ELSE 'Reported ' || t.status || ': recorded; it can be reissued in a later cycle.' END"
    )
    message_params = [
        P.PAID,
        P.PAID,
        P.PAID,
        P.PAID,
        *allowed_params,
        column_names["status"],
        column_names["amount"],
        P.PAID,
        P.PENDING,
        P.PAID,
    ]
    cursor.execute(
        f"CREATE TEMPORARY TABLE {table} AS SELECT t.line, t.reference, t.reported_status, t.reported_amount, "
        f"t.reported_at, t.provider_transaction_id, t.status, t.amount_cents, t.paid_at, "
        f"p.id AS payment_id, p.status AS from_status, {outcome} AS outcome, {message} AS message "
        f"FROM {file_table} AS t "
        # A reference on several rows: the first counts when they agree, none when they differ.
        f"LEFT JOIN (SELECT line, MIN(line) OVER w AS first_line, COUNT(*) OVER w AS copies, "
        f"MIN({row_key}) OVER w <> MAX({row_key}) OVER w AS differ "
        f"FROM {file_table} WHERE problem IS NULL WINDOW w AS (PARTITION BY reference)) AS d ON d.line = t.line "
        # The cycle's own payments only (a reference is unique across every cycle).
        f"LEFT JOIN {payment_table} AS p ON p.reference = t.reference AND p.cycle_id = %s AND t.problem IS NULL",
        [*outcome_params, *message_params, cycle.pk],
    )
    if connection.vendor == "postgresql":
        cursor.execute(f"ANALYZE {table}")  # temporary tables are never analysed by autovacuum
    # The few rows that need a second look, each by an index.
    cursor.execute(
        f"UPDATE {table} AS t SET message = 'A payment of ' || g.code || ' for the period starting ' || "
        f"{_text('c.period_start')} || ', not of this cycle: import that row into its own cycle.' "
        f"FROM {payment_table} AS p JOIN {PaymentCycle._meta.db_table} AS c ON c.id = p.cycle_id "
        f"JOIN {cycle.programme._meta.db_table} AS g ON g.id = c.programme_id "
        f"WHERE t.outcome = %s AND p.reference = t.reference",
        [O.UNKNOWN_REFERENCE],
    )
    # Collected after all, but already paid again in a later cycle: recorded (the money has
    # left), and the officer is told to look at the reissue.
    cursor.execute(
        f"UPDATE {table} AS t SET message = t.message || ' It was reissued as ' || r.reference || ' (' || "
        f"r.status || '): check that reissue.' FROM {payment_table} AS r "
        f"WHERE t.outcome = %s AND t.status = %s AND t.from_status <> %s AND r.reissue_of_id = t.payment_id",
        [O.APPLIED, P.PAID, P.PENDING],
    )


def _apply_rows(cursor, table: str, *, reconciliation: Reconciliation, acting_user, now, file_name: str) -> int:
    """The applied rows onto their payments, each with its PaymentEvent. Returns how many."""
    payment_table = Payment._meta.db_table
    source = f"{PurePath(file_name).name[:100]}, line "
    cursor.execute(
        f"UPDATE {payment_table} AS p SET status = t.status, "
        f"paid_amount = CASE WHEN t.status = %s THEN t.amount_cents / 100.0 ELSE NULL END, "
        f"paid_at = CASE WHEN t.status = %s THEN t.paid_at ELSE NULL END, "
        f"provider_transaction_id = t.provider_transaction_id, reconciled_at = %s, "
        f"status_note = SUBSTR('Reported ' || t.status || ' in ' || %s || {_text('t.line')} || "
        f"CASE WHEN t.status <> %s AND t.reported_at <> '' THEN ' (at ' || t.reported_at || ')' ELSE '' END "
        f"|| '.', 1, 255) "
        f"FROM {table} AS t WHERE t.outcome = %s AND p.id = t.payment_id",
        [P.PAID, P.PAID, now, source, P.PAID, O.APPLIED],
    )
    applied = cursor.rowcount
    cursor.execute(
        f"INSERT INTO {PaymentEvent._meta.db_table} "
        f"(payment_id, from_status, to_status, actor_id, reconciliation_id, reason, at) "
        f"SELECT payment_id, from_status, status, %s, %s, SUBSTR('Reported by the provider in ' || %s || "
        f"{_text('line')} || '.', 1, 255), %s FROM {table} WHERE outcome = %s ORDER BY line",
        [acting_user.pk if acting_user else None, reconciliation.pk, source, now, O.APPLIED],
    )
    return applied


def _write_report_rows(cursor, table: str, *, reconciliation: Reconciliation) -> None:
    cursor.execute(
        f"INSERT INTO {ReconciliationRow._meta.db_table} (reconciliation_id, line, reference, reported_status, "
        f"reported_amount, reported_at, provider_transaction_id, payment_id, outcome, message) "
        f"SELECT %s, line, reference, reported_status, reported_amount, reported_at, provider_transaction_id, "
        f"payment_id, outcome, SUBSTR(message, 1, 255) FROM {table} ORDER BY line",
        [reconciliation.pk],
    )


def _cents_as_money(cents: int | None) -> str:
    return f"{Decimal(cents or 0) / 100:.2f}"


def _summary(tally: Iterable[tuple], *, cycle: PaymentCycle) -> dict:
    """Counts by outcome; what the file reports, what was applied, and where the cycle stands now.

    Amounts are text with two decimals (JSON has no decimals); cents are
    summed as integers, so the file, the report and the database agree to the cent.
    """
    outcomes = dict.fromkeys(O.values, 0)
    reported = {status: {"rows": 0, "cents": 0} for status in (P.PAID, P.FAILED, P.UNCLAIMED)}
    applied = {status: {"rows": 0, "cents": 0} for status in (P.PAID, P.FAILED, P.UNCLAIMED)}
    for outcome, status, count, cents in tally:
        outcomes[outcome] += count
        if status is None:  # unreadable status: counted as invalid only
            continue
        reported[status]["rows"] += count
        reported[status]["cents"] += int(cents or 0)
        if outcome == O.APPLIED:
            applied[status]["rows"] += count
            applied[status]["cents"] += int(cents or 0)
    now = cycle.payments.aggregate(
        payments=Count("pk"),
        total=Sum("amount"),
        pending=Count("pk", filter=Q(status=P.PENDING)),
        paid=Count("pk", filter=Q(status=P.PAID)),
        paid_total=Sum("paid_amount", filter=Q(status=P.PAID)),
        failed=Count("pk", filter=Q(status=P.FAILED)),
        unclaimed=Count("pk", filter=Q(status=P.UNCLAIMED)),
    )
    return {
        "currency": cycle.currency,
        "outcomes": outcomes,
        "file": {
            "rows": sum(outcomes.values()),
            "paid_rows": reported[P.PAID]["rows"],
            "paid_total": _cents_as_money(reported[P.PAID]["cents"]),
            "failed_rows": reported[P.FAILED]["rows"],
            "unclaimed_rows": reported[P.UNCLAIMED]["rows"],
        },
        "applied": {
            "paid": applied[P.PAID]["rows"],
            "paid_total": _cents_as_money(applied[P.PAID]["cents"]),
            "failed": applied[P.FAILED]["rows"],
            "unclaimed": applied[P.UNCLAIMED]["rows"],
        },
        "cycle": {
            "payments": now["payments"],
            "total_amount": f"{now['total'] or Decimal('0'):.2f}",
            "pending": now["pending"],
            "paid": now["paid"],
            "paid_total": f"{now['paid_total'] or Decimal('0'):.2f}",
            "failed": now["failed"],
            "unclaimed": now["unclaimed"],
        },
    }


# --- the report ---------------------------------------------------------------------------------

REPORT_COLUMNS = (
    "line",
    "reference",
    "status",
    "amount",
    "paid_at",
    "provider_transaction_id",
    "outcome",
    "message",
)


def reconciliation_report_csv(*, reconciliation: Reconciliation) -> bytes:
    """One line per row of the file, in the file's order: what it said, its outcome and why."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    rows = reconciliation.rows.order_by("line").values_list(
        "line",
        "reference",
        "reported_status",
        "reported_amount",
        "reported_at",
        "provider_transaction_id",
        "outcome",
        "message",
    )
    for line, *cells, outcome, message in rows.iterator(chunk_size=REPORT_CHUNK):
        writer.writerow([line, *(safe_cell(cell) for cell in cells), outcome, safe_cell(message)])
    return out.getvalue().encode("utf-8")


__all__ = [
    "COLUMNS",
    "PROVIDER_MOVES",
    "RECONCILABLE_CYCLES",
    "FileRow",
    "reconciliation_file_read",
    "reconciliation_import",
    "reconciliation_report_csv",
]
