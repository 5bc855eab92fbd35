"""Bulk import of households and members from a CSV or Excel file.

One row per member; rows sharing a `household_ref` are one household. An
import runs in three steps, each a function here:

* `import_submit` stores the file as an `ImportJob` and queues the task;
* `import_validate` reads and checks EVERY row before anything is written and
  returns a plan: the households to write, the problems (row, column, words)
  and the people who are probably registered already;
* `import_apply` writes the plan in one transaction with bulk inserts.

`import_job_run` (called by the Celery task) chains the last two behind a
status guard, so running a job twice writes nothing twice.

The field rules are the registry's own (`validate_member`, `clean_attributes`,
the country's national ID pattern); this module only turns spreadsheet cells
into values and does the checks that a one-household form never needs
(uniqueness inside the file, households spread over many rows).

Speed (design target: 100,000 households in a minute; bench/import-results.md):
a member row is checked by `MemberRowCheck`, which does what
`refresh_member_keys` and `validate_member` do without a model instance per
row and remembers what repeats (tests hold it to the same values and words as
those two, which stay the reference); a checked row is kept as a `MemberDraft`,
not a model instance. On PostgreSQL the rows are written with COPY and the
members' history with one INSERT … SELECT; elsewhere with `bulk_create`.
"""

import csv
import datetime
import gc
import heapq
import io
import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache, partial
from itertools import chain
from operator import attrgetter, itemgetter
from pathlib import PurePath
from typing import Any

import openpyxl
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.core.validators import MaxLengthValidator
from django.db import connection, models, transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

from spf.bulk_copy import copy_rows, raw_cursor
from spf.exports import safe_cell, safe_row
from spf.outbox import job_is_waiting, job_queue
from spf.running import RunningJob, job_claim, job_is_orphaned, orphans_detectable
from spf.scope import user_may_see_district

from . import names
from .attributes import FALSE_WORDS, TRUE_WORDS, active_definitions, clean_attributes
from .countries import current_country
from .models import (
    DISABILITY_DOMAINS,
    AttributeDefinition,
    AttributeEntity,
    ChangeAction,
    ChangeEntry,
    Difficulty,
    Household,
    ImportJob,
    ImportMode,
    ImportStatus,
    Location,
    LocationLevel,
    Member,
    Relationship,
    SchoolAttendance,
    Sex,
    WorkStatus,
)
from .selectors import (
    DUPLICATES_SHOWN,
    _birth_closeness,
    duplicate_score,
    member_duplicate_candidates,
    members_for,
    villages_for,
)
from .services import (
    DUPLICATE_CONFIRM_SCORE,
    HOUSEHOLD_FIELDS,
    MEMBER_FIELDS,
    _as_json,
    allocate_household_numbers,
)
from .signals import announce_households_changed
from .uploads import (
    UploadRefused,
    check_stored_size,
    csv_delimiter,
    csv_text,
    open_workbook,
    read_rows_safely,
    sniff_refusal,
    upload_limit,
)

logger = logging.getLogger(__name__)

# Rows between two progress writes: at the ~15,000 rows a second validation
# runs, the page moves every fraction of a second without a write per row.
PROGRESS_EVERY = 2_000
# Rows per INSERT: large enough that 100,000 households are a few hundred
# statements, small enough to stay far below PostgreSQL's 65,535 parameters
# (a member row has about 35 columns).
INSERT_BATCH_SIZE = 1_500
# National IDs looked up against the registry per query.
NATIONAL_ID_LOOKUP_BATCH = 5_000
# Up to this many people the duplicate check asks the registry person by
# person (`member_duplicate_candidates`, exactly what the front desk does);
# above it, a query per person would take longer than the whole import, so the
# candidates come from one pass over the districts' people by sound keys.
DUPLICATE_PER_PERSON_LIMIT = 500
# The error report kept on the job; the count is always exact. A file where
# every one of 450,000 rows is wrong needs fixing as a whole, not reading.
ERROR_REPORT_LIMIT = 100_000
# The likely duplicates kept on the job, in the order of the file's rows (at most `DUPLICATES_SHOWN` a
# person); the count is always exact. A file whose people are mostly registered already (imported twice?)
# is checked as a whole; a hundred thousand pairs are also about the most a JSON column should hold.
DUPLICATE_REPORT_LIMIT = 100_000
# Rows whose household_ref starts with this are the template's example rows.
EXAMPLE_REF_PREFIX = "EXAMPLE"
FILE_EXTENSIONS = (".csv", ".xlsx")
DATA_SHEET = "Households"
HELP_SHEET = "Columns"
FINISHED_STATUSES = (ImportStatus.DONE, ImportStatus.REJECTED, ImportStatus.FAILED)


# The file cannot be read as a table at all (registry/uploads.py says why, naming the file).
ImportFileError = UploadRefused


@contextmanager
def _cyclic_gc_paused():
    """Pause Python's cyclic garbage collector while a file's rows are held in memory.

    An import keeps an object per row and per household (over half a million
    at 100,000 households, with their values); each full collection walks all
    of them, and they are triggered ever more often as the objects grow:
    measured with model instances, a third of the import's time. Reference
    counting still frees everything that is dropped; the few cycles are
    collected afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --- the columns ---------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    name: str
    level: str  # "household" or "member"
    required: bool  # the column must be in the file
    meaning: str
    allowed: str
    example: str = ""


def _codes(choices) -> str:
    return "; ".join(f"{value} ({label.lower()})" for value, label in choices.choices if value)


def _standard_columns() -> list[Column]:
    country = current_country()
    degrees = "; ".join(f"{value} = {label.lower()}" for value, label in Difficulty.choices) + "; blank if not asked"
    columns = [
        Column(
            "household_ref",
            "household",
            True,
            "Your own reference for the household in this file. Rows with the same reference are one household. "
            "It is not stored; the registry gives each household its number.",
            f"any text; rows whose reference starts with {EXAMPLE_REF_PREFIX} are skipped",
            "HH-1",
        ),
        Column(
            "village_code",
            "household",
            True,
            "The code of the village the household lives in.",
            "a village code in one of your districts",
        ),
        Column(
            "address",
            "household",
            False,
            "How to find the household.",
            "text, up to 255 characters",
            "Behind the clinic",
        ),
        Column(
            "household_phone",
            "household",
            False,
            "A phone number to reach the household.",
            f"e.g. {country.phone_example}",
        ),
        Column(
            "gps_latitude",
            "household",
            False,
            "Latitude in decimal degrees.",
            "-90 to 90; give both or neither",
            "-11.35",
        ),
        Column(
            "gps_longitude",
            "household",
            False,
            "Longitude in decimal degrees.",
            "-180 to 180; give both or neither",
            "29.55",
        ),
        Column(
            "relationship",
            "member",
            True,
            "The person's relationship to the head. Exactly one member of each household is 'head'.",
            _codes(Relationship),
            "head",
        ),
        Column("first_name", "member", True, "First name.", "text", "Mary"),
        Column("middle_name", "member", False, "Middle name.", "text"),
        Column("last_name", "member", True, "Surname.", "text", "Mwansa"),
        Column("other_names", "member", False, "Other names or spellings, separated by commas.", "text"),
        Column("sex", "member", True, "Sex.", "F (female); M (male)", "F"),
        Column(
            "date_of_birth",
            "member",
            False,
            "Date of birth. When only the year is known, give the year alone: it is recorded as 1 July of that year, estimated.",
            "YYYY-MM-DD, or YYYY",
            "1980-05-17",
        ),
        Column(
            "date_of_birth_estimated", "member", False, "Is the date of birth a guess?", "yes; no; blank (no)", "no"
        ),
        Column(
            "national_id",
            "member",
            False,
            f"The {country.national_id_label}. Unique: not already registered, not twice in the file.",
            f"like {country.national_id_example}; blank if none",
            country.national_id_example,
        ),
        Column("phone", "member", False, "The person's own phone number.", f"e.g. {country.phone_example}"),
    ]
    for domain in DISABILITY_DOMAINS:
        columns.append(
            Column(
                f"disability_{domain}",
                "member",
                False,
                f"Washington Group question: difficulty with {domain.replace('_', ' ')}.",
                degrees,
                "1",
            )
        )
    columns += [
        Column("chronic_illness", "member", False, "Has a long-term illness.", "yes; no; blank (not asked)", "no"),
        Column(
            "school_attendance", "member", False, "School attendance.", _codes(SchoolAttendance) + "; blank (not asked)"
        ),
        Column("work_status", "member", False, "Main work status.", _codes(WorkStatus) + "; blank (not asked)"),
    ]
    return columns


def _attribute_column(definition: AttributeDefinition) -> Column:
    if definition.type == "choice":
        allowed = "; ".join(str(value) for value in definition.allowed_values)
    elif definition.type == "boolean":
        allowed = "yes; no"
    elif definition.type == "date":
        allowed = "YYYY-MM-DD"
    else:
        allowed = definition.get_type_display().lower()
    meaning = definition.label + (f". {definition.help_text}" if definition.help_text else "")
    if definition.required:
        meaning += " Required."
    return Column(f"{definition.entity}.{definition.key}", definition.entity, definition.required, meaning, allowed)


def import_template_columns() -> list[Column]:
    """Every column an import file may have: the standard ones, then one per active extensible attribute."""
    attributes = [
        _attribute_column(definition)
        for entity in (AttributeEntity.HOUSEHOLD, AttributeEntity.MEMBER)
        for definition in active_definitions(entity).values()
    ]
    return _standard_columns() + attributes


def _example_row(columns: list[Column], *, acting_user) -> list[str]:
    village = villages_for(acting_user).first()
    example = {column.name: column.example for column in columns}
    example["household_ref"] = f"{EXAMPLE_REF_PREFIX}-1"
    example["village_code"] = village.code if village else ""
    return [example[column.name] for column in columns]


def import_template_csv(*, acting_user) -> bytes:
    """The CSV template: header, an example row, then the explanation of each column as # comment rows."""
    columns = import_template_columns()
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([column.name for column in columns])
    writer.writerow(_example_row(columns, acting_user=acting_user))
    writer.writerow([])
    writer.writerow(["# Rows starting with # and rows whose household_ref starts with EXAMPLE are not imported."])
    writer.writerow(["# column", "level", "required", "meaning", "allowed values"])
    for column in columns:
        # Attribute labels and allowed values are written by ministry staff: never a formula in a spreadsheet.
        writer.writerow(
            safe_row(
                [f"# {column.name}", column.level, "yes" if column.required else "no", column.meaning, column.allowed]
            )
        )
    # Excel opens UTF-8 CSV correctly only with the byte-order mark.
    return buffer.getvalue().encode("utf-8-sig")


