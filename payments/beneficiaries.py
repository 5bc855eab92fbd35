"""Programmes' existing beneficiary lists: upload, column mapping, matching
with the registry, enrolment, the officer's review and the report.

The window starts by gathering the lists the programmes already have (the
linkages mechanism), so it sees who is served by what. A list goes through:

* `beneficiary_list_upload` stores the file (CSV or Excel), its SHA-256, its
  columns and a sample, and guesses the column mapping from the headers. The
  same file again for the same programme is the same list: nothing changes
  and the caller is told so (the database holds one list per file).
* `beneficiary_list_start` records the mapping the officer confirmed and runs
  the list: in the request for a small list, as a Celery job otherwise.
* `beneficiary_list_run` (the job, behind a status guard) reads and checks
  every row, matches it (national ID exactly, in batches on the registry's
  unique index; otherwise sound-key name, date of birth and village with a
  score and reasons), writes the rows in one transaction, then registers the
  new households and writes the enrolments in another. A crash leaves no
  enrolment or household; running again starts over and gives the same result.
* `beneficiary_row_resolve` is an officer's decision on a row that waits for
  one: this registered person, a new household, or reject.
* `beneficiary_list_report_csv`: every row of the file, its state and why.

Every row ends in exactly one state (`BeneficiaryRowState`). Enrolments made
here are existing beneficiaries: they are created active, source "import",
each with an event saying from which list and row, by whom; the amount is the
list's when it gives one, else the programme's formula.

Who: ministry staff; the programme's own agency officers; and the window's
front desk in a district the programme runs in (gathering lists is the
window's job). What they may match, register and see is their districts:
a row outside them is refused with the reason, and rows are shown only
within them (a row that never reached a district, only to its uploader).
Registering the list's new households goes through the registry's own bulk
import (`registry.imports`), so the registry's rules and history apply, with
the uploader as the actor, whatever their role.
"""

import csv
import datetime
import gc
import hashlib
import io
import json
import logging
import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import PurePath
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from programmes.models import Programme, ProgrammeDistrict, ProgrammeStatus, TargetUnit
from registry import names
from registry.countries import current_country
from registry.models import (
    HouseholdStatus,
    ImportJob,
    ImportMode,
    ImportStatus,
    Location,
    LocationLevel,
    Member,
    MemberStatus,
    Sex,
)
from registry.selectors import _birth_closeness, member_duplicate_candidates, members_for
from registry.services import DUPLICATE_CONFIRM_SCORE
from registry.uploads import (
    UploadRefused,
    csv_delimiter,
    csv_text,
    open_workbook,
    read_rows_safely,
    read_upload,
    upload_limit,
)
from spf.exports import safe_cell
from spf.models import Role
from spf.scope import district_ids_for

from .amounts import benefit_amounts_sql
from .models import (
    BENEFICIARY_LIST_RUNNING,
    BENEFICIARY_REVIEW_STATES,
    BeneficiaryList,
    BeneficiaryListStatus,
    BeneficiaryMatch,
    BeneficiaryRow,
    BeneficiaryRowState,
    Enrolment,
    EnrolmentEvent,
    EnrolmentEventKind,
    EnrolmentSource,
    EnrolmentStatus,
    PaymentChannel,
)

logger = logging.getLogger(__name__)

L = BeneficiaryListStatus
R = BeneficiaryRowState

FILE_EXTENSIONS = (".csv", ".xlsx")
# Rows shown in the mapping step: enough to recognise each column's contents.
SAMPLE_ROWS = 5
# Lists up to this many rows run in the officer's request (a few seconds at
# most, and the result is on the next page); longer ones are a Celery job
# with a progress page.
INLINE_ROW_LIMIT = 200
# Rows between two progress writes: the page moves every second or so without a write per row.
PROGRESS_EVERY = 2_000
# National IDs looked up in the registry per query (an IN list on its unique index).
NATIONAL_ID_LOOKUP_BATCH = 5_000
# Rows per INSERT: far below PostgreSQL's 65,535 parameters (a row has about 30 columns).
ROW_INSERT_BATCH = 1_000
# Rows enrolled per statement: their ids are parameters, under SQLite's limit of 32,766 and
# few enough that one statement's locks and memory stay small; 100,000 rows are 20 statements.
ENROL_BATCH = 5_000
# Up to this many rows to match by name, each is asked of the registry as the
# front desk asks (`member_duplicate_candidates`: indexed, nearest village
# first); above it, a query per row would take longer than one pass over the
# districts' people by sound keys (the registry's bulk import makes the same choice).
NAME_MATCH_PER_ROW_LIMIT = 500
# Candidates kept with a row for the officer: the registry's duplicate check
# shows five, and more than that are namesakes nobody can tell apart on paper.
CANDIDATE_LIMIT = 5
# A run whose progress has not moved for this long was killed (a worker that
# died mid-list): the task, delivered again, may take it over. Every phase is
# idempotent and a list of 100,000 rows reports progress every few seconds.
STALE_RUN = datetime.timedelta(minutes=30)

# The weights of the registry's duplicate score (`member_duplicate_candidates`):
# name 0.55, date of birth 0.3, same village 0.15. Kept the same so a list's
# candidates are the people the front desk would be shown.
NAME_WEIGHT, BIRTH_WEIGHT, VILLAGE_WEIGHT = 0.55, 0.3, 0.15
# Below this a registered person is not taken to be the row's person at all:
# the registry's own line for a likely duplicate, chosen on the demo's planted
# near-duplicates (every one above it, namesakes in a village below).
CANDIDATE_SCORE = DUPLICATE_CONFIRM_SCORE
# A name match this strong is taken without an officer: a name that sounds the
# same, a date of birth within a month and the same village (0.55 + 0.3 × 0.85
# + 0.15 ≈ 0.95). Anything weaker (the person moved village: 0.85; a list
# without dates of birth: 0.85) may be someone else, and money would go to
# them: an officer looks first.
NAME_MATCH_SCORE = 0.9
# A second candidate this close behind the best makes the match uncertain: 0.1
# is less than one clue (the same village weighs 0.15), so the list cannot tell
# the two apart. Further behind (the registry's own likely duplicate of the
# person in another village, say), the best is taken.
AMBIGUITY_MARGIN = 0.1
# A national ID found in the registry whose registered name is this unlike the
# list's is held for an officer: a mistyped ID would enrol a stranger. A
# married woman's new surname keeps her first name (Mary Mwansa / Mary Banda
# scores 0.49); two different people score under 0.35.
ID_NAME_AGREEMENT = 0.4

# What a row needs to become a new household when nobody matches it.
NEW_HOUSEHOLD_FIELDS = ("first_name", "last_name", "sex", "date_of_birth", "village")

assert NAME_WEIGHT + BIRTH_WEIGHT + VILLAGE_WEIGHT == 1.0


# --- who may do what ------------------------------------------------------------------------


