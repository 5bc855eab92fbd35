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
"""

import csv
import datetime
import gc
import io
import logging
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import partial
from pathlib import PurePath
from typing import Any

import openpyxl
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

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
from .selectors import _birth_closeness, member_duplicate_candidates, members_for, villages_for
from .services import (
    DUPLICATE_CONFIRM_SCORE,
    HOUSEHOLD_FIELDS,
    MEMBER_FIELDS,
    _as_json,
    allocate_household_numbers,
    refresh_member_keys,
    validate_member,
)
from .signals import announce_households_changed

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
# Rows whose household_ref starts with this are the template's example rows.
EXAMPLE_REF_PREFIX = "EXAMPLE"
FILE_EXTENSIONS = (".csv", ".xlsx")
DATA_SHEET = "Households"
HELP_SHEET = "Columns"
FINISHED_STATUSES = (ImportStatus.DONE, ImportStatus.REJECTED, ImportStatus.FAILED)


class ImportFileError(Exception):
    """The file cannot be read as a table at all."""


@contextmanager
def _cyclic_gc_paused():
    """Pause Python's cyclic garbage collector while a file's rows are held in memory.

    An import keeps a model instance per row (about a million objects at
    100,000 households); each full collection walks all of them, and they are
    triggered ever more often as the objects grow: measured, a third of the
    import's time. Reference counting still frees everything that is dropped;
    the few cycles (a household and its head) are collected afterwards.
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
        writer.writerow(
            [f"# {column.name}", column.level, "yes" if column.required else "no", column.meaning, column.allowed]
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
            [column.name, column.level, "yes" if column.required else "no", column.meaning, column.allowed]
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
    if PurePath(upload.name or "").suffix.lower() not in FILE_EXTENSIONS:
        errors["file"] = ["Upload the filled template as a .csv or .xlsx file."]
    if mode not in ImportMode.values:
        errors["mode"] = [f"Choose one of: {', '.join(ImportMode.values)}."]
    if errors:
        raise ValidationError(errors)
    job = ImportJob(original_name=PurePath(upload.name).name[:255], mode=mode, created_by=acting_user)
    job.uploaded_file.save(PurePath(upload.name).name, upload, save=False)
    job.save()
    transaction.on_commit(partial(import_run.delay, job.pk))
    return job


def import_job_run(*, job_id: int) -> ImportJob | None:
    """Validate and apply a pending job; a job that is not pending is left alone (None)."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportStatus.PENDING).update(status=ImportStatus.VALIDATING)
    if not claimed:
        return None
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    try:
        plan = import_validate(job=job)
        job.total_rows = job.processed_rows = plan.total_rows
        job.errors = plan.errors[:ERROR_REPORT_LIMIT]
        job.error_count = len(plan.errors)
        job.duplicates = plan.duplicates
        job.duplicate_count = len(plan.duplicates)
        good = plan.good_households()
        if not good or (plan.errors and job.mode == ImportMode.ALL_OR_NOTHING):
            job.status = ImportStatus.REJECTED
            job.message = _rejection_message(plan, job)
        else:
            ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.APPLYING)
            households, members = import_apply(job=job, plan=plan)
            job.households_created, job.members_created = households, members
            job.status = ImportStatus.DONE
            job.message = f"{households:,} households and {members:,} members written."
            skipped = len(plan.households) - len(good)
            if skipped:
                job.message += f" {skipped:,} households with a bad row were not written; see the error report."
    except Exception as problem:  # noqa: BLE001 - any crash must leave the job failed, never stuck
        logger.exception("Import %s failed", job_id)
        job.status = ImportStatus.FAILED
        job.households_created = job.members_created = 0
        job.message = f"The import stopped before finishing, and nothing was written: {problem}"
    job.finished_at = timezone.now()
    job.save()
    return job


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
    """The header, the rows as (row number as the user sees it, cells), and a row count for progress."""
    suffix = PurePath(job.original_name).suffix.lower()
    if suffix == ".xlsx":
        try:
            workbook = openpyxl.load_workbook(job.uploaded_file.open("rb"), read_only=True, data_only=True)
        except Exception as problem:  # openpyxl raises many kinds for a damaged file
            raise ImportFileError(f"The file is not a readable Excel workbook ({problem}).") from problem
        sheet = workbook[DATA_SHEET] if DATA_SHEET in workbook.sheetnames else workbook.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = next(rows, None)
        expected = max(0, (sheet.max_row or 1) - 1)
        return _header_names(header), ((number, cells) for number, cells in enumerate(rows, start=2)), expected
    if suffix == ".csv":
        content = job.uploaded_file.open("rb").read()
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as problem:
            try:
                # Excel's plain "CSV" save on Windows.
                text = content.decode("cp1252")
            except UnicodeDecodeError:
                raise ImportFileError("The file is not UTF-8 text; save it as 'CSV UTF-8'.") from problem
        del content
        expected = max(0, text.count("\n") - 1)
        reader = csv.reader(io.StringIO(text))
        header = next(reader, None)
        return _header_names(header), ((number, tuple(cells)) for number, cells in enumerate(reader, start=2)), expected
    raise ImportFileError("Upload the filled template as a .csv or .xlsx file.")


def _header_names(header) -> list[str]:
    return [str(cell).strip().lower() if cell is not None else "" for cell in (header or ())]


def _text(cell: Any) -> str:
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


def _choice(cell: Any, choices) -> str:
    text = _text(cell).lower()
    if not text:
        return ""
    try:
        return CHOICE_SPELLINGS[choices][text]
    except KeyError:
        raise CellProblem(f"'{_text(cell)}' is not one of: {', '.join(str(v) for v in choices.values if v)}.") from None


def _sex(cell: Any) -> str:
    text = _text(cell).lower()
    if not text:
        return ""
    try:
        return CHOICE_SPELLINGS[Sex][text]
    except KeyError:
        raise CellProblem(f"'{_text(cell)}' is not F or M.") from None


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


def _difficulty(cell: Any) -> int | None:
    text = _text(cell)
    if not text:
        return None
    if text in ("1", "2", "3", "4"):
        return int(text)
    raise CellProblem(f"'{text}' is not 1, 2, 3 or 4 (1 no difficulty … 4 cannot do at all).")


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
    members: list[tuple[int, Member]] = field(default_factory=list)
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
        for name, messages in problem.message_dict.items():
            column = (rename or {}).get(name, name)
            for message in messages:
                self.add(row, column, message, draft)


def import_validate(*, job: ImportJob) -> ImportPlan:
    """Check every row of the job's file; nothing is written except the job's progress."""
    with _cyclic_gc_paused():
        return _validate(job)


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
        registration_date=timezone.localdate(),
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
    try:
        # The village is checked above against the user's districts (no query per row); the
        # number, district and head are the import's to give.
        household.full_clean(exclude=["number", "district", "head", "village"], validate_constraints=False)
    except ValidationError as problem:
        problems.add_validation(number, problem, draft, rename=HOUSEHOLD_FIELD_COLUMN)
    return household


MEMBER_CELL_READERS = {
    "relationship": partial(_choice, choices=Relationship),
    "sex": _sex,
    "chronic_illness": _yes_no,
    "school_attendance": partial(_choice, choices=SchoolAttendance),
    "work_status": partial(_choice, choices=WorkStatus),
    **{f"disability_{domain}": _difficulty for domain in DISABILITY_DOMAINS},
}
MEMBER_TEXT_COLUMNS = ("first_name", "middle_name", "last_name", "other_names", "national_id", "phone")


def _member_from_row(
    number: int,
    row: dict,
    draft: HouseholdDraft,
    *,
    definitions: dict,
    attribute_columns: list[str],
    problems: _RowProblems,
    country,
) -> Member | None:
    """The member on this row, or None when a cell is wrong (each problem reported)."""
    values: dict[str, Any] = {}
    bad_columns: set[str] = set()
    for column in MEMBER_TEXT_COLUMNS:
        if column in row:
            values[column] = _text(row[column])
    for column, reader in MEMBER_CELL_READERS.items():
        if column not in row:
            continue
        try:
            values[column] = reader(row[column])
        except CellProblem as problem:
            problems.add(number, column, str(problem), draft)
            bad_columns.add(column)
    try:
        values["date_of_birth"], year_only = _birth_date(row.get("date_of_birth"))
    except CellProblem as problem:
        problems.add(number, "date_of_birth", str(problem), draft)
        bad_columns.add("date_of_birth")
        values["date_of_birth"], year_only = None, False
    try:
        estimated = _yes_no(row.get("date_of_birth_estimated"))
    except CellProblem as problem:
        problems.add(number, "date_of_birth_estimated", str(problem), draft)
        bad_columns.add("date_of_birth_estimated")
        estimated = None
    values["date_of_birth_estimated"] = bool(estimated) or year_only
    member = Member(**{name: value for name, value in values.items() if name not in bad_columns})
    try:
        member.attributes = clean_attributes(
            AttributeEntity.MEMBER,
            {column.split(".", 1)[1]: row.get(column) for column in attribute_columns},
            field_prefix="member",
            definitions=definitions,
        )
    except ValidationError as problem:
        problems.add_validation(number, problem, draft)
        bad_columns.add("attributes")
    refresh_member_keys(member)
    # The registry-wide uniqueness of national IDs is checked for the whole file
    # in a few queries (`_check_national_ids`), not one query per row here.
    national_id, member.national_id = member.national_id, None
    try:
        validate_member(member, exclude=tuple(bad_columns))
    except ValidationError as problem:
        problems.add_validation(number, problem, draft)
        bad_columns.add("validate")
    member.national_id = national_id
    if national_id and not country.national_id_is_valid(national_id):
        problems.add(
            number, "national_id", f"{country.national_id_label} must look like {country.national_id_example}.", draft
        )
        bad_columns.add("national_id")
    return None if bad_columns else member


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
    found.sort(key=lambda entry: (entry["row"], -entry["score"]))
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


def _duplicates_by_sound_keys(people, *, user) -> list[dict]:
    """The same candidates and score as `member_duplicate_candidates`, from one pass over the districts' people.

    A candidate there is a registered person whose name keys include the sound
    keys of both the first and the last name; here each registered person's
    key pairs are looked up in a dictionary of the file's people.
    """
    by_pair: dict[tuple[str, str], list[tuple[int, Member, Household]]] = defaultdict(list)
    for person in people:
        member = person[1]
        keys = names.name_keys(member.first_name, member.last_name)
        if len(keys) >= 2:
            by_pair[(keys[0], keys[-1])].append(person)
        elif keys:
            by_pair[(keys[0], keys[0])].append(person)
    districts = {household.district_id for _number, _member, household in people}
    registered = (
        members_for(user)
        .filter(household__district_id__in=districts)
        .values_list(
            "pk",
            "household_id",
            "household__number",
            "household__village_id",
            "household__village__name",
            "first_name",
            "middle_name",
            "last_name",
            "other_names",
            "date_of_birth",
            "name_keys",
        )
        .iterator(chunk_size=10_000)
    )
    found = []
    for pk, household_id, number_, village_id, village_name, first, middle, last, other, born, key_text in registered:
        keys = key_text.split()
        pairs = {(a, b) for a in keys for b in keys}
        matches = [person for pair in pairs if pair in by_pair for person in by_pair[pair]]
        if not matches:
            continue
        existing_full = " ".join(part for part in (first, middle, last) if part)
        for number, member, household in matches:
            full = member.full_name
            # The weights of `member_duplicate_candidates`: name 0.55, birth 0.3, same village 0.15.
            name_score = max(
                names.name_similarity(full, existing_full), names.name_similarity(full, f"{first} {last} {other}")
            )
            birth_score, birth_reason = _birth_closeness(member.date_of_birth, born)
            same_village = household.village_id == village_id
            score = round(0.55 * name_score + 0.3 * birth_score + (0.15 if same_village else 0.0), 3)
            if score < DUPLICATE_CONFIRM_SCORE:
                continue
            reasons = [f"name sounds alike ({existing_full}, {round(name_score * 100)}%)"]
            if birth_reason:
                reasons.append(birth_reason)
            if same_village:
                reasons.append(f"same village ({village_name})")
            found.append(
                _duplicate_entry(
                    number,
                    member,
                    existing_id=pk,
                    household_id=household_id,
                    household_number=number_,
                    existing_name=existing_full,
                    score=score,
                    reasons=reasons,
                )
            )
    return found


# --- writing -------------------------------------------------------------------------------


def _history_values(instance, fields) -> dict:
    """What a creation entry records: every field given, as [None, value] (the shape of the registry's history)."""
    changes = {}
    for name in fields:
        value = getattr(instance, name)
        if value not in (None, "", {}, False):
            changes[name] = [None, _as_json(value)]
    return changes


def import_apply(*, job: ImportJob, plan: ImportPlan) -> tuple[int, int]:
    """Write the plan's good households in one transaction with bulk inserts; returns (households, members)."""
    with _cyclic_gc_paused(), transaction.atomic():
        return _apply(job, plan)


def _apply(job: ImportJob, plan: ImportPlan) -> tuple[int, int]:
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
    households = [draft.household for draft in drafts]
    Household.objects.bulk_create(households, batch_size=INSERT_BATCH_SIZE)

    members: list[Member] = []
    for draft in drafts:
        for _number, member in draft.members:
            member.household = draft.household
            members.append(member)
    Member.objects.bulk_create(members, batch_size=INSERT_BATCH_SIZE)

    head_of = Member.objects.filter(household_id=OuterRef("pk"), relationship=Relationship.HEAD).order_by("pk")
    for start in range(0, len(households), INSERT_BATCH_SIZE):
        ids = [household.pk for household in households[start : start + INSERT_BATCH_SIZE]]
        Household.objects.filter(pk__in=ids).update(head_id=Subquery(head_of.values("pk")[:1]))

    _write_history(job=job, drafts=drafts)
    # Eligibility listens: a bulk write asks for whole districts to be re-assessed.
    announce_households_changed([h.pk for h in households], district_ids=sorted(by_district))
    return len(households), len(members)


def _write_history(*, job: ImportJob, drafts: list[HouseholdDraft]) -> None:
    """One `import` entry per household and per member, written in bulk."""
    now = timezone.now()
    source = job.original_name[:150]
    entries: list[ChangeEntry] = []
    for draft in drafts:
        household = draft.household
        head = next(member for _number, member in draft.members if member.relationship == Relationship.HEAD)
        household.head = head
        entries.append(
            ChangeEntry(
                household=household,
                entity=AttributeEntity.HOUSEHOLD,
                entity_id=household.pk,
                action=ChangeAction.IMPORT,
                actor=job.created_by,
                at=now,
                import_job=job,
                changes={
                    **_history_values(household, HOUSEHOLD_FIELDS + ("attributes",)),
                    "head": [None, _as_json(head)],
                },
                note=f"Imported from {source}, household {draft.ref[:40]}",
            )
        )
        for number, member in draft.members:
            entries.append(
                ChangeEntry(
                    household=household,
                    member=member,
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


# --- reports -----------------------------------------------------------------------------------


def _safe_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


def import_error_report_csv(*, job: ImportJob) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "column", "problem"])
    for error in job.errors:
        writer.writerow(
            [error["row"] if error["row"] is not None else "", _safe_cell(error["field"]), _safe_cell(error["problem"])]
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
                _safe_cell(entry["name"]),
                _safe_cell(entry["member"]),
                entry["household_number"],
                entry["score"],
                _safe_cell("; ".join(entry["reasons"])),
            ]
        )
    return buffer.getvalue()