def import_template_xlsx(*, acting_user) -> bytes:
    """The Excel template: a Households sheet (header and example row) and a Columns sheet explaining each column."""
    columns = import_template_columns()
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = DATA_SHEET
    sheet.append([column.name for column in columns])
    sheet.append(_example_row(columns, acting_user=acting_user))
    bold = openpyxl.styles.Font(bold=True)
    for cell in sheet[1]:
        cell.font = bold
    # Text cells: Excel must not turn an ID such as 123456/10/1 into a date or drop a phone's leading zero.
    for index in range(1, len(columns) + 1):
        letter = openpyxl.utils.get_column_letter(index)
        sheet.column_dimensions[letter].width = max(12, len(columns[index - 1].name) + 2)
        sheet.column_dimensions[letter].number_format = "@"
    sheet.freeze_panes = "A2"
    help_sheet = workbook.create_sheet(HELP_SHEET)
    help_sheet.append(["column", "level", "required", "meaning", "allowed values"])
    for cell in help_sheet[1]:
        cell.font = bold
    for column in columns:
        help_sheet.append(
            safe_row([column.name, column.level, "yes" if column.required else "no", column.meaning, column.allowed])
        )
    help_sheet.append([])
    help_sheet.append([f"Rows whose household_ref starts with {EXAMPLE_REF_PREFIX} are not imported."])
    for letter, width in zip("ABCDE", (28, 11, 10, 80, 60), strict=True):
        help_sheet.column_dimensions[letter].width = width
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


# --- submitting and running a job -------------------------------------------------


def import_jobs_for(user) -> QuerySet[ImportJob]:
    """The import jobs a user may see: their own; ministry staff see every job."""
    jobs = ImportJob.objects.select_related("created_by")
    if not user or not user.is_authenticated:
        return jobs.none()
    if user.sees_every_district:
        return jobs
    return jobs.filter(created_by=user)