def may_manage_beneficiary_lists(user, programme: Programme) -> bool:
    """Ministry staff; the programme's agency officers; the front desk of a district the programme runs in."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    if user.sees_every_district:
        return True
    if user.role == Role.PROGRAMME_OFFICER:
        return user.agency_id is not None and user.agency_id == programme.agency_id
    if user.role == Role.FRONT_DESK:
        ids = district_ids_for(user)
        return ProgrammeDistrict.objects.filter(programme=programme, district_id__in=ids).exists()
    return False


def _require_manager(user, programme: Programme) -> None:
    if not may_manage_beneficiary_lists(user, programme):
        raise PermissionDenied(
            f"Only {programme.agency.name}, ministry staff or the window of a district where "
            f"{programme.name} runs can work on its beneficiary lists."
        )


def programmes_for_beneficiary_lists(user) -> QuerySet[Programme]:
    """The programmes whose lists `user` may upload and see."""
    programmes = Programme.objects.select_related("agency").order_by("name")
    if user is None or not user.is_authenticated or not user.is_active:
        return programmes.none()
    if user.sees_every_district:
        return programmes
    if user.role == Role.PROGRAMME_OFFICER and user.agency_id:
        return programmes.filter(agency_id=user.agency_id)
    if user.role == Role.FRONT_DESK:
        return programmes.filter(coverage__district_id__in=district_ids_for(user)).distinct()
    return programmes.none()


def beneficiary_lists_for(user) -> QuerySet[BeneficiaryList]:
    return BeneficiaryList.objects.filter(
        programme__in=programmes_for_beneficiary_lists(user).values("pk")
    ).select_related("programme", "programme__agency", "uploaded_by")


def beneficiary_rows_for(user, beneficiary_list: BeneficiaryList) -> QuerySet[BeneficiaryRow]:
    """The rows of a list `user` may see: in their districts; a row with no district, to its uploader."""
    rows = BeneficiaryRow.objects.filter(beneficiary_list=beneficiary_list)
    ids = district_ids_for(user)
    if ids is None:
        return rows
    if beneficiary_list.uploaded_by_id == user.pk:
        return rows.filter(Q(district_id__in=ids) | Q(district__isnull=True))
    return rows.filter(district_id__in=ids)


# --- the fields of a list and the mapping -------------------------------------------------------


@dataclass(frozen=True)
class ListField:
    key: str
    label: str
    help: str
    # Column names (lower case, letters and digits only) taken to mean this field.
    headers: tuple[str, ...]


def list_fields() -> tuple[ListField, ...]:
    country = current_country()
    id_label = country.national_id_label
    return (
        ListField(
            "national_id",
            id_label,
            f"Matched exactly with the registry; like {country.national_id_example}.",
            (
                "nationalid", "nationalidnumber", "nrc", "nrcno", "nrcnumber", "cnic", "cnicno", "nic", "nin",
                "idno", "idnumber", "id", "identitynumber", "identitycard", _plain_header(id_label),
            ),
        ),
        ListField("first_name", "First name", "", ("firstname", "givenname", "givennames", "forename", "fname", "first")),
        ListField("last_name", "Surname", "", ("lastname", "surname", "familyname", "lname", "last")),
        ListField(
            "full_name",
            "Full name",
            "When first name and surname are one column: first name(s), then the surname.",
            ("name", "names", "fullname", "beneficiaryname", "nameofbeneficiary", "recipientname", "recipient", "beneficiary"),
        ),
        ListField("sex", "Sex", "F or M (female, male).", ("sex", "gender")),
        ListField(
            "date_of_birth",
            "Date of birth",
            "YYYY-MM-DD, DD/MM/YYYY, or a year alone (recorded as estimated).",
            ("dateofbirth", "dob", "birthdate", "born", "birth", "yearofbirth", "birthyear"),
        ),
        ListField(
            "village",
            "Village",
            "The village's code, or its name when it is unique in the programme's districts.",
            ("village", "villagecode", "villagename", "community", "locality"),
        ),
        ListField("phone", "Phone", "", ("phone", "phonenumber", "phoneno", "mobile", "cellphone", "telephone", "msisdn", "contact")),
        ListField(
            "beneficiary_number",
            "Programme's beneficiary number",
            "The programme's own number for the beneficiary: kept on the enrolment.",
            (
                "beneficiaryno", "beneficiarynumber", "beneficiaryid", "beneficiaryref", "programmeno", "programmeid",
                "hhid", "householdid", "householdno", "caseno", "casenumber", "ref", "reference", "serial",
            ),
        ),
        ListField(
            "amount",
            "Amount per payment",
            "In the programme's currency. Without it, the programme's formula gives the amount.",
            ("amount", "benefit", "benefitamount", "transfer", "transferamount", "entitlement", "value"),
        ),
        ListField(
            "payment_channel",
            "Payment channel",
            "bank, mobile money or cash.",
            ("channel", "paymentchannel", "paymentmethod", "paymentmode", "modeofpayment", "method"),
        ),
        ListField(
            "account_number",
            "Account or wallet number",
            "The bank account or mobile money wallet paid.",
            ("account", "accountnumber", "accountno", "wallet", "walletnumber", "walletno", "mobilemoneynumber", "bankaccount"),
        ),
        ListField("pay_point", "Pay point", "Where a household paid in cash collects.", ("paypoint", "paymentpoint", "paystation", "collectionpoint")),
    )  # fmt: skip


def _plain_header(text: Any) -> str:
    return re.sub(r"[^a-z0-9]", "", str(text or "").lower())


# Synonyms this short are only taken as a whole column name: "id" or "ref" inside another name means something else.
_SHORT_HEADER = 4


def guess_mapping(columns: list[str], *, programme_code: str = "") -> dict[str, int]:
    """Field key → index of the column its header suggests; each column used once, exact names first.

    A programme's own number is often headed by the programme's code ("SCT No").
    """
    fields = list_fields()
    code = _plain_header(programme_code)
    if code:
        fields = tuple(
            ListField(f.key, f.label, f.help, f.headers + (f"{code}no", f"{code}number", f"{code}id", f"{code}ref"))
            if f.key == "beneficiary_number"
            else f
            for f in fields
        )
    plain = [_plain_header(column) for column in columns]
    mapping: dict[str, int] = {}
    used: set[int] = set()
    for exact in (True, False):
        for list_field in fields:
            if list_field.key in mapping:
                continue
            for index, header in enumerate(plain):
                if index in used or not header:
                    continue
                if exact:
                    hit = header in list_field.headers
                else:
                    hit = any(len(s) >= _SHORT_HEADER and s in header for s in list_field.headers)
                if hit:
                    mapping[list_field.key] = index
                    used.add(index)
                    break
    # "Name" beside "Surname" is the first name, not the full name.
    if "full_name" in mapping and "last_name" in mapping and "first_name" not in mapping:
        mapping["first_name"] = mapping.pop("full_name")
    if "full_name" in mapping and "first_name" in mapping and "last_name" in mapping:
        del mapping["full_name"]
    return mapping


def _validate_mapping(
    beneficiary_list: BeneficiaryList, mapping: dict[str, int | None], payment_defaults: dict
) -> tuple[dict[str, int], dict]:
    """The mapping with only the mapped fields, and the payment defaults; ValidationError naming each field."""
    fields = {list_field.key: list_field for list_field in list_fields()}
    columns = beneficiary_list.columns
    errors: dict[str, list[str]] = {}
    clean: dict[str, int] = {}
    used: dict[int, str] = {}
    for key, index in mapping.items():
        if key not in fields:
            errors.setdefault("mapping", []).append(f"'{key}' is not a field of a beneficiary list.")
            continue
        if index in (None, ""):
            continue
        try:
            index = int(index)
        except (TypeError, ValueError):
            errors[key] = [f"Choose one of the file's columns for {fields[key].label}."]
            continue
        if not 0 <= index < len(columns):
            errors[key] = [f"The file has no column {index + 1}."]
        elif index in used:
            errors[key] = [f"Column '{columns[index]}' is already used for {fields[used[index]].label}."]
        else:
            clean[key], used[index] = index, key
    has_names = "first_name" in clean or "last_name" in clean
    if "full_name" in clean and has_names:
        errors.setdefault("full_name", []).append("Map either the full name or the first name and surname, not both.")
    elif has_names and not ("first_name" in clean and "last_name" in clean):
        missing = "last_name" if "first_name" in clean else "first_name"
        errors.setdefault(missing, []).append(f"Map the {fields[missing].label.lower()} column too.")
    if "national_id" not in clean and "full_name" not in clean and not has_names:
        errors.setdefault("national_id", []).append(
            f"Map the {fields['national_id'].label} column or the name columns: a row cannot be matched without either."
        )
    channel = (payment_defaults.get("payment_channel") or "").strip()
    pay_point = (payment_defaults.get("pay_point") or "").strip()
    if channel and channel not in PaymentChannel.values:
        errors["payment_channel_default"] = [f"Choose one of: {', '.join(PaymentChannel.values)}."]
    elif (
        _list_pays_money(beneficiary_list.programme, clean)
        and "payment_channel" not in clean
        and channel in ("", PaymentChannel.CASH)
        and "pay_point" not in clean
        and not pay_point
    ):
        errors["pay_point_default"] = [
            "Rows without a payment channel are paid in cash: give the pay point where they collect, "
            "or map the pay point or payment channel column."
        ]
    elif channel in (PaymentChannel.BANK, PaymentChannel.MOBILE_MONEY) and "account_number" not in clean:
        errors["payment_channel_default"] = [
            f"Payments by {PaymentChannel(channel).label.lower()} need the account column: map it, or choose cash."
        ]
    if errors:
        raise ValidationError(errors)
    return clean, {"payment_channel": channel, "pay_point": pay_point[:120]}


def _list_pays_money(programme: Programme, mapping: dict) -> bool:
    """Payment details matter when the programme pays an amount: a formula, or amounts in the list."""
    version = programme.current_version
    return "amount" in mapping or bool(version is not None and version.benefit_formula.strip())


# --- reading a file -------------------------------------------------------------------------------


# The file cannot be read as a table at all; the message (registry/uploads.py) names the file and the problem.
ListFileError = UploadRefused


@dataclass
class Table:
    header: list[str]
    rows: Iterator[tuple[int, tuple]]  # (row number as the spreadsheet shows it, cells)
    estimated_rows: int


def _open_table(content: bytes, file_name: str) -> Table:
    """The file as a table, through the checks every upload passes (registry/uploads.py): size, encoding,
    what the file really is, a zip bomb or entity expansion in a workbook. A problem that shows only
    while the rows are read is UploadRefused from the rows."""
    suffix = PurePath(file_name).suffix.lower()
    if len(content) > upload_limit():
        raise UploadRefused(f"{file_name} is larger than the {upload_limit() // (1024 * 1024)} MB a list may be.")
    if suffix == ".xlsx":
        workbook = open_workbook(content, file_name=file_name)
        sheet = workbook.worksheets[0]
        rows = read_rows_safely(sheet.iter_rows(values_only=True), file_name=file_name)
        header = next(rows, None)
        estimated = max(0, (sheet.max_row or 1) - 1)
        return Table(_header_names(header), enumerate(rows, start=2), estimated)
    if suffix == ".csv":
        text = csv_text(content, file_name=file_name)
        reader = csv.reader(io.StringIO(text), delimiter=csv_delimiter(text))
        rows = read_rows_safely(reader, file_name=file_name, reader=reader)
        header = next(rows, None)
        estimated = max(0, text.count("\n") - 1)
        return Table(
            _header_names(header), ((number, tuple(cells)) for number, cells in enumerate(rows, start=2)), estimated
        )
    raise ListFileError("Upload the list as a .csv or .xlsx file (in Excel: Save As, Excel Workbook or CSV UTF-8).")


def _header_names(header) -> list[str]:
    names_ = [_text(cell) for cell in (header or ())]
    while names_ and not names_[-1]:
        names_.pop()
    return names_


def _text(cell: Any) -> str:
    if type(cell) is str:
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


def _data_rows(table: Table) -> Iterator[tuple[int, tuple]]:
    """The rows that hold data: blank rows and comment rows (starting with #) are not the list's."""
    for number, cells in table.rows:
        if not any(_text(cell) for cell in cells):
            continue
        if _text(cells[0]).startswith("#"):
            continue
        yield number, cells


# --- uploading -----------------------------------------------------------------------------------


def beneficiary_list_upload(*, acting_user, programme: Programme, upload: UploadedFile) -> tuple[BeneficiaryList, bool]:
    """Store a programme's list and propose a column mapping; (the list, whether it is new).

    The same file (same SHA-256) for the same programme is the list already
    uploaded: it is returned unchanged, with False.
    """
    _require_manager(acting_user, programme)
    name = PurePath(upload.name or "").name
    if PurePath(name).suffix.lower() not in FILE_EXTENSIONS:
        raise ValidationError({"file": ["Upload the list as a .csv or .xlsx file."]})
    if programme.status != ProgrammeStatus.ACTIVE:
        raise ValidationError(
            {"programme": [f"{programme.name} is {programme.get_status_display().lower()}: it enrols nobody."]}
        )
    try:
        content = read_upload(upload)
    except UploadRefused as refusal:
        raise ValidationError({"file": [str(refusal)]}) from refusal
    digest = hashlib.sha256(content).hexdigest()
    existing = BeneficiaryList.objects.filter(programme=programme, file_sha256=digest).first()
    if existing is not None:
        return existing, False
    try:
        table = _open_table(content, name)
    except ListFileError as problem:
        raise ValidationError({"file": [str(problem)]}) from problem
    if not any(table.header):
        raise ValidationError({"file": ["The first row must name the columns (national ID, name, …)."]})
    sample = []
    try:
        for _number, cells in _data_rows(table):
            sample.append([_text(cell) for cell in cells[: len(table.header)]])
            if len(sample) >= SAMPLE_ROWS:
                break
    except UploadRefused as problem:
        raise ValidationError({"file": [str(problem)]}) from problem
    if not sample:
        raise ValidationError({"file": ["The file has column names but no rows."]})
    beneficiary_list = BeneficiaryList(
        programme=programme,
        file_name=name[:255],
        file_sha256=digest,
        uploaded_by=acting_user,
        columns=table.header,
        sample=sample,
        estimated_rows=table.estimated_rows,
        mapping=guess_mapping(table.header, programme_code=programme.code),
        payment_defaults={"payment_channel": "", "pay_point": ""},
    )
    beneficiary_list.file.save(name, ContentFile(content), save=False)
    try:
        with transaction.atomic():
            beneficiary_list.save()
    except IntegrityError:
        # The same file uploaded twice at the same moment: the index decides, the first one stands.
        beneficiary_list.file.delete(save=False)
        return BeneficiaryList.objects.get(programme=programme, file_sha256=digest), False
    return beneficiary_list, True


# --- starting a run --------------------------------------------------------------------------


def beneficiary_list_start(
    *, acting_user, beneficiary_list: BeneficiaryList, mapping: dict[str, int | None], payment_defaults: dict
) -> BeneficiaryList:
    """Record the confirmed mapping and run the list: here for a small list, as a Celery job otherwise."""
    with transaction.atomic():
        beneficiary_list = (
            BeneficiaryList.objects.select_for_update(of=("self",))
            .select_related("programme", "programme__agency", "programme__current_version")
            .get(pk=beneficiary_list.pk)
        )
        _require_manager(acting_user, beneficiary_list.programme)
        if beneficiary_list.status not in (L.UPLOADED, L.FAILED):
            raise ValidationError(
                {
                    "mapping": [
                        f"This list is {beneficiary_list.get_status_display().lower()}: its mapping cannot change now."
                    ]
                }
            )
        clean, defaults = _validate_mapping(beneficiary_list, mapping, payment_defaults)
        beneficiary_list.mapping = clean
        beneficiary_list.payment_defaults = defaults
        beneficiary_list.mapped_by, beneficiary_list.mapped_at = acting_user, timezone.now()
        beneficiary_list.status = L.QUEUED
        beneficiary_list.message = ""
        beneficiary_list.save()
    if beneficiary_list.estimated_rows <= INLINE_ROW_LIMIT:
        beneficiary_list_run(list_id=beneficiary_list.pk)
    else:
        from spf.outbox import job_queue

        from .tasks import beneficiary_list_run as run_task

        job_queue(task=run_task, args=[beneficiary_list.pk])
    beneficiary_list.refresh_from_db()
    return beneficiary_list


# --- the run ---------------------------------------------------------------------------------


@contextmanager
def _cyclic_gc_paused():
    """A list of 100,000 rows holds an object per row; each full collection would walk them all (see registry.imports)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def beneficiary_list_run(*, list_id: int) -> BeneficiaryList | None:
    """Run a list waiting to run (or one whose run died); any other list is left alone (None).

    Three phases: read and match (only progress is written), write the rows
    (one transaction), register and enrol (one transaction). On failure the
    rows are removed and the list says so; it can be run again.
    """
    now = timezone.now()
    claimed = (
        BeneficiaryList.objects.filter(pk=list_id)
        .filter(Q(status=L.QUEUED) | Q(status__in=BENEFICIARY_LIST_RUNNING[1:], updated_at__lt=now - STALE_RUN))
        .update(status=L.READING, started_at=now, finished_at=None, processed_rows=0, message="", updated_at=now)
    )
    if not claimed:
        return None
    beneficiary_list = BeneficiaryList.objects.select_related(
        "programme", "programme__agency", "programme__current_version", "uploaded_by", "mapped_by"
    ).get(pk=list_id)
    try:
        with _cyclic_gc_paused():
            # A run that died may have left rows: start from the file again.
            BeneficiaryRow.objects.filter(beneficiary_list=beneficiary_list).delete()
            run = _ListRun(beneficiary_list)
            run.read()
            run.match()
            run.write_rows()
            run.apply()
    except Exception as problem:  # noqa: BLE001 - any crash must leave the list failed and empty, never stuck
        logger.exception("Beneficiary list %s failed", list_id)
        if isinstance(problem, ValidationError):
            problem = " ".join(problem.messages)
        BeneficiaryRow.objects.filter(beneficiary_list_id=list_id).delete()
        BeneficiaryList.objects.filter(pk=list_id).update(
            status=L.FAILED,
            counts={},
            enrolments_created=0,
            households_created=0,
            registry_import=None,
            finished_at=timezone.now(),
            message=f"The run stopped before finishing; no household or enrolment was written ({problem}). "
            "Check the mapping and run it again.",
        )
    beneficiary_list.refresh_from_db()
    return beneficiary_list


def _progress(beneficiary_list: BeneficiaryList, **values) -> None:
    BeneficiaryList.objects.filter(pk=beneficiary_list.pk).update(updated_at=timezone.now(), **values)


@dataclass
class _Village:
    lookup_by_code: dict[str, Location | str]
    lookup_by_name: dict[str, list[Location]]


class _ListRun:
    """One run of a list: the rows in memory from reading to writing, then the writes."""

    def __init__(self, beneficiary_list: BeneficiaryList):
        self.list = beneficiary_list
        self.programme = beneficiary_list.programme
        self.user = beneficiary_list.mapped_by or beneficiary_list.uploaded_by
        self.individual = self.programme.target_unit == TargetUnit.INDIVIDUAL
        self.country = current_country()
        self.today = timezone.localdate()
        self.fields = {list_field.key: list_field for list_field in list_fields()}
        self.mapping = {key: int(index) for key, index in beneficiary_list.mapping.items()}
        self.pays_money = _list_pays_money(self.programme, self.mapping)
        self.defaults = beneficiary_list.payment_defaults or {}
        self.coverage = set(
            ProgrammeDistrict.objects.filter(programme=self.programme).values_list("district_id", flat=True)
        )
        self.user_districts = district_ids_for(self.user)
        self.rows: list[BeneficiaryRow] = []
        self.district_names = dict(Location.objects.filter(level=LocationLevel.DISTRICT).values_list("pk", "name"))

    # -- column labels, for reasons ------------------------------------------------------------

    def column(self, key: str) -> str:
        """The file's own name for a field's column (what a person looks for), or the field's label."""
        index = self.mapping.get(key)
        if index is not None and index < len(self.list.columns) and self.list.columns[index]:
            return self.list.columns[index]
        return self.fields[key].label if key in self.fields else key

    def in_scope(self, district_id: int | None) -> bool:
        return district_id is not None and (self.user_districts is None or district_id in self.user_districts)

    # -- phase 1: read and check every row -------------------------------------------------------

    def read(self) -> None:
        content = self.list.file.open("rb").read()
        self.list.file.close()
        try:
            table = _open_table(content, self.list.file_name)
        except ListFileError as problem:
            raise ValidationError({"file": [str(problem)]}) from problem
        del content
        _progress(self.list, total_rows=table.estimated_rows)
        villages = self._villages()
        first_line_of: dict[tuple[str, str], int] = {}
        count = 0
        # A file that breaks off half-way (damaged sheet XML) is UploadRefused here: the run fails, nothing written.
        for number, cells in _data_rows(table):
            row = self._row_from_cells(number, cells, villages)
            for key, value in (("national_id", row.national_id), ("beneficiary_number", row.external_reference)):
                if not value or row.state == R.INVALID:
                    continue
                earlier = first_line_of.setdefault((key, value), number)
                if earlier != number:
                    self._invalid(row, key, f"'{value}' is also on row {earlier}; the person is taken from that row.")
            self.rows.append(row)
            count += 1
            if count % PROGRESS_EVERY == 0:
                _progress(self.list, processed_rows=count)
        _progress(self.list, processed_rows=count, total_rows=count, status=L.MATCHING)

    def _villages(self) -> _Village:
        by_code: dict[str, Location | str] = {}
        by_name: dict[str, list[Location]] = defaultdict(list)
        for village in Location.objects.filter(level=LocationLevel.VILLAGE).only("pk", "code", "name", "district_id"):
            district = self.district_names.get(village.district_id, "another")
            if village.district_id not in self.coverage:
                by_code[village.code.upper()] = (
                    f"{village.code} is in {district} district, where {self.programme.name} does not run."
                )
            elif not self.in_scope(village.district_id):
                by_code[village.code.upper()] = f"{village.code} is in {district} district, which is not one of yours."
            else:
                by_code[village.code.upper()] = village
                by_name[village.name.strip().lower()].append(village)
        return _Village(by_code, by_name)

    def _invalid(self, row: BeneficiaryRow, key: str, problem: str) -> None:
        column = self.column(key)
        row.state = R.INVALID
        row.column = f"{row.column}, {column}" if row.column else column
        text = f"{column}: {problem}"
        row.reason = f"{row.reason} {text}" if row.reason else text

    def _row_from_cells(self, number: int, cells: tuple, villages: _Village) -> BeneficiaryRow:
        given = {key: _text(cells[index]) if index < len(cells) else "" for key, index in self.mapping.items()}
        raw = {key: cells[index] if index < len(cells) else None for key, index in self.mapping.items()}
        row = BeneficiaryRow(beneficiary_list=self.list, line=number, values=given, state=R.PENDING)

        national_id = given.get("national_id", "").upper()
        if national_id and not self.country.national_id_is_valid(national_id):
            self._invalid(row, "national_id", f"'{national_id}' is not a {self.country.national_id_label} "
                          f"(they look like {self.country.national_id_example}).")  # fmt: skip
        else:
            row.national_id = national_id
        if "full_name" in given:
            words = given["full_name"].split()
            first, last = " ".join(words[:-1]), (words[-1] if words else "")
            if len(words) == 1:
                first, last = words[0], ""
            name_keys = {"first_name": "full_name", "last_name": "full_name"}
        else:
            first, last = " ".join(given.get("first_name", "").split()), " ".join(given.get("last_name", "").split())
            name_keys = {"first_name": "first_name", "last_name": "last_name"}
        for attribute, value in (("first_name", first), ("last_name", last)):
            if len(value) > 80:
                self._invalid(row, name_keys[attribute], "longer than 80 characters.")
            else:
                setattr(row, attribute, value)
        if not row.national_id and not (row.first_name or row.last_name) and row.state != R.INVALID:
            self._invalid(
                row, "national_id" if "national_id" in self.mapping else name_keys["first_name"],
                f"neither a {self.country.national_id_label} nor a name: the row cannot be matched.",
            )  # fmt: skip

        sex = given.get("sex", "").lower()
        if sex:
            code = SEX_WORDS.get(sex)
            if code is None:
                self._invalid(row, "sex", f"'{given['sex']}' is not F or M.")
            else:
                row.sex = code
        if given.get("date_of_birth"):
            try:
                row.date_of_birth, row.date_of_birth_estimated = _birth_date(raw["date_of_birth"], self.today)
            except ValueError as problem:
                self._invalid(row, "date_of_birth", str(problem))

        code = given.get("village", "")
        if code:
            found = villages.lookup_by_code.get(code.upper())
            if found is None:
                named = villages.lookup_by_name.get(code.lower(), [])
                if len(named) == 1:
                    found = named[0]
                elif len(named) > 1:
                    found = f"several villages are called {code}: give the village code."
                else:
                    found = (
                        f"no village has the code or name '{code}' in your districts where {self.programme.name} runs."
                    )
            if isinstance(found, Location):
                row.village, row.district_id = found, found.district_id
            else:
                row.village_problem = f"{self.column('village')}: {found}"[:255]
                # Outside the user's districts or the programme's: the row cannot be registered
                # (it may still match by ID). An unknown village is for an officer to put right.
                row.village_unreachable = isinstance(villages.lookup_by_code.get(code.upper()), str)

        row.phone = given.get("phone", "")[:32]
        reference = given.get("beneficiary_number", "")
        if len(reference) > 64:
            self._invalid(row, "beneficiary_number", "longer than 64 characters.")
        else:
            row.external_reference = reference
        if given.get("amount"):
            try:
                row.amount = _amount(given["amount"], self.programme.currency, self.country.currency_symbol)
            except ValueError as problem:
                self._invalid(row, "amount", str(problem))
        self._payment_details(row, given)
        return row

    def _payment_details(self, row: BeneficiaryRow, given: dict) -> None:
        channel_text = given.get("payment_channel", "")
        channel = ""
        if channel_text:
            channel = CHANNEL_WORDS.get(_plain_header(channel_text), "")
            if not channel:
                self._invalid(row, "payment_channel", f"'{channel_text}' is not bank, mobile money or cash.")
                return
        account = given.get("account_number", "")
        pay_point = given.get("pay_point", "") or self.defaults.get("pay_point", "")
        if len(account) > 64:
            self._invalid(row, "account_number", "longer than 64 characters.")
            return
        if len(pay_point) > 120:
            self._invalid(row, "pay_point", "longer than 120 characters.")
            return
        if not channel:
            channel = self.defaults.get("payment_channel") or ""
        if not channel:
            if account:
                if self.pays_money:
                    self._invalid(
                        row, "payment_channel", f"give the channel for account {account}: bank or mobile money."
                    )
                    return
            channel = PaymentChannel.CASH
        row.channel, row.account_number, row.pay_point = channel, account, pay_point
        if not self.pays_money:
            return
        if channel in (PaymentChannel.BANK, PaymentChannel.MOBILE_MONEY) and not account:
            label = "bank account" if channel == PaymentChannel.BANK else "mobile money wallet"
            self._invalid(row, "account_number", f"give the {label} number for payments by {label}.")
        elif channel == PaymentChannel.CASH and not pay_point:
            self._invalid(row, "pay_point", "give the pay point where the household collects its cash.")

    # -- phase 1b: match --------------------------------------------------------------------------

    def match(self) -> None:
        candidates_of = self._match_national_ids()
        to_name_match = [
            row for row in self.rows if row.state == R.PENDING and row.member_id is None and row.first_name
        ]
        if len(to_name_match) <= NAME_MATCH_PER_ROW_LIMIT:
            found = _name_candidates_row_by_row(to_name_match, user=self.user, coverage=self.coverage)
        else:
            found = _name_candidates_by_pass(to_name_match, user=self.user, district_ids=self._matching_districts())
        candidates_of.update(found)
        for row in self.rows:
            if row.state != R.PENDING or row.member_id is not None:
                continue
            self._decide(row, candidates_of.get(id(row), []))

    def _matching_districts(self) -> list[int]:
        return sorted(d for d in self.coverage if self.user_districts is None or d in self.user_districts)

    def _match_national_ids(self) -> dict[int, list[dict]]:
        """Rows whose national ID is registered: matched, or held (outside scope, unlike name, gone)."""
        by_id: dict[str, BeneficiaryRow] = {
            row.national_id: row for row in self.rows if row.national_id and row.state == R.PENDING
        }
        given = list(by_id)
        held: dict[int, list[dict]] = {}
        for start in range(0, len(given), NATIONAL_ID_LOOKUP_BATCH):
            batch = given[start : start + NATIONAL_ID_LOOKUP_BATCH]
            people = Member.objects.filter(national_id__in=batch).values_list(*_PERSON_COLUMNS)
            for person in people:
                person = _Person(*person)
                row = by_id[person.national_id]
                self._match_by_id(row, person, held)
        return held

    def _match_by_id(self, row: BeneficiaryRow, person: "_Person", held: dict[int, list[dict]]) -> None:
        label = self.country.national_id_label
        if not self.in_scope(person.district_id):
            self._invalid(
                row,
                "national_id",
                f"the person with this {label} is registered in a district that is not one of yours.",
            )
            return
        row.district_id = person.district_id
        if person.district_id not in self.coverage:
            self._invalid(
                row, "national_id",
                f"{person.full_name} lives in {self.district_names.get(person.district_id)} district, "
                f"where {self.programme.name} does not run.",
            )  # fmt: skip
            return
        gone = _gone(person)
        if gone:
            self._invalid(row, "national_id", gone)
            return
        list_name = row.name
        if list_name:
            similarity = _name_agreement(list_name, person)
            if similarity < ID_NAME_AGREEMENT:
                row.state = R.AMBIGUOUS
                row.column = self.column("national_id")
                row.reason = (
                    f"{row.column}: the registry gives this {label} to {person.full_name} "
                    f"(household {person.household_number}), not {list_name}: check which is right."
                )
                row.score = Decimal(str(round(similarity, 3)))
                held[id(row)] = [
                    person.candidate(round(similarity, 3), [f"same {label}", f"name {round(similarity * 100)}% alike"])
                ]
                row.candidates = held[id(row)]
                return
        row.member_id, row.household_id = person.member_id, person.household_id
        row.match_method, row.score = BeneficiaryMatch.NATIONAL_ID, Decimal("1.000")

    def _decide(self, row: BeneficiaryRow, candidates: list[dict]) -> None:
        """A row nobody matched by ID: matched by name, ambiguous, a new household, or waiting for details."""
        row.candidates = candidates
        strong = [c for c in candidates if c["score"] >= CANDIDATE_SCORE]
        if strong:
            best = strong[0]
            row.score = Decimal(str(best["score"]))
            usable = not best.get("gone")
            clear = len(strong) == 1 or best["score"] - strong[1]["score"] >= AMBIGUITY_MARGIN
            if clear and best["score"] >= NAME_MATCH_SCORE and usable:
                row.member_id, row.household_id = best["member_id"], best["household_id"]
                row.district_id = best["district_id"]
                row.match_method = BeneficiaryMatch.NAME
                return
            row.state = R.AMBIGUOUS
            if row.district_id is None:
                # Seen and resolved by the officers of the district the likeliest person lives in.
                row.district_id = best["district_id"]
            if not clear:
                row.reason = (
                    f"{len(strong)} registered people may be this person: choose one, or register a new household."
                )
            elif not usable:
                row.reason = f"The likeliest person, {best['name']}, {best['gone']}"
            else:
                row.reason = (
                    f"{best['name']} (household {best['household_number']}) may be this person, with a score of "
                    f"{best['score']:.2f} where enrolling without an officer needs {NAME_MATCH_SCORE:.2f}: "
                    "confirm, or register a new household."
                )
            return
        missing = self._missing_for_new_household(row)
        if not missing:
            row.match_method = BeneficiaryMatch.NEW_HOUSEHOLD
            return
        if getattr(row, "village_unreachable", False):
            self._invalid(row, "village", row.village_problem.split(": ", 1)[-1])
            return
        row.state = R.NEEDS_REVIEW
        row.column = ", ".join(self.column(key) if key in self.mapping else self.fields[key].label for key in missing)
        reason = f"Not found in the registry, and cannot be registered without: {row.column}."
        if row.village_problem:
            reason += f" {row.village_problem}"
        row.reason = reason

    def _missing_for_new_household(self, row: BeneficiaryRow) -> list[str]:
        missing = []
        for key in NEW_HOUSEHOLD_FIELDS:
            if key == "village":
                if row.village_id is None:
                    missing.append("village")
            elif not getattr(row, key):
                missing.append(
                    "full_name" if "full_name" in self.mapping and key in ("first_name", "last_name") else key
                )
        return list(dict.fromkeys(missing))

    # -- phase 2: write the rows -----------------------------------------------------------------

    def write_rows(self) -> None:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                _copy_rows(self.rows)
            else:
                BeneficiaryRow.objects.bulk_create(self.rows, batch_size=ROW_INSERT_BATCH)
            _progress(self.list, status=L.APPLYING, counts=_counts(self.list))

    # -- phase 3: register new households, enrol -----------------------------------------------

    def apply(self) -> None:
        with transaction.atomic():
            now = timezone.now()
            new_rows = [row for row in self.rows if row.state == R.PENDING and row.household_id is None]
            households = 0
            job = None
            if new_rows:
                job, households = _register_new_households(self, new_rows)
            enrolled = _enrol_rows(
                self.list,
                row_ids=None,
                acting_user=self.user,
                now=now,
            )
            counts = _counts(self.list)
            BeneficiaryList.objects.filter(pk=self.list.pk).update(
                status=L.DONE,
                counts=counts,
                enrolments_created=enrolled,
                households_created=households,
                registry_import=job,
                finished_at=timezone.now(),
                updated_at=timezone.now(),
                message=_done_message(counts),
            )


# Rows per COPY statement: a few megabytes of text at a time, never the whole list.
COPY_BATCH = 20_000
_ROW_FIELDS = [field for field in BeneficiaryRow._meta.concrete_fields]
# Quoted: one of them is called "column", a word SQL keeps for itself.
_ROW_COLUMNS = [f'"{field.column}"' for field in _ROW_FIELDS]
_ROW_NOT_NULL = [f'"{field.column}"' for field in _ROW_FIELDS if not field.null and field.column != "id"]


def _copy_cell(field, value) -> Any:
    if value is None:
        return ""  # NULL: unquoted and empty in COPY's CSV
    if field.get_internal_type() == "JSONField":
        return json.dumps(value)
    return value


def _copy_rows(rows: list[BeneficiaryRow]) -> None:
    """PostgreSQL: the rows with COPY, ids reserved from the table's sequence first (`bulk_create` took 26 s
    for 100,000 rows on a busy machine, most of it building and sending the INSERTs).

    In COPY's CSV an unquoted empty field is NULL; the columns that cannot be
    NULL are named FORCE_NOT_NULL, so an empty text there is ''. The values are
    those `bulk_create` writes (`test_the_copy_writer_writes_what_bulk_create_writes`).
    """
    table = BeneficiaryRow._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)",  # noqa: S608
            [len(rows)],
        )
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            row.pk = pk
        for start in range(0, len(rows), COPY_BATCH):
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            for row in rows[start : start + COPY_BATCH]:
                writer.writerow([_copy_cell(field, getattr(row, field.attname)) for field in _ROW_FIELDS])
            buffer.seek(0)
            cursor.cursor.copy_expert(
                f"COPY {table} ({', '.join(_ROW_COLUMNS)}) FROM STDIN "
                f"WITH (FORMAT csv, FORCE_NOT_NULL ({', '.join(_ROW_NOT_NULL)}))",
                buffer,
            )


