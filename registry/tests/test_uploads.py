"""Malformed files at the household import: each is refused with a message that names the file (or the
column, or the row) and the problem, on the upload page or in the job, and nothing is written.

The checks themselves are registry/uploads.py, shared with beneficiary lists and reconciliation files
(payments/tests/test_malformed_files.py)."""

import csv
import io
import os
import re
import zipfile

import openpyxl
import pytest
from defusedxml.common import EntitiesForbidden
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.urls import reverse
from openpyxl.utils import get_column_letter

from registry import uploads
from registry.imports import import_error_report_csv, import_submit
from registry.models import Household, ImportMode, ImportStatus, Member
from registry.tests import bad_files
from registry.tests.test_imports import (  # noqa: F401 - the fixtures are used by name
    HEADER,
    csv_file,
    person,
    run_import,
    tasks_run_in_process,
    two_households,
    uploads_in_tmp,
)

FIRST_NAME = get_column_letter(HEADER.index("first_name") + 1)


def csv_bytes(rows: list[dict], *, header=None) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header or HEADER)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def xlsx_of(village, rows: list[dict] | None = None) -> list[list]:
    rows = rows if rows is not None else two_households(village)
    return [HEADER] + [[row.get(name, "") for name in HEADER] for row in rows]


def nothing_written():
    return not Household.objects.exists() and not Member.objects.exists()


def refused(job) -> str:
    """The job's one file problem, once it is rejected with nothing written."""
    assert job.status == ImportStatus.REJECTED, (job.status, job.errors)
    assert nothing_written()
    assert (job.households_created, job.members_created) == (0, 0)
    assert [error["field"] for error in job.errors] == ["file"], job.errors
    return job.errors[0]["problem"]