def import_submit(*, acting_user, upload: UploadedFile, mode: str) -> ImportJob:
    """Store the file as a pending job and queue it (run at once when there is no broker)."""
    from .tasks import import_run

    if not acting_user.can_edit_registry:
        raise PermissionDenied("Your role cannot change the registry.")
    errors = {}
    name = PurePath(upload.name or "").name
    if PurePath(name).suffix.lower() not in FILE_EXTENSIONS:
        errors["file"] = ["Upload the filled template as a .csv or .xlsx file."]
    else:
        # What can be told at once is told on the upload page; the rest of the file's checks run in the job.
        try:
            check_stored_size(upload, file_name=name)
            sniff_refusal(upload, file_name=name)
        except UploadRefused as refusal:
            errors["file"] = [str(refusal)]
    if mode not in ImportMode.values:
        errors["mode"] = [f"Choose one of: {', '.join(ImportMode.values)}."]
    if errors:
        raise ValidationError(errors)
    job = ImportJob(original_name=PurePath(upload.name).name[:255], mode=mode, created_by=acting_user)
    job.uploaded_file.save(PurePath(upload.name).name, upload, save=False)
    with transaction.atomic():
        job.save()
        job_queue(task=import_run, args=[job.pk])
    return job


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Validate and apply a pending job; a job that is not pending is left alone (None).

    The worker holds the job's lock (`spf.running`) while it works, so that a job whose worker was killed
    can be told from one in hand (`import_jobs_resume`). The households are written and the job marked
    done in one transaction: a job found validating or applying has written nothing.
    """
    with job_claim(RunningJob.HOUSEHOLD_IMPORT, job_id) as in_hand:
        if not in_hand:
            return None
        return _import_job_run(job_id)


def _import_job_run(job_id: int) -> ImportJob | None:
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.PENDING).update(status=ImportStatus.VALIDATING)
    if not claimed:
        return None
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    try:
        plan = import_validate(job=job)
        job.total_rows = job.processed_rows = plan.total_rows
        job.errors = plan.errors[:ERROR_REPORT_LIMIT]
        job.error_count = len(plan.errors)
        job.duplicates = plan.duplicates[:DUPLICATE_REPORT_LIMIT]
        job.duplicate_count = len(plan.duplicates)
        good = plan.good_households()
        if not good or (plan.errors and job.mode == ImportMode.ALL_OR_NOTHING):
            job.status = ImportStatus.REJECTED
            job.message = _rejection_message(plan, job)
        else:
            ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.APPLYING)
            with transaction.atomic():
                households, members = import_apply(job=job, plan=plan)
                job.households_created, job.members_created = households, members
                job.status = ImportStatus.DONE
                job.message = f"{households:,} households and {members:,} members written."
                skipped = len(plan.households) - len(good)
                if skipped:
                    job.message += f" {skipped:,} households with a bad row were not written; see the error report."
                job.finished_at = timezone.now()
                job.save()
    except Exception as problem:  # noqa: BLE001 - any crash must leave the job failed, never stuck
        logger.exception("Import %s failed", job_id)
        job.status = ImportStatus.FAILED
        job.households_created = job.members_created = 0
        job.message = f"The import stopped before finishing, and nothing was written: {problem}"
    job.finished_at = timezone.now()
    job.save()
    return job


# A job waiting this long with no message in the outbox lost its message (Redis restarted without its data):
# it is queued again. An import waits for a free worker, and a big one runs for minutes; an hour is far beyond.
IMPORT_PENDING_LOST_AFTER = datetime.timedelta(hours=1)


def import_jobs_resume(*, now: datetime.datetime | None = None) -> list[int]:
    """Queue again the imports nobody would carry out otherwise; returns their ids (docs/operations.md).

    A job validating or applying whose lock nobody holds lost its worker. It has written nothing (the
    households and the job's "done" are one transaction), so it goes back to pending and runs again from
    the start. A pending job older than IMPORT_PENDING_LOST_AFTER with no job waiting in the outbox lost
    its message. Beat runs this every five minutes, and each worker as it connects to the broker.
    """
    from .tasks import import_run

    if not orphans_detectable():
        return []
    now = now or timezone.now()
    lost = []
    started = ImportJob.objects.filter(status__in=(ImportStatus.VALIDATING, ImportStatus.APPLYING))
    for job_id in started.values_list("pk", flat=True):
        if not job_is_orphaned(RunningJob.HOUSEHOLD_IMPORT, job_id):
            continue
        with transaction.atomic():
            # Only if it is still where it was: a worker may have finished it a moment ago.
            taken_back = started.filter(pk=job_id).update(status=ImportStatus.PENDING, processed_rows=0)
            if taken_back:
                logger.warning("Import %s lost its worker: queued again from the start", job_id)
                job_queue(task=import_run, args=[job_id])
                lost.append(job_id)
    waiting = ImportJob.objects.filter(status=ImportStatus.PENDING, created_at__lt=now - IMPORT_PENDING_LOST_AFTER)
    for job_id in waiting.exclude(pk__in=lost).values_list("pk", flat=True):
        if not job_is_waiting(task=import_run, args=[job_id]):
            logger.warning("Import %s has no queued job: queued again", job_id)
            job_queue(task=import_run, args=[job_id])
            lost.append(job_id)
    return lost


def _rejection_message(plan: "ImportPlan", job: ImportJob) -> str:
    if plan.file_problem:
        return "The file could not be read; nothing was written. See the error report."
    if not plan.errors and not plan.households:
        return "The file has no rows to import; nothing was written."
    if job.mode == ImportMode.ALL_OR_NOTHING:
        return f"{len(plan.errors):,} problems found; nothing was written. Correct the rows in the error report and upload the file again."
    return "Every household has a problem; nothing was written. See the error report."


# --- reading the file ---------------------------------------------------------------


def _open_table(job: ImportJob) -> tuple[list[str], Iterator[tuple[int, tuple]], int]:
    """The header, the rows as (row number as the user sees it, cells), and a row count for progress.

    UploadRefused (registry/uploads.py) for a file that cannot be read, naming the file and the problem,
    also when the problem shows only while the rows are read.
    """
    name = job.original_name
    suffix = PurePath(name).suffix.lower()
    check_stored_size(job.uploaded_file, file_name=name)
    if suffix == ".xlsx":
        with job.uploaded_file.open("rb") as handle:
            workbook = open_workbook(handle.read(), file_name=name)
        sheet = workbook[DATA_SHEET] if DATA_SHEET in workbook.sheetnames else workbook.worksheets[0]
        rows = read_rows_safely(sheet.iter_rows(values_only=True), file_name=name)
        header = next(rows, None)
        expected = max(0, (sheet.max_row or 1) - 1)
        return _header_names(header), ((number, cells) for number, cells in enumerate(rows, start=2)), expected
    if suffix == ".csv":
        with job.uploaded_file.open("rb") as handle:
            text = csv_text(handle.read(upload_limit() + 1), file_name=name)
        expected = max(0, text.count("\n") - 1)
        reader = csv.reader(io.StringIO(text), delimiter=csv_delimiter(text))
        del text
        rows = read_rows_safely(reader, file_name=name, reader=reader)
        header = next(rows, None)
        return _header_names(header), ((number, tuple(cells)) for number, cells in enumerate(rows, start=2)), expected
    raise ImportFileError("Upload the filled template as a .csv or .xlsx file.")


def _header_names(header) -> list[str]:
    return [str(cell).strip().lower() if cell is not None else "" for cell in (header or ())]


def _text(cell: Any) -> str:
    if type(cell) is str:  # every CSV cell: the common case first
        return cell.strip()
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime.datetime):
        return cell.date().isoformat()
    if isinstance(cell, datetime.date):
        return cell.isoformat()
    return str(cell).strip()


class CellProblem(ValueError):
    """A cell that cannot be read as its column's kind of value; the message is for a person."""


def _spellings(choices) -> dict[str, str]:
    """Each code and label in lower case → the code (a dictionary: this runs for every cell)."""
    spellings = {}
    for value, label in choices.choices:
        if value:
            spellings[str(label).lower()] = value
            spellings[str(value).lower()] = value
    return spellings


CHOICE_SPELLINGS = {choices: _spellings(choices) for choices in (Relationship, SchoolAttendance, WorkStatus, Sex)}


# The cell readers below are pure, and a file repeats the same few values in a
# column (sex, relationship, yes/no, dates of birth) hundreds of thousands of
# times: each distinct value is read once. `typed`, because 1, 1.0 and True are
# equal keys but different cells (an Excel number, a CSV text, a ticked box).
# A bad cell raises, and exceptions are not remembered: a bad value costs its
# reading each time, which only a bad file pays.
_remembered = lru_cache(maxsize=65_536, typed=True)


@_remembered
def _choice(cell: Any, choices) -> str:
    text = _text(cell).lower()
    if not text:
        return ""
    try:
        return CHOICE_SPELLINGS[choices][text]
    except KeyError:
        raise CellProblem(f"'{_text(cell)}' is not one of: {', '.join(str(v) for v in choices.values if v)}.") from None


@_remembered
def _sex(cell: Any) -> str:
    text = _text(cell).lower()
    if not text:
        return ""
    try:
        return CHOICE_SPELLINGS[Sex][text]
    except KeyError:
        raise CellProblem(f"'{_text(cell)}' is not F or M.") from None


@_remembered
def _yes_no(cell: Any) -> bool | None:
    if isinstance(cell, bool):
        return cell
    text = _text(cell).lower()
    if not text:
        return None
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise CellProblem(f"'{_text(cell)}' is not yes or no.")


@_remembered
def _difficulty(cell: Any) -> int | None:
    text = _text(cell)
    if not text:
        return None
    if text in ("1", "2", "3", "4"):
        return int(text)
    raise CellProblem(f"'{text}' is not 1, 2, 3 or 4 (1 no difficulty … 4 cannot do at all).")


@_remembered
def _birth_date(cell: Any) -> tuple[datetime.date | None, bool]:
    """The date, and whether it is a year alone (so estimated)."""
    if isinstance(cell, datetime.datetime):
        return cell.date(), False
    if isinstance(cell, datetime.date):
        return cell, False
    text = _text(cell)
    if not text:
        return None, False
    if len(text) == 4 and text.isdigit():
        return datetime.date(int(text), 7, 1), True
    try:
        return datetime.date.fromisoformat(text), False
    except ValueError:
        raise CellProblem(f"'{text}' is not a date written YYYY-MM-DD (or a year alone, YYYY).") from None


def _coordinate(cell: Any, limit: int) -> Decimal | None:
    text = _text(cell)
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CellProblem(f"'{text}' is not a number of degrees.") from None
    if not value.is_finite() or abs(value) > limit:
        raise CellProblem(f"{text} is outside -{limit} to {limit}.")
    # The registry keeps six decimal places (about 10 cm); a GPS unit gives more.
    return value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP)


# --- validation -----------------------------------------------------------------------


@dataclass
class HouseholdDraft:
    """One household of the file while it is checked: built from its first row, members added row by row."""

    ref: str
    first_row: int
    cells: dict[str, str]  # the household columns as given on the first row, for comparing later rows
    household: Household | None = None
    members: list[tuple[int, "MemberDraft"]] = field(default_factory=list)
    head_row: int | None = None
    relationship_unreadable: bool = False
    bad: bool = False


@dataclass
class ImportPlan:
    total_rows: int = 0
    households: list[HouseholdDraft] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    duplicates: list[dict] = field(default_factory=list)
    file_problem: bool = False

    def good_households(self) -> list[HouseholdDraft]:
        return [draft for draft in self.households if not draft.bad]


HOUSEHOLD_COLUMNS = ("village_code", "address", "household_phone", "gps_latitude", "gps_longitude")
# A household's own model fields, named as their columns in the file.
HOUSEHOLD_FIELD_COLUMN = {"phone": "household_phone", "village": "village_code"}


class _RowProblems:
    """Collects (row, column, problem) and marks the row's household bad."""

    def __init__(self, plan: ImportPlan):
        self.plan = plan

    def add(self, row: int | None, column: str, problem: str, draft: HouseholdDraft | None = None) -> None:
        self.plan.errors.append({"row": row, "field": column, "problem": problem})
        if draft is not None:
            draft.bad = True

    def add_validation(
        self, row: int, problem: ValidationError, draft: HouseholdDraft, rename: dict | None = None
    ) -> None:
        self.add_messages(row, problem.message_dict, draft, rename)

    def add_messages(
        self, row: int, messages_by_field: dict[str, list[str]], draft: HouseholdDraft, rename: dict | None = None
    ) -> None:
        for name, messages in messages_by_field.items():
            column = (rename or {}).get(name, name)
            for message in messages:
                self.add(row, column, message, draft)


def import_validate(*, job: ImportJob) -> ImportPlan:
    """Check every row of the job's file; nothing is written except the job's progress."""
    with _cyclic_gc_paused():
        try:
            return _validate(job)
        except UploadRefused as problem:
            # The file broke off while its rows were read (damaged sheet XML, a CSV field past the limit):
            # the whole file is refused, whatever its first rows said.
            plan = ImportPlan(file_problem=True)
            _RowProblems(plan).add(None, "file", str(problem))
            return plan