SEX_WORDS = {
    "f": Sex.FEMALE,
    "female": Sex.FEMALE,
    "woman": Sex.FEMALE,
    "m": Sex.MALE,
    "male": Sex.MALE,
    "man": Sex.MALE,
}
CHANNEL_WORDS = {
    "bank": PaymentChannel.BANK,
    "bankaccount": PaymentChannel.BANK,
    "mobilemoney": PaymentChannel.MOBILE_MONEY,
    "mobilemoneywallet": PaymentChannel.MOBILE_MONEY,
    "mobile": PaymentChannel.MOBILE_MONEY,
    "momo": PaymentChannel.MOBILE_MONEY,
    "wallet": PaymentChannel.MOBILE_MONEY,
    "cash": PaymentChannel.CASH,
    "cashatapaypoint": PaymentChannel.CASH,
    "paypoint": PaymentChannel.CASH,
}
# Day first: the countries served (Zambia, Pakistan) write 17/05/1980.
DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d %b %Y", "%d %B %Y", "%d-%b-%Y")


def _birth_date(cell: Any, today: datetime.date) -> tuple[datetime.date, bool]:
    """The date and whether it is a year alone (recorded as 1 July, estimated); ValueError in a person's words."""
    if isinstance(cell, datetime.datetime):
        born, estimated = cell.date(), False
    elif isinstance(cell, datetime.date):
        born, estimated = cell, False
    else:
        text = _text(cell)
        if len(text) == 4 and text.isdigit():
            born, estimated = datetime.date(int(text), 7, 1), True
        else:
            for pattern in DATE_FORMATS:
                try:
                    born, estimated = datetime.datetime.strptime(text, pattern).date(), False
                    break
                except ValueError:
                    continue
            else:
                raise ValueError(f"'{text}' is not a date (write 1980-05-17, 17/05/1980, or the year alone).")
    if born > today:
        raise ValueError(f"{born.isoformat()} is in the future.")
    if born.year < today.year - 125:
        raise ValueError(f"{born.isoformat()} is more than 125 years ago.")
    return born, estimated