# --- encodings ---------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig"])
def test_utf8_with_or_without_a_byte_order_mark_is_read(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks, encoding
):
    rows = two_households(samfya_village)
    rows[0]["first_name"] = "Chisenga-Mulenga Zoë"
    text = csv_bytes(rows).decode()
    upload = SimpleUploadedFile("households.csv", text.encode(encoding))

    job = run_import(samfya_officer, upload, capture=django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.DONE, job.errors
    assert Member.objects.filter(first_name="Chisenga-Mulenga Zoë").exists()


def test_excel_unicode_text_utf16_with_tabs_is_read(samfya_officer, samfya_village, django_capture_on_commit_callbacks):
    rows = two_households(samfya_village)
    text = "\r\n".join("\t".join(row) for row in [HEADER, *([r.get(c, "") for c in HEADER] for r in rows)])
    upload = SimpleUploadedFile("households.csv", text.encode("utf-16"))

    job = run_import(samfya_officer, upload, capture=django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.DONE, job.errors
    assert job.members_created == 3


def test_latin1_with_accents_is_refused_naming_the_line_and_the_encoding(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    rows = two_households(samfya_village)
    rows[1]["first_name"] = "Zoë"
    upload = SimpleUploadedFile("households.csv", csv_bytes(rows).decode().encode("latin-1"))

    job = run_import(samfya_officer, upload, capture=django_capture_on_commit_callbacks)

    problem = refused(job)
    assert "households.csv is not UTF-8" in problem
    assert "line 3" in problem
    assert "CSV UTF-8" in problem


def test_utf16_without_its_byte_order_mark_is_refused_as_not_text(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    upload = SimpleUploadedFile(
        "households.csv", csv_bytes(two_households(samfya_village)).decode().encode("utf-16-le")
    )

    with pytest.raises(ValidationError) as refusal:
        run_import(samfya_officer, upload, capture=django_capture_on_commit_callbacks)

    assert "households.csv is not text" in str(refusal.value)
    assert nothing_written()


# --- columns -----------------------------------------------------------------------------------


def test_missing_columns_are_each_named(samfya_officer, samfya_village, django_capture_on_commit_callbacks):
    header = [name for name in HEADER if name not in ("first_name", "sex")]
    rows = [{k: v for k, v in row.items() if k in header} for row in two_households(samfya_village)]

    job = run_import(samfya_officer, csv_file(rows, header=header), capture=django_capture_on_commit_callbacks)

    assert job.status == ImportStatus.REJECTED and nothing_written()
    missing = {error["field"] for error in job.errors if error["problem"].startswith("Missing column")}
    assert missing == {"first_name", "sex"}


def test_an_unknown_or_repeated_column_stops_the_import(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    rows = two_households(samfya_village)
    text = csv_bytes(rows, header=[*HEADER, "favourite_colour"]).decode()
    text = text.replace("favourite_colour", "favourite_colour,last_name", 1)

    job = run_import(
        samfya_officer,
        SimpleUploadedFile("households.csv", text.encode()),
        capture=django_capture_on_commit_callbacks,
    )

    assert job.status == ImportStatus.REJECTED and nothing_written()
    assert {(error["row"], error["field"]) for error in job.errors} == {(1, "favourite_colour"), (1, "last_name")}


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\r\n\r\n"])
def test_an_empty_file_writes_nothing_and_says_so(samfya_officer, django_capture_on_commit_callbacks, content):
    job = run_import(
        samfya_officer, SimpleUploadedFile("households.csv", content), capture=django_capture_on_commit_callbacks
    )

    assert job.status == ImportStatus.REJECTED and nothing_written()
    assert "first row must name the columns" in job.errors[0]["problem"]


# --- not what the name says ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("households.csv", bad_files.workbook_bytes([["a"]]), "looks like an Excel workbook"),
        ("households.csv", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "looks like a PDF document"),
        ("households.csv", b"\x89PNG\r\n\x1a\n\x00\x00", "looks like a PNG picture"),
        ("households.xlsx", b"household_ref,village_code\nH1,SAM-W1-V1\n", "looks like a text (CSV) file"),
        ("households.xlsx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "old .xls workbook"),
    ],
)
def test_a_file_that_is_not_what_its_name_says_is_refused_on_the_upload_page(
    client, samfya_officer, name, content, words
):
    client.force_login(samfya_officer)

    response = client.post(
        reverse("imports:new"), {"file": SimpleUploadedFile(name, content), "mode": ImportMode.ALL_OR_NOTHING}
    )

    assert response.status_code == 200  # the form again, with the message
    assert words in response.content.decode()
    assert name in response.content.decode()
    assert not Household.objects.exists()


def test_a_zip_of_something_else_named_xlsx_is_refused(samfya_officer, django_capture_on_commit_callbacks):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("content.xml", "<office:document/>")

    job = run_import(
        samfya_officer,
        SimpleUploadedFile("households.xlsx", buffer.getvalue()),
        capture=django_capture_on_commit_callbacks,
    )

    assert "zip file of something else" in refused(job)


def test_a_damaged_zip_named_xlsx_is_refused(samfya_officer, django_capture_on_commit_callbacks):
    job = run_import(
        samfya_officer,
        SimpleUploadedFile("households.xlsx", b"PK\x03\x04 and then nothing of a zip"),
        capture=django_capture_on_commit_callbacks,
    )

    assert "households.xlsx is not a readable Excel workbook (the file is damaged" in refused(job)


# --- size ----------------------------------------------------------------------------------------


def test_a_100_mb_file_is_refused_naming_the_limit_without_being_read(samfya_officer, tmp_path):
    path = tmp_path / "households.csv"
    with open(path, "wb") as handle:
        handle.truncate(100 * 1024 * 1024)  # sparse: a 100 MB file that costs no disk or time
    reads = []

    class Watched(io.FileIO):
        def read(self, size=-1):
            reads.append(size)
            return super().read(size)

    upload = UploadedFile(Watched(path), name="households.csv", size=os.path.getsize(path))

    with pytest.raises(ValidationError) as refusal:
        import_submit(acting_user=samfya_officer, upload=upload, mode=ImportMode.ALL_OR_NOTHING)

    message = str(refusal.value)
    assert "households.csv is 100 MB" in message and "at most 64 MB" in message
    assert sum(size for size in reads if size > 0) <= 512  # at most a peek at its first bytes
    assert not Household.objects.exists()


def test_the_upload_page_names_the_limit(client, samfya_officer, settings):
    settings.SPREADSHEET_UPLOAD_MAX_BYTES = 1024 * 1024
    client.force_login(samfya_officer)
    big = SimpleUploadedFile("households.csv", b"household_ref\n" + b"H1\n" * 600_000)

    response = client.post(reverse("imports:new"), {"file": big, "mode": ImportMode.ALL_OR_NOTHING})

    assert "households.csv is 2 MB; files of at most 1 MB are accepted" in response.content.decode()


# --- zip bombs and entity expansion ----------------------------------------------------------


def refuse_openpyxl(monkeypatch):
    """openpyxl must not even open a workbook the checks refuse."""

    def never(*args, **kwargs):
        raise AssertionError("openpyxl opened a file that should have been refused first")

    monkeypatch.setattr(uploads.openpyxl, "load_workbook", never)


def test_a_zip_bomb_is_refused_before_openpyxl_inflates_it(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks, monkeypatch
):
    bomb = bad_files.zip_bomb_xlsx(xlsx_of(samfya_village), inflated_mb=16)
    assert len(bomb) < 64 * 1024  # kilobytes…
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:
        assert archive.getinfo(bad_files.SHEET).file_size > 16 * 1024 * 1024  # …that really inflate to megabytes
    refuse_openpyxl(monkeypatch)

    job = run_import(
        samfya_officer, SimpleUploadedFile("households.xlsx", bomb), capture=django_capture_on_commit_callbacks
    )

    problem = refused(job)
    assert "households.xlsx" in problem and "zip bomb" in problem


def test_a_workbook_that_says_it_inflates_to_gigabytes_is_refused_naming_the_limit(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks, monkeypatch
):
    lying = bad_files.declare_size(bad_files.workbook_bytes(xlsx_of(samfya_village)), bad_files.SHEET, 3_900_000_000)
    refuse_openpyxl(monkeypatch)

    job = run_import(
        samfya_officer, SimpleUploadedFile("households.xlsx", lying), capture=django_capture_on_commit_callbacks
    )

    assert "would inflate to 3,719 MB when opened, more than the 1,024 MB" in refused(job)


def test_billion_laughs_is_refused(samfya_officer, samfya_village, django_capture_on_commit_callbacks, monkeypatch):
    laughs = bad_files.billion_laughs_xlsx(xlsx_of(samfya_village))
    refuse_openpyxl(monkeypatch)

    job = run_import(
        samfya_officer, SimpleUploadedFile("households.xlsx", laughs), capture=django_capture_on_commit_callbacks
    )

    assert "declares XML entities" in refused(job)


def test_openpyxl_parses_with_defusedxml_behind_our_own_check(samfya_village, monkeypatch):
    # The second line of defence: with the DOCTYPE check switched off, openpyxl's parser (defusedxml)
    # still refuses the entities, and the file is refused rather than expanded.
    assert openpyxl.DEFUSEDXML is True
    monkeypatch.setattr(uploads, "DOCTYPE", re.compile(rb"(?!)"))

    with pytest.raises(uploads.UploadRefused) as refusal:
        workbook = uploads.open_workbook(bad_files.billion_laughs_xlsx(xlsx_of(samfya_village)), file_name="l.xlsx")
        list(uploads.read_rows_safely(workbook.worksheets[0].iter_rows(values_only=True), file_name="l.xlsx"))

    causes = []
    cause = refusal.value
    while cause is not None:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    assert any(isinstance(c, EntitiesForbidden) for c in causes)


# --- formulas --------------------------------------------------------------------------------------


def test_a_formula_cell_counts_as_the_value_the_spreadsheet_saved(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    content = bad_files.workbook_bytes(xlsx_of(samfya_village))
    # first_name of row 2 is =PROPER("grace"), saved by the spreadsheet with its result, Grace.
    cell = f"{FIRST_NAME}2"
    content = bad_files.with_cell_xml(content, cell, f'<c r="{cell}" t="str"><f>PROPER("grace")</f><v>Grace</v></c>')

    job = run_import(
        samfya_officer, SimpleUploadedFile("households.xlsx", content), capture=django_capture_on_commit_callbacks
    )

    assert job.status == ImportStatus.DONE, job.errors
    assert Member.objects.filter(first_name="Grace").exists()


def test_a_formula_saved_without_its_result_is_refused_naming_the_cell(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    rows = xlsx_of(samfya_village)
    rows[2][HEADER.index("first_name")] = '=PROPER("bupe")'  # openpyxl writes the formula, never its result

    job = run_import(
        samfya_officer,
        SimpleUploadedFile("households.xlsx", bad_files.workbook_bytes(rows, title="Households")),
        capture=django_capture_on_commit_callbacks,
    )

    problem = refused(job)
    assert f"cell {FIRST_NAME}3 of sheet 'Households'" in problem and "never calculated" in problem


@pytest.mark.parametrize(
    "text", ['=HYPERLINK("http://evil.example/","Click")', "+cmd|' /C calc'!A0", "-1+1", "@SUM(A1)"]
)
def test_a_csv_cell_that_looks_like_a_formula_is_text_and_never_a_formula_in_the_error_report(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks, text
):
    rows = two_households(samfya_village)
    rows[0]["address"] = text  # any text is an address
    rows[1]["date_of_birth"] = text  # not a date: reported, quoting the cell

    job = run_import(
        samfya_officer,
        SimpleUploadedFile("households.csv", csv_bytes(rows)),
        capture=django_capture_on_commit_callbacks,
    )

    assert job.status == ImportStatus.REJECTED and nothing_written()
    report = list(csv.reader(io.StringIO(import_error_report_csv(job=job))))
    assert [row[1] for row in report[1:]] == ["date_of_birth"]
    assert text in report[1][2]
    for row in report:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell


def test_formula_text_is_kept_as_data_when_it_is_valid(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    rows = two_households(samfya_village)
    rows[0]["address"] = '=HYPERLINK("http://evil.example/","Click")'

    job = run_import(
        samfya_officer,
        SimpleUploadedFile("households.csv", csv_bytes(rows)),
        capture=django_capture_on_commit_callbacks,
    )

    assert job.status == ImportStatus.DONE, job.errors
    assert Household.objects.filter(address='=HYPERLINK("http://evil.example/","Click")').exists()


# --- a file that breaks off half-way ------------------------------------------------------------


def test_a_csv_field_past_the_csv_modules_limit_is_refused_naming_the_line(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    rows = two_households(samfya_village)
    text = csv_bytes(rows).decode() + '"' + "x" * 200_000 + '",\n'

    job = run_import(
        samfya_officer, SimpleUploadedFile("households.csv", text.encode()), capture=django_capture_on_commit_callbacks
    )

    problem = refused(job)
    assert "households.csv cannot be read as CSV at line 5" in problem
    assert "field larger than field limit" in problem


def test_a_workbook_with_damaged_sheet_xml_is_refused_not_half_read(
    samfya_officer, samfya_village, django_capture_on_commit_callbacks
):
    content = bad_files.workbook_bytes(xlsx_of(samfya_village), title="Households")
    sheet = bad_files.part_text(content, bad_files.SHEET)
    damaged = sheet.replace('<row r="3"', '<row r="3"><c r="A3"><broken', 1)

    job = run_import(
        samfya_officer,
        SimpleUploadedFile("households.xlsx", bad_files.replace_part(content, bad_files.SHEET, damaged.encode())),
        mode=ImportMode.GOOD_ROWS,
        capture=django_capture_on_commit_callbacks,
    )

    assert "households.xlsx is not a readable Excel workbook" in refused(job)