def _validate(job: ImportJob) -> ImportPlan:
    plan = ImportPlan()
    problems = _RowProblems(plan)
    user = job.created_by
    try:
        header, rows, expected = _open_table(job)
    except ImportFileError as problem:
        plan.file_problem = True
        problems.add(None, "file", str(problem))
        return plan
    ImportJob.objects.filter(pk=job.pk).update(total_rows=expected)

    columns = {column.name: column for column in import_template_columns()}
    if not _check_header(header, columns, problems):
        plan.file_problem = True
        return plan
    position = {name: index for index, name in enumerate(header)}
    household_definitions = active_definitions(AttributeEntity.HOUSEHOLD)
    member_definitions = active_definitions(AttributeEntity.MEMBER)
    household_attribute_columns = [name for name in header if name.startswith("household.")]
    member_attribute_columns = [name for name in header if name.startswith("member.")]
    villages = _village_lookup(user)
    drafts: dict[str, HouseholdDraft] = {}
    national_ids: dict[str, list[int]] = defaultdict(list)
    country = current_country()
    member_check = MemberRowCheck(country=country, today=timezone.localdate())
    household_check = FieldChecks(Household, skip=HOUSEHOLD_CHECK_SKIP)
    width = len(header)

    for number, cells in rows:
        if len(cells) < width:
            cells = tuple(cells) + ("",) * (width - len(cells))
        if all(_text(cell) == "" for cell in cells):
            continue
        first = _text(cells[0])
        ref = _text(cells[position["household_ref"]])
        if first.startswith("#") or ref.upper().startswith(EXAMPLE_REF_PREFIX):
            continue
        plan.total_rows += 1
        if plan.total_rows % PROGRESS_EVERY == 0:
            ImportJob.objects.filter(pk=job.pk).update(processed_rows=plan.total_rows)
        row = {name: cells[index] for name, index in position.items()}

        if not ref:
            orphan = HouseholdDraft(ref="", first_row=number, cells={})
            problems.add(
                number,
                "household_ref",
                "Give a household reference: rows with the same reference are one household.",
                orphan,
            )
            plan.households.append(orphan)
            continue
        draft = drafts.get(ref)
        if draft is None:
            draft = HouseholdDraft(ref=ref, first_row=number, cells={c: _text(row.get(c)) for c in HOUSEHOLD_COLUMNS})
            drafts[ref] = draft
            plan.households.append(draft)
            draft.household = _household_from_row(
                number,
                row,
                draft,
                villages=villages,
                user=user,
                definitions=household_definitions,
                attribute_columns=household_attribute_columns,
                problems=problems,
                check=household_check,
                today=member_check.today,
            )
        else:
            for column in HOUSEHOLD_COLUMNS:
                given = _text(row.get(column))
                if given and given != draft.cells[column]:
                    problems.add(
                        number,
                        column,
                        f"'{given}' differs from row {draft.first_row} of household {ref} ('{draft.cells[column]}'); "
                        "give household details once, or the same on every row.",
                        draft,
                    )

        # The head is counted from the cell, so a head row with another problem is not also "no head".
        try:
            relationship = _choice(row.get("relationship"), Relationship)
        except CellProblem:
            relationship, draft.relationship_unreadable = "", True
        if relationship == Relationship.HEAD:
            if draft.head_row is not None:
                problems.add(
                    number, "relationship", f"Household {ref} already has a head on row {draft.head_row}.", draft
                )
            else:
                draft.head_row = number
        member = _member_from_row(
            number,
            row,
            draft,
            definitions=member_definitions,
            attribute_columns=member_attribute_columns,
            problems=problems,
            country=country,
            check=member_check,
        )
        if member is None:
            continue
        if member.national_id:
            national_ids[member.national_id].append(number)
        draft.members.append((number, member))

    ImportJob.objects.filter(pk=job.pk).update(processed_rows=plan.total_rows, total_rows=plan.total_rows)
    for draft in drafts.values():
        # An unreadable relationship is already reported; it may have been meant as the head.
        if draft.head_row is None and not draft.relationship_unreadable:
            problems.add(
                draft.first_row, "relationship", f"No member of household {draft.ref} is marked 'head'.", draft
            )
    _check_national_ids(national_ids, plan.households, problems, country=country)
    plan.errors.sort(key=lambda error: (error["row"] or 0, error["field"]))
    plan.duplicates = _likely_duplicates(plan, user=user)
    return plan


def _check_header(header: list[str], columns: dict[str, Column], problems: _RowProblems) -> bool:
    if not any(header):
        problems.add(1, "", "The first row must name the columns; download the template to see them.")
        return False
    ok = True
    seen = set()
    for name in header:
        if not name:
            continue
        if name in seen:
            problems.add(1, name, "This column appears twice.")
            ok = False
        seen.add(name)
        if name not in columns:
            problems.add(1, name, "Unknown column: not in the template (or an attribute that is no longer active).")
            ok = False
    for name, column in columns.items():
        if column.required and name not in seen:
            problems.add(1, name, "Missing column: the template has it and every file needs it.")
            ok = False
    return ok


def _village_lookup(user) -> dict[str, Location | str]:
    """Village code → the village in the user's districts, or the reason it cannot be used."""
    lookup: dict[str, Location | str] = {}
    for village in Location.objects.filter(level=LocationLevel.VILLAGE).select_related("district"):
        if user_may_see_district(user, village.district_id):
            lookup[village.code.upper()] = village
        else:
            lookup[village.code.upper()] = (
                f"Village {village.code} is in {village.district.name} district, which is not one of your districts."
            )
    return lookup


def _household_from_row(
    number: int,
    row: dict,
    draft: HouseholdDraft,
    *,
    villages: dict,
    user,
    definitions: dict,
    attribute_columns: list[str],
    problems: _RowProblems,
    check: "FieldChecks",
    today: datetime.date,
) -> Household | None:
    code = _text(row.get("village_code")).upper()
    village = villages.get(code) if code else None
    if not code:
        problems.add(number, "village_code", "Give the village code.", draft)
    elif village is None:
        problems.add(number, "village_code", f"No village has the code {code}.", draft)
    elif isinstance(village, str):
        problems.add(number, "village_code", village, draft)
        village = None
    values: dict[str, Any] = {}
    unreadable = False
    for column, limit in (("gps_latitude", 90), ("gps_longitude", 180)):
        try:
            values[column] = _coordinate(row.get(column), limit)
        except CellProblem as problem:
            problems.add(number, column, str(problem), draft)
            values[column], unreadable = None, True
    if (values["gps_latitude"] is None) != (values["gps_longitude"] is None) and not unreadable:
        problems.add(number, "gps_latitude", "Give both latitude and longitude, or neither.", draft)
    country = current_country()
    household = Household(
        village=village if isinstance(village, Location) else None,
        district=village.district if isinstance(village, Location) else None,
        address=_text(row.get("address")),
        phone=_text(row.get("household_phone")),
        # The day the file is checked, read once for the whole file.
        registration_date=today,
        **values,
    )
    household.phone_key = country.phone_key(household.phone)
    try:
        household.attributes = clean_attributes(
            AttributeEntity.HOUSEHOLD,
            {column.split(".", 1)[1]: row.get(column) for column in attribute_columns},
            field_prefix="household",
            definitions=definitions,
        )
    except ValidationError as problem:
        problems.add_validation(number, problem, draft)
    # full_clean's field checks; the village is checked above against the user's districts (no
    # query per row), and the number, district and head are the import's to give (HOUSEHOLD_CHECK_SKIP).
    problems.add_messages(number, check.problems(household.__dict__), draft, rename=HOUSEHOLD_FIELD_COLUMN)
    return household


HOUSEHOLD_CHECK_SKIP = ("number", "district", "head", "village")


MEMBER_CELL_READERS = {
    "relationship": partial(_choice, choices=Relationship),
    "sex": _sex,
    "chronic_illness": _yes_no,
    "school_attendance": partial(_choice, choices=SchoolAttendance),
    "work_status": partial(_choice, choices=WorkStatus),
    **{f"disability_{domain}": _difficulty for domain in DISABILITY_DOMAINS},
}
MEMBER_TEXT_COLUMNS = ("first_name", "middle_name", "last_name", "other_names", "national_id", "phone")


def _plain_text(field) -> bool:
    return (
        type(field) is models.CharField
        and not field.choices
        and all(type(validator) is MaxLengthValidator for validator in field.validators)
    )


# Combinations of a row's coded values remembered as passing. A file has a few
# thousand; the cap keeps a pathological file (every row different) at a few
# tens of megabytes: beyond it, rows are checked field by field, as before.
REMEMBERED_COMBINATIONS = 200_000