def _amount(text: str, currency: str, symbol: str) -> Decimal:
    cleaned = text.replace(",", "").replace(" ", "").replace("\u00a0", "")
    code = re.match(r"^([A-Za-z]{3})|([A-Za-z]{3})$", cleaned)
    letters = re.sub(r"[0-9.\-]", "", cleaned)
    if letters and letters.upper() not in (currency, symbol.upper()):
        if code:
            raise ValueError(f"'{text}' is not in {currency}, the programme's currency.")
        raise ValueError(f"'{text}' is not an amount.")
    try:
        value = Decimal(re.sub(r"[^0-9.\-]", "", cleaned))
    except InvalidOperation:
        raise ValueError(f"'{text}' is not an amount.") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"'{text}' is not an amount of zero or more.")
    if value >= Decimal("10000000000"):
        raise ValueError(f"'{text}' is too large for an amount per payment.")
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# --- matching by name ------------------------------------------------------------------------------


_PERSON_COLUMNS = (
    "pk", "household_id", "household__number", "household__village_id", "household__village__name",
    "household__district_id", "first_name", "middle_name", "last_name", "other_names", "date_of_birth",
    "national_id", "status", "household__status",
)  # fmt: skip


@dataclass
class _Person:
    member_id: int
    household_id: int
    household_number: str
    village_id: int
    village_name: str
    district_id: int
    first_name: str
    middle_name: str
    last_name: str
    other_names: str
    date_of_birth: datetime.date | None
    national_id: str | None
    status: str
    household_status: str
    full_name: str = field(init=False)

    def __post_init__(self):
        self.full_name = " ".join(part for part in (self.first_name, self.middle_name, self.last_name) if part)

    def candidate(self, score: float, reasons: list[str]) -> dict:
        entry = {
            "member_id": self.member_id,
            "household_id": self.household_id,
            "household_number": self.household_number,
            "district_id": self.district_id,
            "name": self.full_name,
            "date_of_birth": self.date_of_birth.isoformat() if self.date_of_birth else None,
            "village": self.village_name,
            "has_national_id": bool(self.national_id),
            "score": score,
            "reasons": reasons,
        }
        gone = _gone(self)
        if gone:
            entry["gone"] = gone
        return entry


