"""Bulk import: the template, row-level validation, the two modes, scope, history and the task's guard."""

import csv
import datetime
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.forms.models import model_to_dict
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from registry import imports
from registry.countries import current_country
from registry.imports import import_job_run, import_submit
from registry.models import (
    AttributeDefinition,
    ChangeAction,
    ChangeEntry,
    Household,
    ImportJob,
    ImportMode,
    ImportStatus,
    Member,
)
from registry.services import MemberInput, household_register, refresh_member_keys, validate_member
from registry.tasks import import_run
from registry.tests.factories import make_village
from spf.celery import app as celery_app


@pytest.fixture(autouse=True)
def uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture(autouse=True)
def tasks_run_in_process():
    """These tests run the task in the test's process even when a broker is configured (the worker test uses it)."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


HEADER = [column.name for column in imports._standard_columns()]


def person(ref, village, first, last, *, relationship="other_relative", sex="F", born="1990-01-01", **extra):
    row = {
        "household_ref": ref,
        "village_code": village.code,
        "relationship": relationship,
        "first_name": first,
        "last_name": last,
        "sex": sex,
        "date_of_birth": born,
    }
    row.update(extra)
    return row


def csv_file(rows, *, header=None, name="households.csv") -> SimpleUploadedFile:
    header = header or HEADER
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header)
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return SimpleUploadedFile(name, buffer.getvalue().encode("utf-8"), content_type="text/csv")


def run_import(user, upload, mode=ImportMode.ALL_OR_NOTHING, *, capture) -> ImportJob:
    """Submit as the upload page does; the queued task runs when the transaction commits."""
    with capture(execute=True):
        job = import_submit(acting_user=user, upload=upload, mode=mode)
    job.refresh_from_db()
    return job


def problems_of(job) -> set[tuple[int, str]]:
    return {(error["row"], error["field"]) for error in job.errors}


def two_households(village):
    return [
        person("A", village, "Mary", "Mwansa", relationship="head", national_id="123456/10/1", born="1980-05-17"),
        person("A", village, "Bupe", "Mwansa", relationship="child", born="2012-03-02"),
        person("B", village, "John", "Tembo", relationship="head", sex="M", born="1975", phone="0977 123 456"),
    ]


def test_csv_template_round_trips_into_households(
    client, samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    client.force_login(samfya_officer)
    response = client.get(reverse("imports:template") + "?format=csv")
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    filled = text + "\r\n".join(
        [
            f"H1,{samfya_village.code},By the well,,,,head,Grace,,Banda,,F,1970-02-03,,,,1,1,3,1,1,1,no,,self_employed",
            "H1,,,,,,child,Peter,,Banda,,M,2010,,,,,,,,,,,attending,",
        ]
    )
    upload = SimpleUploadedFile("template.csv", filled.encode("utf-8-sig"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("imports:new"), {"file": upload, "mode": ImportMode.ALL_OR_NOTHING})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response.url == reverse("imports:detail", args=[job.pk])
    job.refresh_from_db()
    assert job.status == ImportStatus.DONE, job.errors
    assert (job.households_created, job.members_created, job.total_rows) == (1, 2, 2)
    household = Household.objects.get()
    assert household.number == "SAM-000001"
    assert household.head.first_name == "Grace"
    assert household.head.disability_walking == 3
    peter = household.members.get(first_name="Peter")
    assert peter.date_of_birth == datetime.date(2010, 7, 1) and peter.date_of_birth_estimated


def test_excel_template_round_trips_into_households(samfya_officer, samfya_village, django_capture_on_commit_callbacks):
    workbook = openpyxl.load_workbook(io.BytesIO(imports.import_template_xlsx(acting_user=samfya_officer)))
    assert workbook.sheetnames == ["Households", "Columns"]
    sheet = workbook["Households"]
    header = [cell.value for cell in sheet[1]]
    assert sheet.cell(row=2, column=1).value.startswith("EXAMPLE")
    explained = {row[0] for row in workbook["Columns"].iter_rows(min_row=2, values_only=True)}
    assert set(header) <= explained
    for values in two_households(samfya_village):
        values["date_of_birth"] = (
            datetime.date.fromisoformat(values["date_of_birth"]) if "-" in values["date_of_birth"] else 1975
        )
        sheet.append([values.get(name) for name in header])
    buffer = io.BytesIO()
    workbook.save(buffer)
    upload = SimpleUploadedFile("filled.xlsx", buffer.getvalue())

    job = run_import(samfya_officer, upload, capture=django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.DONE, job.errors
    assert (job.households_created, job.members_created) == (2, 3)
    assert Member.objects.get(national_id="123456/10/1").household.head.first_name == "Mary"
    assert Member.objects.get(first_name="John").date_of_birth == datetime.date(1975, 7, 1)


def test_every_bad_row_is_reported_with_its_row_number_and_column(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    rows = [
        person("A", samfya_village, "Mary", "Mwansa", relationship="head"),
        person("A", samfya_village, "", "Mwansa", born="31/12/1990"),
        person("B", samfya_village, "John", "Tembo", relationship="chief", sex="X", disability_seeing="7"),
        person("C", samfya_village, "Ann", "Phiri", relationship="head", national_id="12/34", gps_latitude="95"),
    ]
    job = run_import(samfya_officer, csv_file(rows), capture=django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.REJECTED
    assert problems_of(job) == {
        (3, "first_name"),
        (3, "date_of_birth"),
        (4, "relationship"),
        (4, "sex"),
        (4, "disability_seeing"),
        (5, "national_id"),
        (5, "gps_latitude"),
    }
    assert job.error_count == 7, job.errors
    message = next(e["problem"] for e in job.errors if e["field"] == "national_id")
    assert message == "NRC number must look like 123456/10/1."
    assert Household.objects.count() == 0


def test_a_household_without_a_head_is_reported_on_its_first_row(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    rows = [person("A", samfya_village, "Mary", "Mwansa"), person("A", samfya_village, "Bupe", "Mwansa")]
    job = run_import(samfya_officer, csv_file(rows), capture=django_capture_on_commit_callbacks)
    assert job.errors == [{"row": 2, "field": "relationship", "problem": "No member of household A is marked 'head'."}]


def test_all_or_nothing_writes_nothing_when_one_row_is_bad(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    rows = two_households(samfya_village) + [person("C", samfya_village, "Ann", "Phiri", relationship="head", sex="")]
    job = run_import(samfya_officer, csv_file(rows), capture=django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.REJECTED
    assert problems_of(job) == {(5, "sex")}
    assert (Household.objects.count(), Member.objects.count(), ChangeEntry.objects.count()) == (0, 0, 0)


def test_good_rows_writes_the_good_households_and_skips_a_household_with_any_bad_row(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    rows = two_households(samfya_village) + [
        person("C", samfya_village, "Ann", "Phiri", relationship="head"),
        person("C", samfya_village, "Joy", "Phiri", born="2999-01-01"),
    ]
    job = run_import(samfya_officer, csv_file(rows), ImportMode.GOOD_ROWS, capture=django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.DONE
    assert (job.households_created, job.members_created, job.error_count) == (2, 3, 1)
    assert problems_of(job) == {(6, "date_of_birth")}
    assert not Member.objects.filter(last_name="Phiri").exists()
    assert "1 households with a bad row were not written" in job.message


def test_a_village_outside_the_officers_districts_is_an_error_for_that_row(
    samfya_officer, samfya_village, lunga_village, django_capture_on_commit_callbacks
):
    rows = [
        person("A", samfya_village, "Mary", "Mwansa", relationship="head"),
        person("B", lunga_village, "John", "Tembo", relationship="head"),
        {**person("C", samfya_village, "Ann", "Phiri", relationship="head"), "village_code": "NOWHERE"},
    ]
    job = run_import(samfya_officer, csv_file(rows), ImportMode.GOOD_ROWS, capture=django_capture_on_commit_callbacks)
    assert job.errors == [
        {
            "row": 3,
            "field": "village_code",
            "problem": f"Village {lunga_village.code} is in Lunga district, which is not one of your districts.",
        },
        {"row": 4, "field": "village_code", "problem": "No village has the code NOWHERE."},
    ]
    assert list(Household.objects.values_list("number", flat=True)) == ["SAM-000001"]


def test_household_details_that_differ_between_its_rows_are_an_error(
    samfya_officer, samfya, samfya_village, django_capture_on_commit_callbacks
):
    other_village = make_village(samfya, suffix="2")
    rows = [
        person("A", samfya_village, "Mary", "Mwansa", relationship="head"),
        person("A", other_village, "Bupe", "Mwansa"),
        {**person("A", samfya_village, "Joy", "Mwansa"), "village_code": ""},
    ]
    job = run_import(samfya_officer, csv_file(rows), capture=django_capture_on_commit_callbacks)
    assert problems_of(job) == {(3, "village_code")}


def test_a_national_id_twice_in_the_file_is_an_error_on_both_rows(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    rows = [
        person("A", samfya_village, "Mary", "Mwansa", relationship="head", national_id="111111/11/1"),
        person("B", samfya_village, "John", "Tembo", relationship="head", national_id="111111/11/1"),
    ]
    job = run_import(samfya_officer, csv_file(rows), capture=django_capture_on_commit_callbacks)
    assert job.errors == [
        {"row": 2, "field": "national_id", "problem": "NRC number 111111/11/1 is also given on row 3."},
        {"row": 3, "field": "national_id", "problem": "NRC number 111111/11/1 is also given on row 2."},
    ]


def test_a_national_id_already_in_the_registry_is_an_error(
    samfya_officer, lunga_officer, samfya_village, lunga_village, django_capture_on_commit_callbacks
):
    # Registered in another district: invisible to the Samfya officer, still refused.
    household_register(
        acting_user=lunga_officer,
        village=lunga_village,
        members=[
            MemberInput(values={"first_name": "Esther", "last_name": "Zulu", "sex": "F", "national_id": "222222/22/2"})
        ],
    )
    rows = [person("A", samfya_village, "Mary", "Mwansa", relationship="head", national_id="222222/22/2")]
    job = run_import(samfya_officer, csv_file(rows), capture=django_capture_on_commit_callbacks)
    assert job.errors == [
        {"row": 2, "field": "national_id", "problem": "A person with NRC number 222222/22/2 is already registered."}
    ]


def test_a_likely_duplicate_is_flagged_but_does_not_block(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    registered = household_register(
        acting_user=samfya_officer,
        village=samfya_village,
        members=[
            MemberInput(
                values={
                    "first_name": "Mary",
                    "last_name": "Mwansa",
                    "sex": "F",
                    "date_of_birth": datetime.date(1980, 5, 17),
                    "relationship": "head",
                }
            )
        ],
    )
    rows = [
        person("A", samfya_village, "Mary", "Mwanza", relationship="head", born="1980-05-17"),
        person("B", samfya_village, "John", "Tembo", relationship="head", sex="M"),
    ]
    job = run_import(samfya_officer, csv_file(rows), capture=django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.DONE
    assert job.duplicate_count == 1
    flagged = job.duplicates[0]
    assert (flagged["row"], flagged["household_number"], flagged["member"]) == (2, registered.number, "Mary Mwansa")
    assert flagged["score"] >= 0.75 and "same date of birth" in flagged["reasons"]


def test_the_set_based_duplicate_check_finds_what_the_per_person_check_finds(
    samfya_officer, samfya_village, samfya, settings
):
    household_register(
        acting_user=samfya_officer,
        village=samfya_village,
        members=[
            MemberInput(
                values={
                    "first_name": "Mary",
                    "last_name": "Mwansa",
                    "sex": "F",
                    "date_of_birth": datetime.date(1980, 5, 17),
                    "relationship": "head",
                }
            ),
            MemberInput(
                values={
                    "first_name": "Chileshe",
                    "last_name": "Bwalya",
                    "sex": "M",
                    "date_of_birth": datetime.date(1971, 1, 1),
                }
            ),
        ],
    )
    rows = [
        person("A", samfya_village, "Mary", "Mwanza", relationship="head", born="1980-06-01"),
        person("A", samfya_village, "Chireshe", "Bwalya", sex="M", born="1971"),
        person("B", samfya_village, "John", "Tembo", relationship="head", sex="M"),
    ]
    job = ImportJob.objects.create(original_name="x.csv", created_by=samfya_officer, uploaded_file=csv_file(rows))
    plan = imports.import_validate(job=job)
    per_person = imports._likely_duplicates(plan, user=samfya_officer, per_person_limit=100)
    set_based = imports._likely_duplicates(plan, user=samfya_officer, per_person_limit=0)
    assert [(d["row"], d["member_id"], d["score"]) for d in per_person] == [
        (d["row"], d["member_id"], d["score"]) for d in set_based
    ]
    assert {d["row"] for d in set_based} == {2, 3}


def test_every_created_household_and_member_has_an_import_history_entry(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    job = run_import(
        samfya_officer, csv_file(two_households(samfya_village)), capture=django_capture_on_commit_callbacks
    )
    entries = ChangeEntry.objects.filter(import_job=job, action=ChangeAction.IMPORT, actor=samfya_officer)
    assert set(entries.filter(entity="household").values_list("household_id", flat=True)) == set(
        Household.objects.values_list("pk", flat=True)
    )
    assert set(entries.filter(entity="member").values_list("member_id", flat=True)) == set(
        Member.objects.values_list("pk", flat=True)
    )
    assert entries.count() == 5
    mary = entries.get(member__first_name="Mary")
    assert mary.changes["national_id"] == [None, "123456/10/1"] and "row 2" in mary.note


def test_household_numbers_are_given_per_district_and_the_head_is_set(
    ministry_user, samfya_village, lunga_village, django_capture_on_commit_callbacks
):
    rows = two_households(samfya_village) + [person("L", lunga_village, "Esther", "Zulu", relationship="head")]
    job = run_import(ministry_user, csv_file(rows), capture=django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.DONE
    assert sorted(Household.objects.values_list("number", flat=True)) == ["LUN-000001", "SAM-000001", "SAM-000002"]
    assert all(household.head.relationship == "head" for household in Household.objects.select_related("head"))


def test_running_the_task_twice_creates_nothing_twice(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    job = run_import(
        samfya_officer, csv_file(two_households(samfya_village)), capture=django_capture_on_commit_callbacks
    )
    assert job.status == ImportStatus.DONE
    assert import_run.delay(job.pk).get() == "skipped: not pending"
    assert import_job_run(job_id=job.pk) is None
    assert (Household.objects.count(), Member.objects.count()) == (2, 3)


def test_a_crash_while_writing_leaves_nothing_and_the_job_failed(
    samfya_officer, samfya_village, monkeypatch, django_capture_on_commit_callbacks
):
    def history_writer_crashes(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(imports, "_write_history", history_writer_crashes)
    job = run_import(
        samfya_officer, csv_file(two_households(samfya_village)), capture=django_capture_on_commit_callbacks
    )
    assert job.status == ImportStatus.FAILED
    assert "nothing was written: disk full" in job.message
    assert (Household.objects.count(), Member.objects.count(), ChangeEntry.objects.count()) == (0, 0, 0)


def test_unknown_and_missing_columns_are_reported_at_once(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    header = [name for name in HEADER if name != "sex"] + ["favourite_colour"]
    rows = [{name: value for name, value in row.items() if name != "sex"} for row in two_households(samfya_village)]
    job = run_import(samfya_officer, csv_file(rows, header=header), capture=django_capture_on_commit_callbacks)
    assert job.status == ImportStatus.REJECTED
    assert problems_of(job) == {(1, "favourite_colour"), (1, "sex")}


def test_attribute_columns_are_in_the_template_and_checked(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    AttributeDefinition.objects.create(
        entity="household", key="roof", label="Roof", type="choice", allowed_values=["iron", "thatch"]
    )
    AttributeDefinition.objects.create(entity="member", key="orphan", label="Orphan", type="boolean")
    assert {"household.roof", "member.orphan"} <= {column.name for column in imports.import_template_columns()}
    header = HEADER + ["household.roof", "member.orphan"]
    rows = [
        {
            **person("A", samfya_village, "Mary", "Mwansa", relationship="head"),
            "household.roof": "iron",
            "member.orphan": "no",
        },
        {
            **person("B", samfya_village, "John", "Tembo", relationship="head"),
            "household.roof": "gold",
            "member.orphan": "maybe",
        },
    ]
    job = run_import(
        samfya_officer, csv_file(rows, header=header), ImportMode.GOOD_ROWS, capture=django_capture_on_commit_callbacks
    )
    assert problems_of(job) == {(3, "household.roof"), (3, "member.orphan")}
    household = Household.objects.get()
    assert household.attributes == {"roof": "iron"}
    assert household.head.attributes == {"orphan": False}


def test_a_committee_member_may_not_import(committee_samfya, client):
    with pytest.raises(PermissionDenied):
        import_submit(acting_user=committee_samfya, upload=csv_file([]), mode=ImportMode.GOOD_ROWS)
    client.force_login(committee_samfya)
    assert client.get(reverse("imports:new")).status_code == 403
    assert client.get(reverse("imports:list")).status_code == 403


def test_an_officer_sees_only_their_own_jobs_and_ministry_sees_all(
    client, samfya_officer, lunga_officer, ministry_user, samfya_village, django_capture_on_commit_callbacks
):
    job = run_import(
        samfya_officer, csv_file(two_households(samfya_village)), capture=django_capture_on_commit_callbacks
    )
    client.force_login(lunga_officer)
    for name, args in (("detail", [job.pk]), ("progress", [job.pk]), ("report", [job.pk, "errors"])):
        assert client.get(reverse(f"imports:{name}", args=args)).status_code == 404
    assert job.original_name not in client.get(reverse("imports:list")).content.decode()
    client.force_login(ministry_user)
    assert client.get(reverse("imports:detail", args=[job.pk])).status_code == 200
    client.force_login(samfya_officer)
    assert job.original_name in client.get(reverse("imports:list")).content.decode()


def test_the_progress_endpoint_and_the_reports(
    client, samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    household_register(
        acting_user=samfya_officer,
        village=samfya_village,
        members=[
            MemberInput(
                values={
                    "first_name": "Mary",
                    "last_name": "Mwansa",
                    "sex": "F",
                    "date_of_birth": datetime.date(1980, 5, 17),
                }
            )
        ],
    )
    rows = two_households(samfya_village) + [person("C", samfya_village, "=cmd", "Phiri", relationship="head", sex="")]
    job = run_import(samfya_officer, csv_file(rows), ImportMode.GOOD_ROWS, capture=django_capture_on_commit_callbacks)
    client.force_login(samfya_officer)
    progress = client.get(reverse("imports:progress", args=[job.pk])).json()
    assert progress["status"] == "done" and progress["finished"] and progress["percent"] == 100
    assert (progress["households_created"], progress["error_count"], progress["duplicate_count"]) == (2, 1, 1)

    errors = client.get(reverse("imports:report", args=[job.pk, "errors"]))
    assert errors["Content-Type"].startswith("text/csv")
    assert list(csv.reader(io.StringIO(errors.content.decode())))[1][:2] == ["5", "sex"]
    duplicates = list(
        csv.reader(io.StringIO(client.get(reverse("imports:report", args=[job.pk, "duplicates"])).content.decode()))
    )
    assert duplicates[1][:4] == ["2", "Mary Mwansa", "Mary Mwansa", "SAM-000001"]
    from spf.models import ExportKind, PersonalDataExport

    assert list(PersonalDataExport.objects.order_by("pk").values_list("kind", "file_name", "rows")) == [
        (ExportKind.IMPORT_REPORT, f"import-{job.pk}-errors.csv", 1),
        (ExportKind.IMPORT_REPORT, f"import-{job.pk}-duplicates.csv", 1),
    ]
    page = client.get(reverse("imports:detail", args=[job.pk])).content.decode()
    assert "imports.js" in page and "SAM-000001" in page


def test_the_upload_page_offers_both_templates_and_explains_the_columns(client, samfya_officer, samfya_village):
    client.force_login(samfya_officer)
    page = client.get(reverse("imports:new")).content.decode()
    assert "?format=xlsx" in page and "?format=csv" in page and "household_ref" in page
    excel = client.get(reverse("imports:template") + "?format=xlsx")
    assert excel["Content-Type"].startswith("application/vnd.openxmlformats")
    refused = client.post(reverse("imports:new"), {"file": csv_file([], name="list.pdf"), "mode": ImportMode.GOOD_ROWS})
    assert (
        refused.status_code == 200 and "Upload the filled template as a .csv or .xlsx file." in refused.content.decode()
    )
    assert not ImportJob.objects.exists()


# --- the fast checks agree with the registry's own --------------------------------------------------


def _reference_member_check(values: dict) -> tuple[dict, dict]:
    """What the registry does to one member: refresh_member_keys, then validate_member (national ID left to the import)."""
    exclude = values.pop("_exclude", ())
    member = Member(**values)
    refresh_member_keys(member)
    keys = {name: getattr(member, name) for name in imports.MEMBER_DRAFT_FIELDS}
    member.national_id = None
    try:
        validate_member(member, exclude=exclude)
    except ValidationError as problem:
        return keys, problem.message_dict
    return keys, {}


def _fast_member_check(values: dict, check=None) -> tuple[dict, dict]:
    exclude = values.pop("_exclude", ())
    check = check or imports.MemberRowCheck(country=current_country(), today=timezone.localdate())
    row = {**check.defaults, **values}
    check.refresh_keys(row)
    keys = {name: row[name] for name in imports.MEMBER_DRAFT_FIELDS}
    row["national_id"] = None
    return keys, check.problems(row, exclude=exclude)


GOOD_MEMBER = {
    "first_name": "Mary",
    "last_name": "Mwansa",
    "sex": "F",
    "relationship": "head",
    "date_of_birth": datetime.date(1980, 5, 17),
}
TODAY = datetime.date.today()
MEMBER_CASES = [
    {},
    {"first_name": "  José  ", "middle_name": "Chileshe  Bwalya", "other_names": "Mwanza, Mwansa;Chireshe/ Phiri"},
    {"first_name": "Ñoño", "last_name": "Müller-Kapata", "phone": " +260 977 123 456 ", "national_id": " 123456/10/1 "},
    {"first_name": ""},
    {"first_name": "   "},
    {"last_name": ""},
    {"first_name": "x" * 81},
    {"middle_name": "y" * 81, "other_names": "z" * 256},
    {"first_name": "", "last_name": "l" * 90, "sex": ""},
    {"sex": "X"},
    {"relationship": ""},
    {"relationship": "chief"},
    {"school_attendance": "attending", "work_status": "student", "chronic_illness": True},
    {"school_attendance": "sometimes", "work_status": "astronaut"},
    {"disability_seeing": 1, "disability_hearing": 2, "disability_walking": 3, "disability_cognition": 4},
    {"disability_self_care": 0, "disability_communication": 7},
    {"date_of_birth": TODAY + datetime.timedelta(days=1)},
    {"date_of_birth": datetime.date(TODAY.year - 126, 1, 1)},
    {"date_of_birth": None, "date_of_birth_estimated": True},
    {"date_of_birth": datetime.date(1975, 7, 1), "date_of_birth_estimated": True},
    {"phone": "0" * 33},
    {"chronic_illness": False, "attributes": {"orphan": True, "roof": "iron"}},
    {"status_date": TODAY + datetime.timedelta(days=3)},
    {"sex": "X", "first_name": "", "_exclude": ("sex",)},
    {"date_of_birth": TODAY + datetime.timedelta(days=1), "_exclude": ("date_of_birth",)},
]


@pytest.mark.parametrize("case", MEMBER_CASES, ids=[str(index) for index in range(len(MEMBER_CASES))])
def test_the_import_member_check_gives_the_registrys_values_and_words(case):
    assert _fast_member_check({**GOOD_MEMBER, **case}) == _reference_member_check({**GOOD_MEMBER, **case})


def test_the_import_member_check_still_agrees_once_it_remembers_values():
    # One check for a whole file: the second time round every value has been seen, and
    # rows that passed are recognised; a bad row with a good row's codes must still fail.
    check = imports.MemberRowCheck(country=current_country(), today=timezone.localdate())
    for _round in range(2):
        for case in MEMBER_CASES:
            values = {**GOOD_MEMBER, **case}
            assert _fast_member_check(dict(values), check) == _reference_member_check(dict(values)), case
    assert check.fields.passed and check.fields.known


def test_the_member_case_table_has_bad_values_the_registry_refuses():
    # A table of only good values would make the agreement above prove nothing.
    refused = [case for case in MEMBER_CASES if _reference_member_check({**GOOD_MEMBER, **case})[1]]
    assert len(refused) >= 15


SHARED_CHECK = [imports.MemberRowCheck(country=current_country(), today=timezone.localdate())]
NAME_TEXT = st.text(alphabet="abcxyz ÉéñÑçß-',;/  \t", max_size=90)


@hypothesis_settings(max_examples=100, deadline=None)
@given(
    first=NAME_TEXT,
    middle=NAME_TEXT,
    last=NAME_TEXT,
    other=st.text(alphabet="abc ,Éy", max_size=260),
    sex=st.sampled_from(["F", "M", "", "X"]),
    relationship=st.sampled_from(["head", "child", "", "boss"]),
    degree=st.sampled_from([None, 0, 1, 4, 5]),
    born=st.one_of(st.none(), st.dates(min_value=datetime.date(1850, 1, 1), max_value=datetime.date(2100, 1, 1))),
    estimated=st.booleans(),
    phone=st.text(alphabet="0123456789 +", max_size=40),
)
def test_the_import_member_check_agrees_with_the_registry_on_random_members(
    first, middle, last, other, sex, relationship, degree, born, estimated, phone
):
    values = {
        "first_name": first,
        "middle_name": middle,
        "last_name": last,
        "other_names": other,
        "sex": sex,
        "relationship": relationship,
        "disability_walking": degree,
        "date_of_birth": born,
        "date_of_birth_estimated": estimated,
        "phone": phone,
    }
    # One check across the examples, as across the rows of a file: what it remembers is tried too.
    assert _fast_member_check(dict(values), SHARED_CHECK[0]) == _reference_member_check(dict(values))


HOUSEHOLD_CASES = [
    {},
    {"address": "a" * 255, "phone": "0977 123 456"},
    {"address": "a" * 256},
    {"phone": "1" * 33},
    {"gps_latitude": Decimal("-11.350000"), "gps_longitude": Decimal("29.550000")},
    {"gps_latitude": Decimal("123.1234567")},
    {"gps_longitude": Decimal("12345.5")},
    {"attributes": {"roof": "iron"}},
]


@pytest.mark.parametrize("case", HOUSEHOLD_CASES, ids=[str(index) for index in range(len(HOUSEHOLD_CASES))])
def test_the_import_household_check_gives_full_cleans_words(case):
    household = Household(registration_date=TODAY, **case)
    fast = imports.FieldChecks(Household, skip=imports.HOUSEHOLD_CHECK_SKIP).problems(household.__dict__)
    try:
        household.full_clean(exclude=list(imports.HOUSEHOLD_CHECK_SKIP), validate_constraints=False)
    except ValidationError as problem:
        assert fast == problem.message_dict
    else:
        assert fast == {}


# --- the PostgreSQL writer writes what bulk_create writes ------------------------------------------


def _written(job: ImportJob) -> dict:
    """Everything an import wrote, keyed by what the file says (the ids and numbers differ between two imports)."""
    head_ref = {}
    households = {}
    for entry in ChangeEntry.objects.filter(import_job=job, entity="household"):
        ref = entry.note.rsplit(" ", 1)[1]
        household = Household.objects.get(pk=entry.household_id)
        values = model_to_dict(household, exclude=["id", "number", "head"])
        values["head"] = household.head.full_name
        households[ref] = (values, entry.changes | {"head": entry.changes["head"][1]["label"]}, entry.actor_id)
        head_ref[household.pk] = ref
    members = {}
    for entry in ChangeEntry.objects.filter(import_job=job, entity="member").select_related("member"):
        row = entry.note.rsplit(" ", 1)[1]
        member = entry.member
        values = model_to_dict(member, exclude=["id", "household"])
        values.update(search_name=member.search_name, name_keys=member.name_keys, phone_key=member.phone_key)
        members[row] = (head_ref[member.household_id], values, entry.changes, entry.entity_id == member.pk)
    return {"households": households, "members": members}


@pytest.mark.postgres
def test_the_copy_writer_writes_exactly_what_bulk_create_writes(samfya_officer, samfya_village, monkeypatch):
    # Small chunks, so COPY reads each table in several pieces, as it does a real file.
    monkeypatch.setattr("spf.bulk_copy.COPY_CHUNK_CHARACTERS", 100)
    AttributeDefinition.objects.create(entity="household", key="roof", label="Roof", type="text")
    AttributeDefinition.objects.create(entity="member", key="orphan", label="Orphan", type="boolean")
    header = HEADER + ["household.roof", "member.orphan"]
    rows = lambda national_id: [  # noqa: E731 - the same file twice, but for the national ID
        person(
            "A",
            samfya_village,
            "Mary",
            "Mwansa",
            relationship="head",
            national_id=national_id,
            address='Plot 5, "near" the\tclinic \\ back\nof the market',
            household_phone="+260 977 000 111",
            gps_latitude="-11.3512345",
            gps_longitude="29.55",
            other_names="Chileshe, Mwanza",
            middle_name="Bupe",
            phone="0966 123 456",
            date_of_birth_estimated="yes",
            chronic_illness="yes",
            school_attendance="completed",
            work_status="self_employed",
            **{f"disability_{domain}": str(1 + index % 4) for index, domain in enumerate(imports.DISABILITY_DOMAINS)},
            **{"household.roof": 'iron, \\N "sheets"', "member.orphan": "no"},
        ),
        person("A", samfya_village, "José", "Mwansa", relationship="child", born="2015", chronic_illness="no"),
        person("B", samfya_village, "John", "Tembo", relationship="head", sex="M", born="", **{"member.orphan": "yes"}),
        person("A", samfya_village, "\\.", "Mwansa", born="1999-12-31"),
    ]
    written = []
    for copy, national_id in ((True, "123456/10/1"), (False, "654321/10/1")):
        job = ImportJob.objects.create(
            original_name="rich.csv",
            created_by=samfya_officer,
            uploaded_file=csv_file(rows(national_id), header=header),
        )
        plan = imports.import_validate(job=job)
        assert not plan.errors
        with transaction.atomic():
            assert imports._apply(job, plan, copy=copy) == (2, 4)
        written.append(_written(job))
    by_copy, by_bulk_create = written
    for member in by_bulk_create["members"].values():
        if member[1]["national_id"]:
            member[1]["national_id"] = member[2]["national_id"][1] = "123456/10/1"
    assert by_copy == by_bulk_create
    assert by_copy["households"]["A"][0]["address"] == 'Plot 5, "near" the\tclinic \\ back\nof the market'
    assert by_copy["households"]["A"][0]["attributes"] == {"roof": 'iron, \\N "sheets"'}
    assert by_copy["members"]["2"][2]["disability_seeing"] == [None, 1]
    assert len(by_copy["members"]) == 4 and all(entry[3] for entry in by_copy["members"].values())


def test_the_set_based_duplicate_check_agrees_with_the_front_desks_on_a_random_district(samfya, samfya_officer):
    """Every couple the front desk's check scores at the threshold or above, and no other, with the same score.

    Names from a few spellings of a few names, dates of birth days, weeks, a
    year or decades apart (or unknown), three villages: the cases where the
    set-based check leaves out couples before scoring their names.
    """
    import random
    from types import SimpleNamespace

    from registry.selectors import DUPLICATES_SHOWN, member_duplicate_candidates
    from registry.services import DUPLICATE_CONFIRM_SCORE
    from registry.tests.factories import HouseholdFactory, MemberFactory

    rng = random.Random(2026)
    villages = [make_village(samfya, str(n)) for n in range(1, 4)]
    firsts = ["Mary", "Mery", "Chileshe", "Chireshe", "Bupe", "Grace"]
    lasts = ["Mwansa", "Mwanza", "Bwalya", "Bwarya", "Tembo"]
    base = datetime.date(1980, 1, 31)

    def born():
        if rng.random() < 0.15:
            return None
        return base + datetime.timedelta(
            days=rng.choice([-40, 0, 1, 20, 29, 31, 32, 45, 62, 200, 400, 1000, 1050, 1200, 5000])
        )

    for _ in range(120):
        village = rng.choice(villages)
        MemberFactory(
            household=HouseholdFactory(village=village, district=samfya),
            first_name=rng.choice(firsts),
            last_name=rng.choice(lasts),
            date_of_birth=born(),
        )
    people = []
    for number in range(2, 62):
        first, last = rng.choice(firsts), rng.choice(lasts)
        village = rng.choice(villages)
        member = SimpleNamespace(
            first_name=first,
            middle_name="",
            last_name=last,
            other_names="",
            full_name=f"{first} {last}",
            date_of_birth=born(),
        )
        people.append((number, member, SimpleNamespace(district_id=samfya.pk, village_id=village.pk, village=village)))

    expected, beyond_the_shown = set(), 0
    for number, member, household in people:
        asked = dict(
            acting_user=samfya_officer,
            first_name=member.first_name,
            last_name=member.last_name,
            date_of_birth=member.date_of_birth,
            village=household.village,
        )
        for candidate in member_duplicate_candidates(**asked):
            if candidate.score >= DUPLICATE_CONFIRM_SCORE:
                expected.add((number, candidate.member.pk, round(candidate.score, 2)))
        every = member_duplicate_candidates(**asked, limit=10_000)
        beyond_the_shown += sum(c.score >= DUPLICATE_CONFIRM_SCORE for c in every[DUPLICATES_SHOWN:])
    found = {
        (d["row"], d["member_id"], d["score"]) for d in imports._duplicates_by_sound_keys(people, user=samfya_officer)
    }

    assert len(expected) > 30 and beyond_the_shown > 0  # the draw gives couples of every kind, and rows with many
    assert found == expected


def test_a_name_reaches_the_confirmation_score_only_with_a_close_birth_or_the_same_village():
    # The set-based duplicate check leaves out, before comparing names, couples born more than a month
    # apart in different villages and couples born more than three years apart: these weights decide it.
    from registry.selectors import duplicate_score
    from registry.services import DUPLICATE_CONFIRM_SCORE as confirm

    within_a_month, within_a_year, within_three_years, unknown, further = 0.85, 0.65, 0.35, 0.5, 0.0
    assert duplicate_score(name=1.0, birth=within_a_month, same_village=False) >= confirm
    assert duplicate_score(name=1.0, birth=within_a_year, same_village=False) < confirm
    assert duplicate_score(name=1.0, birth=unknown, same_village=False) < confirm
    assert duplicate_score(name=1.0, birth=within_three_years, same_village=True) >= confirm
    assert duplicate_score(name=1.0, birth=unknown, same_village=True) >= confirm
    assert duplicate_score(name=1.0, birth=further, same_village=True) < confirm


def test_past_the_report_limit_the_job_keeps_the_first_duplicates_counts_them_all_and_says_so(
    samfya_officer, samfya_village, client, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(imports, "DUPLICATE_REPORT_LIMIT", 1)
    monkeypatch.setattr("registry.import_views.REPORT_PREVIEW_ROWS", 1)
    for first, last in (("Mary", "Mwansa"), ("John", "Tembo")):
        household_register(
            acting_user=samfya_officer,
            village=samfya_village,
            members=[
                MemberInput(
                    values={
                        "first_name": first,
                        "last_name": last,
                        "sex": "F",
                        "date_of_birth": datetime.date(1980, 5, 17),
                        "relationship": "head",
                    }
                )
            ],
        )
    rows = [
        person("A", samfya_village, "Mary", "Mwanza", relationship="head", born="1980-05-17"),
        person("B", samfya_village, "John", "Tembo", relationship="head", born="1980-05-17"),
    ]
    job = run_import(samfya_officer, csv_file(rows), capture=django_capture_on_commit_callbacks)

    assert job.duplicate_count == 2
    assert [entry["row"] for entry in job.duplicates] == [2]
    client.force_login(samfya_officer)
    page = client.get(reverse("imports:detail", args=[job.pk])).content.decode()
    assert "the download has the first 1:" in page
    assert "check whether the file was imported before" in page