class FieldChecks:
    """`Model.full_clean`'s field checks (`clean_fields`, without constraints) on a dict of values by attname.

    It calls Django's own `Field.clean` for each field, as `clean_fields` does,
    so the words are Django's; but once per distinct value of a field, kept for
    the rest of the file (an import repeats the same sexes, relationships,
    degrees and dates hundreds of thousands of times), and not at all for a
    non-empty text under its field's length limit, which cannot fail. A row
    whose coded values together were seen passing before is only checked on
    its texts, dates and JSON. Anything unexpected (a bad value, an excluded
    field) goes field by field, exactly as `clean_fields`. A model instance
    per row and `full_clean` were two thirds of the checking time.
    """

    def __init__(self, model, *, skip: tuple[str, ...] = ()):
        self.fields = [field for field in model._meta.fields if field.name not in skip and not field.generated]
        # What full_clean does beyond the fields, this does not: refuse a model that would need it.
        unique = [field.name for field in self.fields if field.unique and not field.primary_key]
        if model.clean is not models.Model.clean or unique or model._meta.unique_together:
            raise TypeError(f"{model.__name__} has its own clean() or unique fields {unique}: use full_clean.")
        # Per field, what the loop needs, looked up once. A plain text field's only checks are
        # "not blank" and the length limit: its limit is kept to skip the check of a text within it.
        self.plan = [
            (
                field,
                field.name,
                field.attname,
                field.blank,
                tuple(field.empty_values),
                field.max_length if _plain_text(field) else None,
                # Coordinates and timestamps rarely repeat: remembering them would only fill memory.
                not isinstance(field, (models.DecimalField, models.DateTimeField)),
            )
            for field in self.fields
        ]
        self.known: dict[tuple, tuple[str, ...]] = {}
        # The fast path for a whole row (nothing excluded): the plain texts within their limits,
        # the JSON fields empty, the dates each known good, and the other fields' values together
        # (codes, degrees, yes/no: a few thousand combinations in a file) seen passing before.
        self.texts = [(attname, limit, blank) for _f, _n, attname, blank, _e, limit, _r in self.plan if limit]
        self.empty_only = [
            (attname, blank, empty_values)
            for field, _n, attname, blank, empty_values, _l, _r in self.plan
            if isinstance(field, models.JSONField)
        ]
        self.singles = [
            (field, attname, remember)
            for field, _n, attname, _b, _e, limit, remember in self.plan
            if not limit and isinstance(field, (models.DateField, models.DecimalField))
        ]
        apart = {attname for _field, attname, _remember in self.singles} | {name for name, _b, _e in self.empty_only}
        grouped = [attname for _f, _n, attname, _b, _e, limit, _r in self.plan if not limit and attname not in apart]
        self.group = itemgetter(*grouped) if len(grouped) > 1 else None
        self.passed: set[tuple] = set()

    def problems(self, values: dict[str, Any], *, exclude=()) -> dict[str, list[str]]:
        """The messages by field name, in the model's field order, as `full_clean` raises them."""
        key = None
        if not exclude and self.group is not None:
            key = self.group(values)
            key = (key, tuple(map(type, key)))
            try:
                seen = key in self.passed
            except TypeError:  # an unhashable value where none is expected: field by field
                key, seen = None, False
            if seen and self._row_passes(values):
                return {}
        errors = self._field_by_field(values, exclude)
        if key is not None and not errors and len(self.passed) < REMEMBERED_COMBINATIONS:
            self.passed.add(key)
        return errors

    def _row_passes(self, values: dict[str, Any]) -> bool:
        for attname, limit, blank in self.texts:
            value = values[attname]
            if type(value) is str:
                if len(value) > limit or not (value or blank):
                    return False
            elif not (blank and value is None):
                return False
        for attname, blank, empty_values in self.empty_only:
            if not (blank and values[attname] in empty_values):
                return False
        for model_field, attname, remember in self.singles:
            value = values[attname]
            if value is None and model_field.blank:
                continue
            try:
                messages = self.known.get((model_field.name, type(value), value))
            except TypeError:  # not a date or a number at all: field by field
                return False
            if messages is None:
                messages = self._messages(model_field, value, remember=remember)
            if messages:
                return False
        return True

    def _field_by_field(self, values: dict[str, Any], exclude) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        known = self.known
        for model_field, name, attname, blank, empty_values, limit, remember in self.plan:
            if name in exclude:
                continue
            value = values[attname]
            # As clean_fields: a field that may be blank is not checked when it is.
            if blank and value in empty_values:
                continue
            if limit and type(value) is str and 0 < len(value) <= limit:
                continue
            try:
                messages = known[(name, type(value), value)]
            except KeyError:
                messages = self._messages(model_field, value, remember=remember)
            except TypeError:  # an unhashable value (a dict of attributes): checked every time
                messages = self._messages(model_field, value, remember=False)
            if messages:
                errors[name] = list(messages)
        return errors

    def _messages(self, field, value, *, remember: bool = True) -> tuple[str, ...]:
        """Django's own check of one field, as clean_fields runs it."""
        try:
            field.clean(value, None)
            messages: tuple[str, ...] = ()
        except ValidationError as problem:
            messages = tuple(problem.messages)
        if remember:
            self.known[(field.name, type(value), value)] = messages
        return messages


# Member columns that are not written from a cell: the row's own id, its
# household (known only when written) and the timestamps the database gives.
_MEMBER_NOT_DRAFTED = ("id", "household_id", "created_at", "updated_at")
MEMBER_DRAFT_FIELDS = tuple(
    field.attname for field in Member._meta.concrete_fields if field.attname not in _MEMBER_NOT_DRAFTED
)
MEMBER_NAME_FIELDS = ("first_name", "middle_name", "last_name", "other_names")


class MemberDraft:
    """A checked member row: the values the registry will store, without a model instance.

    A `Member` instance costs about 15 µs to build and over a kilobyte to keep;
    half a million of them were a sixth of the import's time and most of its
    memory. The writer turns drafts into rows (COPY) or, on SQLite, into
    `Member` instances a batch at a time.
    """

    __slots__ = (*MEMBER_DRAFT_FIELDS, "pk")

    def __init__(self, values: dict[str, Any]):
        for name in MEMBER_DRAFT_FIELDS:
            setattr(self, name, values[name])
        self.pk = None

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.middle_name, self.last_name) if part)

    def __str__(self) -> str:
        return self.full_name

    def as_member(self, household: Household) -> Member:
        return Member(household=household, **{name: getattr(self, name) for name in MEMBER_DRAFT_FIELDS})


class MemberRowCheck:
    """`refresh_member_keys` and `validate_member` for an import's rows, without a model instance per row.

    The registry's functions stay the reference (a test runs both on a table
    of good and bad values and asks for the same values and the same words);
    this does the same work in the import's shape: each field's Django checks
    are run once per distinct value and remembered (a file has few distinct
    sexes, relationships, degrees and dates, and a name under its length limit
    cannot fail), and each name's words and sound keys are worked out once per
    distinct name. Like the import's call of `validate_member`, it leaves the
    national ID to the import (checked for the whole file in a few queries).
    """

    def __init__(self, *, country, today: datetime.date):
        self.country = country
        # The day the file is checked: validate_member reads the clock per member, a file is
        # checked within a minute, and the households' registration date is this day too.
        self.today = today
        self.defaults = {field.attname: field.get_default() for field in Member._meta.concrete_fields}
        self.fields = FieldChecks(Member, skip=("household",))
        # Each coded column's reader, with the values it has read (per file).
        self.readers = [(column, reader, {}) for column, reader in MEMBER_CELL_READERS.items()]
        self.name_parts: dict[str, tuple[str, str, list[str]]] = {}

    def refresh_keys(self, values: dict[str, Any]) -> None:
        """What `refresh_member_keys` does to a member, done to its values."""
        values["national_id"] = (values["national_id"] or "").strip().upper() or None
        phone = (values["phone"] or "").strip()
        values["phone"] = phone
        values["phone_key"] = self.country.phone_key(phone) if phone else ""
        plain_parts: list[str] = []
        keys: list[str] = []
        for name in MEMBER_NAME_FIELDS:
            normal, plain, name_keys = self._name(values[name])
            values[name] = normal
            if plain:
                plain_parts.append(plain)
            for key in name_keys:
                if key not in keys:
                    keys.append(key)
        # The same text as names.plain and names.name_keys_text over the four names joined:
        # words never run across the space between two names.
        values["search_name"] = " ".join(plain_parts)[:400]
        values["name_keys"] = (f" {' '.join(keys)} " if keys else "")[:400]

    def _name(self, raw: str | None) -> tuple[str, str, list[str]]:
        parts = self.name_parts.get(raw)
        if parts is None:
            normal = " ".join((raw or "").split())
            parts = self.name_parts[raw] = (normal, names.plain(normal), names.name_keys(normal))
        return parts

    def problems(self, values: dict[str, Any], *, exclude=()) -> dict[str, list[str]]:
        """The messages `validate_member` gives for these values (national ID left out), by field, in its order."""
        errors = self.fields.problems(values, exclude=exclude)
        # validate_member's own rules, after the field checks, in its order and words.
        born = values["date_of_birth"]
        if born and born > self.today:
            errors.setdefault("date_of_birth", []).append("Date of birth cannot be in the future.")
        if born and born.year < self.today.year - 125:
            errors.setdefault("date_of_birth", []).append("Date of birth is more than 125 years ago.")
        if values["date_of_birth_estimated"] and not born:
            errors.setdefault("date_of_birth", []).append("Give the estimated year when the date is estimated.")
        if values["status_date"] and values["status_date"] > self.today:
            errors.setdefault("status_date", []).append("The date cannot be in the future.")
        return errors