def _name_agreement(list_name: str, person: _Person) -> float:
    """How alike the list's name and the registered person's are (1.0 when they are the same words)."""
    plain = names.plain(list_name)
    if plain in (names.plain(person.full_name), names.plain(f"{person.first_name} {person.last_name}")):
        return 1.0
    return max(
        names.name_similarity(list_name, person.full_name),
        names.name_similarity(list_name, f"{person.first_name} {person.last_name} {person.other_names}"),
    )


def _gone(person: _Person) -> str:
    """Why a registered person cannot be enrolled now ('' when they can)."""
    if person.status == MemberStatus.DECEASED:
        return f"{person.full_name} is recorded in the registry as deceased."
    if person.status == MemberStatus.MOVED_OUT:
        return f"{person.full_name} is recorded as moved out of household {person.household_number}."
    if person.household_status != HouseholdStatus.ACTIVE:
        return f"household {person.household_number} of {person.full_name} is {HouseholdStatus(person.household_status).label.lower()}."
    return ""


def _score(row: BeneficiaryRow, person: _Person, similarity=names.name_similarity) -> tuple[float, list[str]] | None:
    """The registry's duplicate score of a row against a registered person, with its reasons; None below
    CANDIDATE_SCORE or when both have national IDs and they differ (then they are two people)."""
    if row.national_id and person.national_id and row.national_id != person.national_id:
        return None
    birth_score, birth_reason = _birth_closeness(row.date_of_birth, person.date_of_birth)
    same_village = row.village_id is not None and row.village_id == person.village_id
    # The most the name can add is its weight: most pairs stop here, before the name is compared.
    if NAME_WEIGHT + BIRTH_WEIGHT * birth_score + (VILLAGE_WEIGHT if same_village else 0.0) < CANDIDATE_SCORE:
        return None
    full = row.name
    name_score = max(
        similarity(full, person.full_name),
        similarity(full, f"{person.first_name} {person.last_name} {person.other_names}"),
    )
    score = round(NAME_WEIGHT * name_score + BIRTH_WEIGHT * birth_score + (VILLAGE_WEIGHT if same_village else 0.0), 3)
    if score < CANDIDATE_SCORE:
        return None
    reasons = [f"name sounds alike ({person.full_name}, {round(name_score * 100)}%)"]
    if birth_reason:
        reasons.append(birth_reason)
    if same_village:
        reasons.append(f"same village ({person.village_name})")
    return score, reasons


def _best_first(found: list[tuple[float, _Person, list[str]]]) -> list[dict]:
    found.sort(key=lambda entry: (-entry[0], entry[1].member_id))
    return [person.candidate(score, reasons) for score, person, reasons in found[:CANDIDATE_LIMIT]]


def _name_candidates_row_by_row(rows: list[BeneficiaryRow], *, user, coverage: set[int]) -> dict[int, list[dict]]:
    """Each row asked of the registry as the front desk asks (`member_duplicate_candidates`), then scored here."""
    result: dict[int, list[dict]] = {}
    for row in rows:
        found = member_duplicate_candidates(
            acting_user=user,
            first_name=row.first_name,
            last_name=row.last_name,
            date_of_birth=row.date_of_birth,
            village=row.village,
            # Room for the ones dropped below (another district, another ID).
            limit=CANDIDATE_LIMIT * 4,
        )
        ids = [candidate.member.pk for candidate in found if candidate.member.household.district_id in coverage]
        people = Member.objects.filter(pk__in=ids).values_list(*_PERSON_COLUMNS)
        scored = []
        for person in people:
            person = _Person(*person)
            score = _score(row, person)
            if score is not None:
                scored.append((score[0], person, score[1]))
        result[id(row)] = _best_first(scored)
    return result


def _name_candidates_by_pass(rows: list[BeneficiaryRow], *, user, district_ids: list[int]) -> dict[int, list[dict]]:
    """The same candidates and scores as row by row, from one pass over the districts' people.

    A candidate is a registered person whose name keys include the sound keys
    of the row's first and last name: each registered person's key pairs are
    looked up in a dictionary of the rows (as `registry.imports` does for its
    duplicate check). A common name is shared by hundreds of people, so the
    rows of a key pair are filed by village and by month of birth: with the
    name's whole weight, a person reaches CANDIDATE_SCORE only in the row's
    village, or born within a month of the row's date (see `_reachable`), and
    only those pairs are scored.
    """
    near_days, village_any_birth = _reachable()
    by_village: dict[tuple, list[BeneficiaryRow]] = defaultdict(list)
    by_month: dict[tuple, list[BeneficiaryRow]] = defaultdict(list)
    pairs: set[tuple[str, str]] = set()
    for row in rows:
        keys = names.name_keys(row.first_name, row.last_name)
        if not keys:
            continue
        pair = (keys[0], keys[-1])
        pairs.add(pair)
        if row.village_id is not None:
            by_village[(pair, row.village_id)].append(row)
        if row.date_of_birth is not None:
            by_month[(pair, row.date_of_birth.year * 12 + row.date_of_birth.month)].append(row)
    months_apart = near_days // 28 + 1
    similarity_of: dict[tuple[str, str], float] = {}

    def similarity(left: str, right: str) -> float:
        # A list names the same few thousand names over and over: each pair of spellings is compared once.
        key = (left, right)
        value = similarity_of.get(key)
        if value is None:
            value = similarity_of[key] = names.name_similarity(left, right)
        return value

    found: dict[int, list[tuple[float, _Person, list[str]]]] = defaultdict(list)
    registered = (
        members_for(user)
        .filter(household__district_id__in=district_ids)
        .order_by()
        .values_list(*_PERSON_COLUMNS, "name_keys")
        .iterator(chunk_size=10_000)
    )
    village_at, born_at = _PERSON_COLUMNS.index("household__village_id"), _PERSON_COLUMNS.index("date_of_birth")
    for values in registered:
        keys = values[-1].split()
        matching = [(a, b) for a in keys for b in keys if (a, b) in pairs]
        if not matching:
            continue
        village_id, born = values[village_at], values[born_at]
        matches: dict[int, BeneficiaryRow] = {}
        for pair in matching:
            for row in by_village.get((pair, village_id), ()):
                if village_any_birth or (born and row.date_of_birth):
                    matches[id(row)] = row
            if born is not None:
                month = born.year * 12 + born.month
                for step in range(-months_apart, months_apart + 1):
                    for row in by_month.get((pair, month + step), ()):
                        if abs((row.date_of_birth - born).days) <= near_days:
                            matches[id(row)] = row
        if not matches:
            continue
        person = _Person(*values[:-1])
        for row in matches.values():
            score = _score(row, person, similarity)
            if score is not None:
                found[id(row)].append((score[0], person, score[1]))
    return {key: _best_first(entries) for key, entries in found.items()}


def _reachable() -> tuple[int, bool]:
    """Which registered people can reach CANDIDATE_SCORE with a perfect name, from `_birth_closeness`'s steps.

    Returns the most days apart two known dates of birth may be for a person in
    another village to reach it, and whether in the same village any date of
    birth (even none) can. Computed from the weights, so changing a threshold
    keeps the pass and the row-by-row search in step (a test compares them).
    """
    best_name_and_village = NAME_WEIGHT + VILLAGE_WEIGHT
    # The closeness of a missing date, and of dates three years apart: the lowest the registry gives above 0.
    unknown, far = _birth_closeness(None, None)[0], _birth_closeness(_DAY, _DAY + datetime.timedelta(days=3 * 366))[0]
    village_any_birth = best_name_and_village + BIRTH_WEIGHT * min(unknown, far) >= CANDIDATE_SCORE
    near_days = 0
    for days in (3 * 366, 366, 31, 0):
        if (
            NAME_WEIGHT + BIRTH_WEIGHT * _birth_closeness(_DAY, _DAY + datetime.timedelta(days=days))[0]
            >= CANDIDATE_SCORE
        ):
            near_days = days
            break
    else:
        near_days = -1
    return near_days, village_any_birth


_DAY = datetime.date(2000, 1, 1)


# --- registering new households and enrolling ------------------------------------------------------


# The registry import's columns for a list's new household: one member, its head.
NEW_HOUSEHOLD_COLUMNS = (
    "household_ref", "village_code", "relationship", "first_name", "last_name", "sex", "date_of_birth",
    "national_id", "phone",
)  # fmt: skip
# The registry import's column → the list's field, to name the list's column in a reason.
REGISTRY_COLUMN_FIELD = {"village_code": "village", "household_phone": "phone"}


def _register_new_households(run: "_ListRun | _OneRow", rows: list[BeneficiaryRow]) -> tuple[ImportJob, int]:
    """Register each row as a household of one (its head) through the registry's bulk import.

    The registry checks every row by its own rules; a row it refuses becomes
    invalid with the registry's words, under the list's column. Returns the
    registry's import job and the households written.
    """
    from registry.imports import import_apply, import_validate

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(NEW_HOUSEHOLD_COLUMNS)
    by_ref: dict[str, BeneficiaryRow] = {}
    for row in rows:
        ref = f"row-{row.line}"
        by_ref[ref] = row
        born = str(row.date_of_birth.year) if row.date_of_birth_estimated else row.date_of_birth.isoformat()
        writer.writerow(
            [ref, row.village.code, "head", row.first_name, row.last_name, row.sex, born, row.national_id, row.phone]
        )
    beneficiary_list = run.list
    name = f"beneficiary-list-{beneficiary_list.pk}-new-households.csv"
    job = ImportJob(original_name=name, mode=ImportMode.GOOD_ROWS, created_by=run.user, status=ImportStatus.VALIDATING)
    job.uploaded_file.save(name, ContentFile(buffer.getvalue().encode("utf-8")), save=False)
    job.save()
    plan = import_validate(job=job)
    # The registry reports by its file's row number: the header is row 1, our rows follow in order.
    row_of_line = {index + 2: row for index, row in enumerate(rows)}
    for error in plan.errors:
        row = row_of_line.get(error["row"])
        if row is None:
            raise ValidationError({"file": [f"The registry refused the new households: {error['problem']}"]})
        key = REGISTRY_COLUMN_FIELD.get(error["field"], error["field"])
        label = run.column(key) if key in run.fields else key
        problem = f"{label}: the registry cannot register this person. {error['problem']}"
        row.state, row.column = R.INVALID, label
        row.reason = f"{row.reason} {problem}" if row.reason and row.reason != problem else problem
    good = plan.good_households()
    households = members = 0
    if good:
        households, members = import_apply(job=job, plan=plan)
    for draft in good:
        row = by_ref[draft.ref]
        _number, head = draft.members[0]
        row.household_id, row.member_id = draft.household.pk, head.pk
        row.district_id = draft.household.district_id
        row.match_method = BeneficiaryMatch.NEW_HOUSEHOLD
    BeneficiaryRow.objects.bulk_update(
        rows,
        ["state", "column", "reason", "household", "member", "district", "match_method"],
        batch_size=ROW_INSERT_BATCH,
    )
    job.total_rows = job.processed_rows = plan.total_rows
    job.errors, job.error_count = plan.errors, len(plan.errors)
    job.duplicates, job.duplicate_count = plan.duplicates, len(plan.duplicates)
    job.households_created, job.members_created = households, members
    job.status = ImportStatus.DONE if good else ImportStatus.REJECTED
    job.message = f"{households:,} households registered from beneficiary list {beneficiary_list.pk} ({beneficiary_list.file_name})."
    job.finished_at = timezone.now()
    job.save()
    return job, households


def _json_sql(placeholder: str) -> str:
    return f"CAST({placeholder} AS jsonb)" if connection.vendor == "postgresql" else placeholder