def _member_from_row(
    number: int,
    row: dict,
    draft: HouseholdDraft,
    *,
    definitions: dict,
    attribute_columns: list[str],
    problems: _RowProblems,
    country,
    check: MemberRowCheck,
) -> MemberDraft | None:
    """The member on this row, or None when a cell is wrong (each problem reported)."""
    values = dict(check.defaults)
    bad_columns: set[str] = set()
    for column in MEMBER_TEXT_COLUMNS:
        if column in row:
            values[column] = _text(row[column])
    for column, reader, known in check.readers:
        if column not in row:
            continue
        cell = row[column]
        # A cell already read in this column (a CSV cell is text: no 1 / True / 1.0 to tell apart).
        if type(cell) is str and cell in known:
            values[column] = known[cell]
            continue
        try:
            values[column] = reader(cell)
        except CellProblem as problem:
            problems.add(number, column, str(problem), draft)
            bad_columns.add(column)
        else:
            if type(cell) is str:
                known[cell] = values[column]
    try:
        values["date_of_birth"], year_only = _birth_date(row.get("date_of_birth"))
    except CellProblem as problem:
        problems.add(number, "date_of_birth", str(problem), draft)
        bad_columns.add("date_of_birth")
        year_only = False
    try:
        estimated = _yes_no(row.get("date_of_birth_estimated"))
    except CellProblem as problem:
        problems.add(number, "date_of_birth_estimated", str(problem), draft)
        bad_columns.add("date_of_birth_estimated")
    else:
        values["date_of_birth_estimated"] = bool(estimated) or year_only
    for column in bad_columns:
        # A cell that cannot be read leaves the field as a new member has it.
        values[column] = check.defaults[column]
    if attribute_columns or any(definition.required for definition in definitions.values()):
        try:
            values["attributes"] = clean_attributes(
                AttributeEntity.MEMBER,
                {column.split(".", 1)[1]: row.get(column) for column in attribute_columns},
                field_prefix="member",
                definitions=definitions,
            )
        except ValidationError as problem:
            problems.add_validation(number, problem, draft)
            bad_columns.add("attributes")
            values["attributes"] = {}
    else:
        # No attribute column and none required: clean_attributes would give {} to every row.
        values["attributes"] = {}
    check.refresh_keys(values)
    # The registry-wide uniqueness of national IDs is checked for the whole file
    # in a few queries (`_check_national_ids`), not one query per row here.
    national_id, values["national_id"] = values["national_id"], None
    errors = check.problems(values, exclude=bad_columns)
    if errors:
        problems.add_messages(number, errors, draft)
        bad_columns.add("validate")
    values["national_id"] = national_id
    if national_id and not country.national_id_is_valid(national_id):
        problems.add(
            number, "national_id", f"{country.national_id_label} must look like {country.national_id_example}.", draft
        )
        bad_columns.add("national_id")
    return None if bad_columns else MemberDraft(values)


def _check_national_ids(
    national_ids: dict[str, list[int]], households: list[HouseholdDraft], problems: _RowProblems, *, country
) -> None:
    row_draft = {number: draft for draft in households for number, _member in draft.members}
    for national_id, rows in national_ids.items():
        if len(rows) > 1:
            for number in rows:
                others = ", ".join(str(other) for other in rows if other != number)
                problems.add(
                    number,
                    "national_id",
                    f"{country.national_id_label} {national_id} is also given on row {others}.",
                    row_draft[number],
                )
    given = list(national_ids)
    for start in range(0, len(given), NATIONAL_ID_LOOKUP_BATCH):
        batch = given[start : start + NATIONAL_ID_LOOKUP_BATCH]
        for national_id in Member.objects.filter(national_id__in=batch).values_list("national_id", flat=True):
            for number in national_ids[national_id]:
                problems.add(
                    number,
                    "national_id",
                    f"A person with {country.national_id_label} {national_id} is already registered.",
                    row_draft[number],
                )


# --- likely duplicates ------------------------------------------------------------------


def _likely_duplicates(plan: ImportPlan, *, user, per_person_limit: int | None = None) -> list[dict]:
    """People in the file who are probably registered already: flagged for the officer, not refused."""
    limit = DUPLICATE_PER_PERSON_LIMIT if per_person_limit is None else per_person_limit
    people = [
        (number, member, draft.household)
        for draft in plan.households
        if draft.household is not None and draft.household.village_id
        for number, member in draft.members
    ]
    if not people:
        return []
    if len(people) <= limit:
        found = _duplicates_person_by_person(people, user=user)
    else:
        found = _duplicates_by_sound_keys(people, user=user)
    found.sort(key=lambda entry: (entry["row"], -entry["score"], entry["member_id"]))
    return found


def _duplicate_entry(
    number: int, member: Member, *, existing_id, household_id, household_number, existing_name, score, reasons
) -> dict:
    return {
        "row": number,
        "name": member.full_name,
        "member_id": existing_id,
        "member": existing_name,
        "household_id": household_id,
        "household_number": household_number,
        "score": round(score, 2),
        "reasons": reasons,
    }


def _duplicates_person_by_person(people, *, user) -> list[dict]:
    found = []
    for number, member, household in people:
        for candidate in member_duplicate_candidates(
            acting_user=user,
            first_name=member.first_name,
            middle_name=member.middle_name,
            last_name=member.last_name,
            other_names=member.other_names,
            date_of_birth=member.date_of_birth,
            village=household.village,
        ):
            if candidate.score >= DUPLICATE_CONFIRM_SCORE:
                found.append(
                    _duplicate_entry(
                        number,
                        member,
                        existing_id=candidate.member.pk,
                        household_id=candidate.member.household_id,
                        household_number=candidate.member.household.number,
                        existing_name=candidate.member.full_name,
                        score=candidate.score,
                        reasons=candidate.reasons,
                    )
                )
    return found


# A date of birth within `_birth_closeness`'s month (31 days) lies at most two calendar months away
# (31 January and 3 March); within its three years (3 × 366 days), at most three calendar years away.
_BIRTH_MONTHS_AROUND = (-2, -1, 0, 1, 2)
_BIRTH_YEARS_AROUND = (-3, -2, -1, 0, 1, 2, 3)


def _month_number(day: datetime.date) -> int:
    return day.year * 12 + day.month - 1


@dataclass
class _FilePeopleOfPair:
    """The file's people who share a pair of name keys, filed the two ways a registered person may match them."""

    # village id → year of birth (None: not known) → people
    by_village: dict[int, dict[int | None, list]] = field(default_factory=dict)
    # month of birth (`_month_number`) → people
    by_month: dict[int, list] = field(default_factory=dict)