def _enrol_rows(
    beneficiary_list: BeneficiaryList, *, row_ids: list[int] | None, acting_user, now: datetime.datetime
) -> int:
    """Enrol the pending rows `row_ids` (None: all of the list's) that have a household, set-based;
    returns the enrolments created.

    A household (or, for programmes that serve individuals, a person) already
    in the programme, or named by an earlier row of the list, ends "already
    enrolled"; the database's one-current-enrolment index decides a race. The
    enrolment is active, source import, with the list's amount or the formula's,
    and one event saying from which list and row, by whom.

    The district's capacity and budget are not checked: these people already
    hold their places in the programme (approval checks them for newcomers),
    and refusing them would hide who is served; a list above a ceiling shows in
    the coverage figures.
    """
    programme = beneficiary_list.programme
    individual = programme.target_unit == TargetUnit.INDIVIDUAL
    unit = "member_id" if individual else "household_id"
    pending = BeneficiaryRow.objects.filter(beneficiary_list=beneficiary_list, state=R.PENDING, household__isnull=False)
    if row_ids is not None:
        pending = pending.filter(pk__in=row_ids)
    rows = list(pending.order_by("line").values_list("pk", "line", unit))
    if not rows:
        return 0
    rows_table = BeneficiaryRow._meta.db_table
    enrolment_table = Enrolment._meta.db_table
    row_pks = [pk for pk, _line, _unit in rows]
    marker = connection.ops.adapt_datetimefield_value(now)
    unit_join = "e.member_id = r.member_id" if individual else "e.household_id = r.household_id AND e.member_id IS NULL"

    # Named twice in the list: the first row takes it.
    first_line: dict[int, int] = {}
    repeated: list[BeneficiaryRow] = []
    for pk, line, unit_id in rows:
        earlier = first_line.setdefault(unit_id, line)
        if earlier != line:
            what = "person" if individual else "household"
            repeated.append(
                BeneficiaryRow(
                    pk=pk, state=R.ALREADY_ENROLLED, reason=f"The same {what} as row {earlier} of this list."
                )
            )
    BeneficiaryRow.objects.bulk_update(repeated, ["state", "reason"], batch_size=ROW_INSERT_BATCH)

    created_count = 0
    with connection.cursor() as cursor:
        for start in range(0, len(row_pks), ENROL_BATCH):
            batch = row_pks[start : start + ENROL_BATCH]
            in_batch = ", ".join(["%s"] * len(batch))
            # Already in the programme: the row points at that enrolment.
            cursor.execute(
                f"""
                UPDATE {rows_table} AS r SET state = %s, enrolment_id = e.id,
                    reason = 'Already enrolled in ' || %s || ' (its status: ' || e.status || ').'
                FROM {enrolment_table} e
                WHERE r.id IN ({in_batch}) AND r.state = %s AND e.programme_id = %s
                  AND e.status <> %s AND {unit_join}
                """,  # noqa: S608 - table names from the models, values as parameters
                [R.ALREADY_ENROLLED, programme.name, *batch, R.PENDING, programme.pk, EnrolmentStatus.EXITED],
            )
            account_name = (
                "CASE WHEN am.middle_name = '' THEN am.first_name || ' ' || am.last_name "
                "ELSE am.first_name || ' ' || am.middle_name || ' ' || am.last_name END"
            )
            holder = "r.member_id" if individual else "h.head_id"
            cursor.execute(
                f"""
                INSERT INTO {enrolment_table} (
                    household_id, member_id, programme_id, district_id, status, source, referral_id,
                    external_reference, amount, currency, amount_rule_version_id, channel, account_number,
                    account_name, pay_point, applied_at, applied_by_id, verified_at, verified_by_id, approved_at,
                    approved_by_id, activated_at, suspended_at, suspension_reason, exited_at, exit_reason, exit_note,
                    review_since, review_reason, created_at, updated_at
                )
                SELECT r.household_id, {"r.member_id" if individual else "NULL"}, %s, h.district_id, %s, %s, NULL,
                    r.external_reference, r.amount, %s, NULL, r.channel, r.account_number,
                    COALESCE({account_name}, ''), r.pay_point, %s, %s, NULL, NULL, NULL,
                    NULL, %s, NULL, '', NULL, '', '',
                    NULL, '', %s, %s
                FROM {rows_table} r
                JOIN registry_household h ON h.id = r.household_id
                LEFT JOIN registry_member am ON am.id = {holder}
                WHERE r.id IN ({in_batch}) AND r.state = %s
                ORDER BY r.line
                ON CONFLICT DO NOTHING
                """,  # noqa: S608
                [
                    programme.pk, EnrolmentStatus.ACTIVE, EnrolmentSource.IMPORT, programme.currency,
                    marker, acting_user.pk, marker, marker, marker, *batch, R.PENDING,
                ],
            )  # fmt: skip
            # The enrolments just made (this run's timestamp): their rows are enrolled.
            cursor.execute(
                f"""
                UPDATE {rows_table} AS r SET enrolment_id = e.id,
                    state = CASE WHEN r.match_method = %s THEN %s ELSE %s END
                FROM {enrolment_table} e
                WHERE r.id IN ({in_batch}) AND r.state = %s AND e.programme_id = %s AND e.status <> %s
                  AND e.source = %s AND e.created_at = %s AND {unit_join}
                """,  # noqa: S608
                [
                    BeneficiaryMatch.NEW_HOUSEHOLD, R.NEW_HOUSEHOLD, R.ENROLLED, *batch, R.PENDING, programme.pk,
                    EnrolmentStatus.EXITED, EnrolmentSource.IMPORT, marker,
                ],
            )  # fmt: skip
            # Anything still pending lost a race with another desk: it is enrolled, by them.
            cursor.execute(
                f"""
                UPDATE {rows_table} AS r SET state = %s, enrolment_id = e.id,
                    reason = 'Already enrolled in ' || %s || ' (its status: ' || e.status || ').'
                FROM {enrolment_table} e
                WHERE r.id IN ({in_batch}) AND r.state = %s AND e.programme_id = %s
                  AND e.status <> %s AND {unit_join}
                """,  # noqa: S608
                [R.ALREADY_ENROLLED, programme.name, *batch, R.PENDING, programme.pk, EnrolmentStatus.EXITED],
            )
            # A row repeating an earlier one points at the enrolment the earlier one got.
            cursor.execute(
                f"""
                UPDATE {rows_table} AS r SET enrolment_id = e.id
                FROM {enrolment_table} e
                WHERE r.id IN ({in_batch}) AND r.state = %s AND r.enrolment_id IS NULL AND e.programme_id = %s
                  AND e.status <> %s AND {unit_join}
                """,  # noqa: S608
                [*batch, R.ALREADY_ENROLLED, programme.pk, EnrolmentStatus.EXITED],
            )
            created_count += _after_enrolment(
                cursor, beneficiary_list, batch=batch, acting_user=acting_user, now=now, marker=marker
            )
    return created_count


def _after_enrolment(cursor, beneficiary_list: BeneficiaryList, *, batch: list[int], acting_user, now, marker) -> int:
    """For the enrolments the rows `batch` just got: their events, the formula's amounts, a word on the
    rows whose formula lacks information. Row by row ids, so one officer's decision touches one row."""
    programme = beneficiary_list.programme
    rows_table, enrolment_table = BeneficiaryRow._meta.db_table, Enrolment._meta.db_table
    in_batch = ", ".join(["%s"] * len(batch))
    cursor.execute(
        f"""
        SELECT e.id FROM {rows_table} r JOIN {enrolment_table} e ON e.id = r.enrolment_id
        WHERE r.id IN ({in_batch}) AND r.state IN (%s, %s) AND e.created_at = %s AND e.source = %s
        """,  # noqa: S608
        [*batch, R.ENROLLED, R.NEW_HOUSEHOLD, marker, EnrolmentSource.IMPORT],
    )
    created = [pk for (pk,) in cursor.fetchall()]
    if not created:
        return 0
    # One event per enrolment, in the words of the history: imported from which list and row, by whom.
    cursor.execute(
        f"""
        INSERT INTO {EnrolmentEvent._meta.db_table}
            (enrolment_id, kind, from_status, to_status, actor_id, reason, changes, idempotency_key, cycle_id, at)
        SELECT r.enrolment_id, %s, '', %s, %s,
            'Imported as an existing beneficiary from row ' || r.line || ' of the list ' || %s || ' by ' || %s || '.',
            {_json_sql("%s")}, %s || r.line, NULL, %s
        FROM {rows_table} r JOIN {enrolment_table} e ON e.id = r.enrolment_id
        WHERE r.id IN ({in_batch}) AND r.state IN (%s, %s) AND e.created_at = %s AND e.source = %s
        """,  # noqa: S608
        [
            EnrolmentEventKind.STATUS, EnrolmentStatus.ACTIVE, acting_user.pk,
            f"“{beneficiary_list.file_name}” (list {beneficiary_list.pk})", acting_user.get_username(), "{}",
            f"beneficiary-list-{beneficiary_list.pk}-row-", marker, *batch, R.ENROLLED, R.NEW_HOUSEHOLD, marker,
            EnrolmentSource.IMPORT,
        ],
    )  # fmt: skip
    # The programme's formula for every new enrolment whose row gave no amount.
    query = benefit_amounts_sql(
        programme=programme,
        enrolments=Enrolment.objects.filter(pk__in=created, amount__isnull=True),
        reference_date=now.date(),
    )
    if query is not None:
        sql, params = query
        cursor.execute(
            f"UPDATE {enrolment_table} AS e SET amount = b.amount, amount_rule_version_id = %s "
            f"FROM ({sql}) b WHERE e.id = b.enrolment_id",  # noqa: S608
            [programme.current_version_id, *params],
        )
        # Said on the row, so the officer knows to complete the household before the payroll.
        cursor.execute(
            f"""
            UPDATE {rows_table} AS r SET reason = CASE WHEN r.reason = '' THEN %s ELSE r.reason || ' ' || %s END
            FROM {enrolment_table} e
            WHERE r.id IN ({in_batch}) AND r.enrolment_id = e.id AND e.created_at = %s AND e.amount IS NULL
            """,  # noqa: S608
            [MISSING_AMOUNT, MISSING_AMOUNT, *batch, marker],
        )
    return len(created)


MISSING_AMOUNT = (
    "No amount yet: the programme's formula needs information the household's record lacks; "
    "complete the record before the payroll."
)