def _duplicates_by_sound_keys(people, *, user) -> list[dict]:
    """The same candidates and score as `member_duplicate_candidates`, from one pass over the districts' people.

    A candidate there is a registered person whose name keys include the sound
    keys of both the first and the last name; here each registered person's
    key pairs are looked up in a dictionary of the file's people. Each person
    of the file keeps their best `DUPLICATES_SHOWN`, as at the desk.

    Names are few and shared: a pair of keys alone matches dozens of the
    file's people for each registered person, and comparing every such couple's
    names took hours for a file of 100,000 households into a district of as
    many (bench/million-notes.md). But a name, however alike, reaches the
    confirmation score only with a date of birth within a month, or in the same
    village with one within three years or unknown (`duplicate_score`'s weights,
    checked by a test). So the file's people are filed by key pair, village and
    year of birth, and by key pair and month of birth, and a registered person
    meets only those. The names of a couple are compared last, each pair of
    names once.
    """
    districts = {household.district_id for _number, _member, household in people}
    registered = (
        members_for(user)
        .filter(household__district_id__in=districts)
        .values_list(
            "pk",
            "household_id",
            "household__number",
            "household__village_id",
            "first_name",
            "middle_name",
            "last_name",
            "other_names",
            "date_of_birth",
            "name_keys",
        )
        .iterator(chunk_size=10_000)
    )
    first_registered = next(registered, None)
    if first_registered is None:
        # Nobody registered yet in these districts (a first import): nothing to compare with.
        return []
    village_names = dict(Location.objects.filter(district_id__in=districts).values_list("pk", "name"))
    by_pair: dict[tuple[str, str], _FilePeopleOfPair] = {}
    keys_of_name: dict[str, list[str]] = {}
    for person in people:
        member, household = person[1], person[2]
        # names.name_keys(first, last), each distinct name keyed once: the keys of two
        # names are the first name's keys, then the last name's not already given.
        keys: list[str] = []
        for name in (member.first_name, member.last_name):
            name_keys = keys_of_name.get(name)
            if name_keys is None:
                name_keys = keys_of_name[name] = names.name_keys(name)
            keys += [key for key in name_keys if key not in keys]
        if not keys:
            continue
        filed = by_pair.setdefault((keys[0], keys[-1]), _FilePeopleOfPair())
        born = member.date_of_birth
        filed.by_village.setdefault(household.village_id, {}).setdefault(born.year if born else None, []).append(person)
        if born:
            filed.by_month.setdefault(_month_number(born), []).append(person)
    # The registered people's keys repeat as their names do: each text of keys is matched with the file once.
    filed_for_keys: dict[str, list[_FilePeopleOfPair]] = {}
    similarity: dict[tuple[str, str], float] = {}
    confirmable: dict[tuple[float, bool], bool] = {}  # whether the same name would reach the score
    best: dict[int, list[tuple]] = defaultdict(list)  # row → heap of its best candidates, the worst on top

    for pk, household_id, number_, village_id, first, middle, last, other, born, key_text in chain(
        [first_registered], registered
    ):
        filed_list = filed_for_keys.get(key_text)
        if filed_list is None:
            keys = key_text.split()
            pairs = {(a, b) for a in keys for b in keys}
            filed_list = filed_for_keys[key_text] = [by_pair[pair] for pair in pairs if pair in by_pair]
        if not filed_list:
            continue
        matches: list = []
        for filed in filed_list:
            years = filed.by_village.get(village_id)
            if years:
                # The same village: born within three years, or either date of birth unknown.
                if born is None:
                    for same_village in years.values():
                        matches += same_village
                else:
                    for step in _BIRTH_YEARS_AROUND:
                        matches += years.get(born.year + step, ())
                    matches += years.get(None, ())
            if born is not None:
                # Another village: born within a month (the same village's are above already).
                month = _month_number(born)
                for step in _BIRTH_MONTHS_AROUND:
                    for person in filed.by_month.get(month + step, ()):
                        if person[2].village_id != village_id:
                            matches.append(person)
        if not matches:
            continue
        existing_full = " ".join(part for part in (first, middle, last) if part)
        # Their first and last names with any other names (`member_duplicate_candidates`'s second comparison).
        existing_other = f"{first} {last} {other}" if other else f"{first} {last}"
        for person in matches:
            number, member, household = person
            birth_score, birth_reason = _birth_closeness(member.date_of_birth, born)
            same_village = household.village_id == village_id
            reachable = confirmable.get((birth_score, same_village))
            if reachable is None:
                reachable = confirmable[(birth_score, same_village)] = (
                    duplicate_score(name=1.0, birth=birth_score, same_village=same_village) >= DUPLICATE_CONFIRM_SCORE
                )
            if not reachable:
                continue  # even the same name would not make them likely the same person
            full = member.full_name
            name_score = similarity.get((full, existing_full))
            if name_score is None:
                name_score = similarity[(full, existing_full)] = names.name_similarity(full, existing_full)
            if existing_other != existing_full:
                other_score = similarity.get((full, existing_other))
                if other_score is None:
                    other_score = similarity[(full, existing_other)] = names.name_similarity(full, existing_other)
                name_score = max(name_score, other_score)
            score = duplicate_score(name=name_score, birth=birth_score, same_village=same_village)
            if score < DUPLICATE_CONFIRM_SCORE:
                continue
            # Best first is the highest score, then the first registered (as `member_duplicate_candidates`).
            candidate = (score, -pk, household_id, number_, existing_full, name_score, birth_reason, village_id)
            heap = best[number]
            if len(heap) < DUPLICATES_SHOWN:
                heapq.heappush(heap, candidate)
            elif candidate[:2] > heap[0][:2]:
                heapq.heapreplace(heap, candidate)

    person_of_row = {number: (member, household) for number, member, household in people}
    found = []
    for number, heap in best.items():
        member, household = person_of_row[number]
        village_of_row = household.village_id
        for score, minus_pk, household_id, number_, existing_full, name_score, birth_reason, village_id in heap:
            reasons = [f"name sounds alike ({existing_full}, {round(name_score * 100)}%)"]
            if birth_reason:
                reasons.append(birth_reason)
            if village_id == village_of_row:
                reasons.append(f"same village ({village_names.get(village_id, '')})")
            found.append(
                _duplicate_entry(
                    number,
                    member,
                    existing_id=-minus_pk,
                    household_id=household_id,
                    household_number=number_,
                    existing_name=existing_full,
                    score=score,
                    reasons=reasons,
                )
            )
    return found


# --- writing -------------------------------------------------------------------------------


def import_apply(*, job: ImportJob, plan: ImportPlan) -> tuple[int, int]:
    """Write the plan's good households in one transaction with bulk inserts; returns (households, members)."""
    with _cyclic_gc_paused(), transaction.atomic():
        return _apply(job, plan)


def _apply(job: ImportJob, plan: ImportPlan, *, copy: bool | None = None) -> tuple[int, int]:
    """Number the households per district, write households, members and history, announce the change.

    On PostgreSQL the rows go in with COPY (`copy=None` chooses by the
    database; a test forces either writer to compare them); elsewhere with
    `bulk_create`.
    """
    if copy is None:
        copy = connection.vendor == "postgresql"
    drafts = plan.good_households()
    by_district: dict[int, list[HouseholdDraft]] = defaultdict(list)
    for draft in drafts:
        by_district[draft.household.district_id].append(draft)
    # Districts in a fixed order, so two imports lock the number sequences in the same order.
    for district_id in sorted(by_district):
        district_drafts = by_district[district_id]
        numbers = allocate_household_numbers(district_drafts[0].household.district, len(district_drafts))
        for draft, number in zip(district_drafts, numbers, strict=True):
            draft.household.number = number
    if copy:
        members = _write_rows_copy(drafts)
    else:
        members = _write_rows_bulk_create(drafts)
    _write_history(job=job, drafts=drafts, sql=copy)
    # Eligibility listens: a bulk write asks for whole districts to be re-assessed.
    announce_households_changed([draft.household.pk for draft in drafts], district_ids=sorted(by_district))
    return len(drafts), members


def _head_of(draft: HouseholdDraft) -> MemberDraft:
    return next(member for _number, member in draft.members if member.relationship == Relationship.HEAD)


def _write_rows_bulk_create(drafts: list[HouseholdDraft]) -> int:
    """Households, then members a batch at a time (model instances only for the batch), then each household's head."""
    households = [draft.household for draft in drafts]
    Household.objects.bulk_create(households, batch_size=INSERT_BATCH_SIZE)
    written = 0
    batch: list[tuple[MemberDraft, Member]] = []
    for draft in drafts:
        for _number, member in draft.members:
            batch.append((member, member.as_member(draft.household)))
        if len(batch) >= INSERT_BATCH_SIZE or draft is drafts[-1]:
            Member.objects.bulk_create([instance for _member, instance in batch], batch_size=INSERT_BATCH_SIZE)
            for member, instance in batch:
                member.pk = instance.pk
            written += len(batch)
            batch = []
    head_of = Member.objects.filter(household_id=OuterRef("pk"), relationship=Relationship.HEAD).order_by("pk")
    for start in range(0, len(households), INSERT_BATCH_SIZE):
        ids = [household.pk for household in households[start : start + INSERT_BATCH_SIZE]]
        Household.objects.filter(pk__in=ids).update(head_id=Subquery(head_of.values("pk")[:1]))
    for draft in drafts:
        draft.household.head_id = _head_of(draft).pk
    return written


HOUSEHOLD_COPY_COLUMNS = (
    "id", "number", "district_id", "village_id", "address", "gps_latitude", "gps_longitude", "phone", "phone_key",
    "registration_date", "status", "head_id", "attributes", "created_at", "updated_at",
)  # fmt: skip
_MEMBER_PLAIN_FIELDS = tuple(name for name in MEMBER_DRAFT_FIELDS if name != "attributes")
MEMBER_COPY_COLUMNS = ("id", "household_id", *_MEMBER_PLAIN_FIELDS, "attributes", "created_at", "updated_at")
HISTORY_COPY_COLUMNS = (
    "household_id", "member_id", "entity", "entity_id", "action", "changes", "note", "actor_id", "at", "import_job_id",
)  # fmt: skip
_member_plain_values = attrgetter(*_MEMBER_PLAIN_FIELDS)
_household_copy_values = attrgetter(*HOUSEHOLD_COPY_COLUMNS[:-3])  # all but attributes and the timestamps


def _json_text(value: dict) -> str:
    return json.dumps(value) if value else "{}"


def _reserve_ids(cursor, table: str, count: int) -> list[int]:
    """Ids from the table's own sequence, so rows can name each other before they are written."""
    cursor.execute(
        f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)",  # noqa: S608
        [count],
    )
    return [row[0] for row in cursor.fetchall()]


def _write_rows_copy(drafts: list[HouseholdDraft]) -> int:
    """PostgreSQL: reserve ids, then COPY households (with their head) and members.

    The household names its head before the member row exists: the foreign key
    is checked at commit (Django makes it DEFERRABLE INITIALLY DEFERRED), when
    it does. The values are those `bulk_create` would write (a test compares).
    """
    now = timezone.now().isoformat()
    member_total = sum(len(draft.members) for draft in drafts)
    with raw_cursor() as cursor:
        household_ids = _reserve_ids(cursor, Household._meta.db_table, len(drafts))
        member_ids = iter(_reserve_ids(cursor, Member._meta.db_table, member_total))
        for draft, household_id in zip(drafts, household_ids, strict=True):
            draft.household.pk = household_id
            for _number, member in draft.members:
                member.pk = next(member_ids)
            draft.household.head_id = _head_of(draft).pk
        # Households first: the history's INSERT … SELECT joins the member rows, which name them.
        copy_rows(
            cursor,
            Household,
            HOUSEHOLD_COPY_COLUMNS,
            (
                (*_household_copy_values(draft.household), _json_text(draft.household.attributes), now, now)
                for draft in drafts
            ),
        )
        copy_rows(
            cursor,
            Member,
            MEMBER_COPY_COLUMNS,
            (
                (member.pk, draft.household.pk, *_member_plain_values(member), _json_text(member.attributes), now, now)
                for draft in drafts
                for _number, member in draft.members
            ),
        )
        return member_total


def _history_values(instance, fields) -> dict:
    """What a creation entry records: every field given, as [None, value] (the shape of the registry's history)."""
    changes = {}
    for name in fields:
        value = getattr(instance, name)
        if value not in (None, "", {}, False):
            changes[name] = [None, _as_json(value)]
    return changes


def _household_history_changes(draft: HouseholdDraft) -> dict:
    head = _head_of(draft)
    return {
        **_history_values(draft.household, HOUSEHOLD_FIELDS + ("attributes",)),
        # As _as_json gives a member: its id and its name.
        "head": [None, {"id": head.pk, "label": head.full_name}],
    }


def _write_history(*, job: ImportJob, drafts: list[HouseholdDraft], sql: bool) -> None:
    """One `import` entry per household and per member: in SQL on PostgreSQL, else with `bulk_create`."""
    if sql:
        _write_history_sql(job=job, drafts=drafts)
    else:
        _write_history_bulk_create(job=job, drafts=drafts)


def _write_history_bulk_create(*, job: ImportJob, drafts: list[HouseholdDraft]) -> None:
    now = timezone.now()
    source = job.original_name[:150]
    entries: list[ChangeEntry] = []
    for draft in drafts:
        household = draft.household
        entries.append(
            ChangeEntry(
                household=household,
                entity=AttributeEntity.HOUSEHOLD,
                entity_id=household.pk,
                action=ChangeAction.IMPORT,
                actor=job.created_by,
                at=now,
                import_job=job,
                changes=_household_history_changes(draft),
                note=f"Imported from {source}, household {draft.ref[:40]}",
            )
        )
        for number, member in draft.members:
            entries.append(
                ChangeEntry(
                    household=household,
                    member_id=member.pk,
                    entity=AttributeEntity.MEMBER,
                    entity_id=member.pk,
                    action=ChangeAction.IMPORT,
                    actor=job.created_by,
                    at=now,
                    import_job=job,
                    changes=_history_values(member, MEMBER_FIELDS + ("attributes",)),
                    note=f"Imported from {source}, row {number}",
                )
            )
        if len(entries) >= INSERT_BATCH_SIZE * 4:
            ChangeEntry.objects.bulk_create(entries, batch_size=INSERT_BATCH_SIZE)
            entries = []
    ChangeEntry.objects.bulk_create(entries, batch_size=INSERT_BATCH_SIZE)


def _member_history_changes_sql() -> str:
    """SQL for a member row's creation entry: what `_history_values` gives for MEMBER_FIELDS and attributes.

    A field is recorded when it is not None, "", {} or False (nor 0: in Python
    0 == False), as [null, value], with dates as ISO text as `_as_json` gives
    them (to_json writes dates in ISO whatever the DateStyle). The JSON is put
    together as text and read once as jsonb: measured on 474,364 members, 1.5 s
    against 8.9 s for jsonb_build_object with a jsonb_build_array per field.
    """
    fields = []
    for name in MEMBER_FIELDS + ("attributes",):
        field = Member._meta.get_field(name)
        column = f"m.{field.column}"
        kind = field.get_internal_type()
        value = f"to_json({column})::text"
        if kind == "BooleanField":
            given, value = f"{column} IS TRUE", "'true'"
        elif kind == "JSONField":
            given, value = f"{column} <> '{{}}'::jsonb", f"{column}::text"
        elif kind in ("DateField", "DateTimeField"):
            given = f"{column} IS NOT NULL"
        elif kind in ("CharField", "TextField"):
            given = f"{column} <> ''"
        else:  # numbers
            given = f"{column} <> 0"
        fields.append(f"""CASE WHEN {given} THEN '"{name}": [null, ' || {value} || ']' END""")
    # concat_ws leaves out the NULLs: the fields not given.
    return f"""('{{' || concat_ws(', ', {", ".join(fields)}) || '}}')::jsonb"""


def _array_text(numbers: list[int]) -> str:
    """A PostgreSQL array literal: read as one value, where a list (psycopg2 sends ARRAY[1, 2, …])
    is parsed as one expression per element; measured for 474,364 pairs, 0.45 s against 3 s."""
    return "{" + ",".join(map(str, numbers)) + "}"


def _write_history_sql(*, job: ImportJob, drafts: list[HouseholdDraft]) -> None:
    """PostgreSQL: COPY the household entries; the member entries in one INSERT … SELECT from the new members.

    Half a million member entries built as objects and sent through
    `bulk_create` took a third of the writing; the database builds them from
    the member rows it already has. Only each member's row in the file comes
    from here (two arrays of ids and row numbers).
    """
    now = timezone.now()
    source = job.original_name[:150]
    actor_id = job.created_by_id
    with raw_cursor() as cursor:
        copy_rows(
            cursor,
            ChangeEntry,
            HISTORY_COPY_COLUMNS,
            (
                (
                    draft.household.pk,
                    None,
                    AttributeEntity.HOUSEHOLD.value,
                    draft.household.pk,
                    ChangeAction.IMPORT.value,
                    json.dumps(_household_history_changes(draft)),
                    f"Imported from {source}, household {draft.ref[:40]}",
                    actor_id,
                    now,
                    job.pk,
                )
                for draft in drafts
            ),
        )
        member_ids = [member.pk for draft in drafts for _number, member in draft.members]
        rows = [number for draft in drafts for number, _member in draft.members]
        cursor.execute(
            f"""
            INSERT INTO {ChangeEntry._meta.db_table}
                (household_id, member_id, entity, entity_id, action, changes, note, actor_id, at, import_job_id)
            SELECT m.household_id, m.id, %s, m.id, %s, {_member_history_changes_sql()},
                   %s || r.row_number::text, %s, %s, %s
            FROM unnest(%s::bigint[], %s::integer[]) AS r (member_id, row_number)
            JOIN {Member._meta.db_table} m ON m.id = r.member_id
            """,  # noqa: S608 - table names and the changes expression come from the models, values are parameters
            [
                AttributeEntity.MEMBER.value,
                ChangeAction.IMPORT.value,
                f"Imported from {source}, row ",
                actor_id,
                now,
                job.pk,
                _array_text(member_ids),
                _array_text(rows),
            ],
        )


# --- reports -----------------------------------------------------------------------------------


def import_error_report_csv(*, job: ImportJob) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "column", "problem"])
    for error in job.errors:
        writer.writerow(
            [error["row"] if error["row"] is not None else "", safe_cell(error["field"]), safe_cell(error["problem"])]
        )
    return buffer.getvalue()


def import_duplicate_report_csv(*, job: ImportJob) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "name in file", "registered person", "household number", "score", "reasons"])
    for entry in job.duplicates:
        writer.writerow(
            [
                entry["row"],
                safe_cell(entry["name"]),
                safe_cell(entry["member"]),
                entry["household_number"],
                entry["score"],
                safe_cell("; ".join(entry["reasons"])),
            ]
        )
    return buffer.getvalue()