def _counts(beneficiary_list: BeneficiaryList) -> dict[str, int]:
    counts = dict.fromkeys(R.values, 0)
    for state, number in (
        BeneficiaryRow.objects.filter(beneficiary_list=beneficiary_list)
        .order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
    ):
        counts[state] = number
    return counts


# How the summary counts each state ("17 enrolled"): words that read for one row and for many.
SUMMARY_WORDS = {
    R.ENROLLED: "enrolled",
    R.NEW_HOUSEHOLD: "registered as new and enrolled",
    R.ALREADY_ENROLLED: "already enrolled",
    R.AMBIGUOUS: "with an uncertain match",
    R.NEEDS_REVIEW: "not found and missing details",
    R.INVALID: "invalid",
    R.REJECTED: "rejected",
    R.PENDING: "not decided",
}


def _done_message(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    parts = [f"{counts[state]:,} {SUMMARY_WORDS[state]}" for state in SUMMARY_WORDS if counts.get(state)]
    waiting = counts.get(R.AMBIGUOUS, 0) + counts.get(R.NEEDS_REVIEW, 0)
    message = f"{total:,} row{'s' if total != 1 else ''}: " + ", ".join(parts) + "."
    if waiting:
        message += f" {waiting:,} wait{'s' if waiting == 1 else ''} for an officer's decision."
    return message


# --- the officer's decision on a row ------------------------------------------------------------


class Decision:
    MATCH = "match"
    NEW_HOUSEHOLD = "new_household"
    REJECT = "reject"
    ALL = ("match", "new_household", "reject")


class _OneRow:
    """What registering and enrolling need of a run, for one row an officer resolves."""

    def __init__(self, beneficiary_list: BeneficiaryList, user):
        self.list = beneficiary_list
        self.user = user
        self.fields = {list_field.key: list_field for list_field in list_fields()}
        self.mapping = beneficiary_list.mapping

    def column(self, key: str) -> str:
        index = self.mapping.get(key)
        if index is not None and index < len(self.list.columns) and self.list.columns[index]:
            return self.list.columns[index]
        return self.fields[key].label if key in self.fields else key


@transaction.atomic
def beneficiary_row_resolve(
    *,
    acting_user,
    row: BeneficiaryRow,
    decision: str,
    member_id: int | None = None,
    sex: str = "",
    date_of_birth: datetime.date | None = None,
    village: Location | None = None,
    reason: str = "",
) -> BeneficiaryRow:
    """An officer's decision on a row waiting for one (ambiguous, or not found with details missing).

    `match`: the row is the registered person `member_id`, one of its
    candidates: enrolled (or already enrolled). `new_household`: nobody listed
    is this person: registered and enrolled; the officer gives what the list
    lacked (sex, date of birth, village). `reject`: not enrolled, with why.
    """
    row = (
        BeneficiaryRow.objects.select_for_update(of=("self",))
        .select_related(
            "beneficiary_list__programme__agency", "beneficiary_list__programme__current_version", "village"
        )
        .get(pk=row.pk)
    )
    beneficiary_list = row.beneficiary_list
    programme = beneficiary_list.programme
    _require_manager(acting_user, programme)
    if not beneficiary_rows_for(acting_user, beneficiary_list).filter(pk=row.pk).exists():
        raise PermissionDenied("This row is outside your districts.")
    if row.state not in BENEFICIARY_REVIEW_STATES:
        raise ValidationError({"decision": [f"Row {row.line} is already decided: {row.get_state_display().lower()}."]})
    if decision not in Decision.ALL:
        raise ValidationError({"decision": ["Choose a registered person, a new household, or reject."]})
    reason = (reason or "").strip()
    now = timezone.now()
    scope = district_ids_for(acting_user)
    coverage = set(ProgrammeDistrict.objects.filter(programme=programme).values_list("district_id", flat=True))
    officer_note = f" Decided by {acting_user.get_username()}" + (f": {reason}" if reason else ".")

    if decision == Decision.REJECT:
        if not reason:
            raise ValidationError({"reason": ["Say why the row is rejected."]})
        row.state, row.reason = R.REJECTED, f"Rejected by {acting_user.get_username()}: {reason}"
    elif decision == Decision.MATCH:
        offered = {candidate["member_id"] for candidate in row.candidates}
        if member_id is None or int(member_id) not in offered:
            raise ValidationError({"member": ["Choose one of the registered people listed for this row."]})
        person = Member.objects.filter(pk=member_id).values_list(*_PERSON_COLUMNS).first()
        if person is None:
            raise ValidationError({"member": ["That person is no longer in the registry."]})
        person = _Person(*person)
        if scope is not None and person.district_id not in scope:
            raise ValidationError({"member": [f"{person.full_name} lives outside your districts."]})
        if person.district_id not in coverage:
            raise ValidationError({"member": [f"{programme.name} does not run where {person.full_name} lives."]})
        gone = _gone(person)
        if gone:
            raise ValidationError({"member": [gone[0].upper() + gone[1:]]})
        row.member_id, row.household_id, row.district_id = person.member_id, person.household_id, person.district_id
        row.match_method, row.state = BeneficiaryMatch.OFFICER, R.PENDING
    else:
        _complete_for_new_household(
            row, sex=sex, date_of_birth=date_of_birth, village=village, scope=scope, coverage=coverage
        )
        row.state, row.reason, row.column = R.PENDING, "", ""
        helper = _OneRow(beneficiary_list, acting_user)
        row.save()
        _register_new_households(helper, [row])
        if row.state == R.INVALID:
            problem = row.reason
            raise ValidationError({"decision": [problem]})
    row.resolved_by, row.resolved_at = acting_user, now
    row.save()
    if row.state == R.PENDING:
        _enrol_rows(beneficiary_list, row_ids=[row.pk], acting_user=acting_user, now=now)
        row.refresh_from_db()
        row.reason = (row.reason + officer_note).strip()
        row.save(update_fields=["reason"])
    BeneficiaryList.objects.filter(pk=beneficiary_list.pk).update(counts=_counts(beneficiary_list), updated_at=now)
    return row


def _complete_for_new_household(
    row: BeneficiaryRow, *, sex: str, date_of_birth, village: Location | None, scope, coverage: set[int]
) -> None:
    errors: dict[str, list[str]] = {}
    if sex:
        if sex not in Sex.values:
            errors["sex"] = ["Choose F or M."]
        else:
            row.sex = sex
    if date_of_birth:
        try:
            row.date_of_birth, row.date_of_birth_estimated = _birth_date(date_of_birth, timezone.localdate())
        except ValueError as problem:
            errors["date_of_birth"] = [str(problem)]
    if village is not None:
        if village.level != LocationLevel.VILLAGE:
            errors["village"] = ["Choose a village."]
        elif scope is not None and village.district_id not in scope:
            errors["village"] = [f"{village.name} is not in one of your districts."]
        elif village.district_id not in coverage:
            errors["village"] = [f"The programme does not run in the district of {village.name}."]
        else:
            row.village, row.district_id, row.village_problem = village, village.district_id, ""
    for key in NEW_HOUSEHOLD_FIELDS:
        if key == "village":
            if row.village_id is None and "village" not in errors:
                errors["village"] = ["Choose the village the household lives in."]
        elif not getattr(row, key) and key not in errors:
            errors[key] = ["The list does not give it: give it to register the household."]
    if errors:
        raise ValidationError(errors)


# --- the report ----------------------------------------------------------------------------------


REPORT_COLUMNS = (
    "row", "state", "column", "reason", "matched_by", "score", "household", "enrolment", "national_id",
    "first_name", "last_name", "date_of_birth", "village", "beneficiary_number", "amount", "decided_by", "decided_at",
)  # fmt: skip


def beneficiary_list_report_csv(*, user, beneficiary_list: BeneficiaryList) -> bytes:
    """Every row of the list the user may see, in the file's order: its state, why, and what it became."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(REPORT_COLUMNS)
    rows = (
        beneficiary_rows_for(user, beneficiary_list)
        .order_by("line")
        .values_list(
            "line",
            "state",
            "column",
            "reason",
            "match_method",
            "score",
            "household__number",
            "enrolment_id",
            "national_id",
            "first_name",
            "last_name",
            "date_of_birth",
            "village__code",
            "external_reference",
            "amount",
            "resolved_by__username",
            "resolved_at",
        )  # fmt: skip
    )
    currency = beneficiary_list.programme.currency
    for (line, state, column, reason, method, score, household, enrolment_id, national_id, first, last, born,
         village, reference, amount, decided_by, decided_at) in rows.iterator(chunk_size=5_000):  # fmt: skip
        writer.writerow(
            [
                line,
                state,
                safe_cell(column),
                safe_cell(reason),
                method,
                "" if score is None else f"{score:.3f}",
                household or "",
                f"E{enrolment_id:08d}" if enrolment_id else "",
                safe_cell(national_id),
                safe_cell(first),
                safe_cell(last),
                born.isoformat() if born else "",
                village or "",
                safe_cell(reference),
                f"{currency} {amount:.2f}" if amount is not None else "",
                decided_by or "",
                timezone.localtime(decided_at).strftime("%Y-%m-%d %H:%M") if decided_at else "",
            ]
        )
    # Excel opens UTF-8 CSV correctly only with the byte-order mark.
    return buffer.getvalue().encode("utf-8-sig")


__all__ = [
    "CANDIDATE_SCORE",
    "Decision",
    "ID_NAME_AGREEMENT",
    "INLINE_ROW_LIMIT",
    "NAME_MATCH_SCORE",
    "beneficiary_list_report_csv",
    "beneficiary_list_run",
    "beneficiary_list_start",
    "beneficiary_list_upload",
    "beneficiary_lists_for",
    "beneficiary_row_resolve",
    "beneficiary_rows_for",
    "guess_mapping",
    "list_fields",
    "may_manage_beneficiary_lists",
    "programmes_for_beneficiary_lists",
]
