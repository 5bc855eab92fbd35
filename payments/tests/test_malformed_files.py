# ruff: noqa: F811 - the reconciliation tests' fixtures (cycle, programme) are imported and used by name
"""Malformed files at the two payment upload paths, beneficiary lists and reconciliation files: refused
with a message naming the file and the problem (page and API), and nothing written: no list, no row,
no reconciliation, no payment changed. The checks are the registry's (registry/uploads.py)."""

import csv
import io
import os

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from payments.beneficiaries import beneficiary_list_report_csv, beneficiary_list_upload
from payments.models import BeneficiaryList, BeneficiaryRow, Payment, PaymentStatus, Reconciliation
from payments.reconciliation import reconciliation_import, reconciliation_upload_content
from registry.tests import bad_files

from .test_beneficiaries import HEADER as LIST_HEADER
from .test_beneficiaries import csv_upload, register, run_list
from .test_reconciliation import HEADER, PAID_AT, cycle, paid, programme, provider_file, references  # noqa: F401

CSV_FORMULAS = ('=HYPERLINK("http://evil.example/","Click")', "+cmd|' /C calc'!A0", "-1+1", "@SUM(A1)")


@pytest.fixture(autouse=True)
def uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def nothing_listed():
    return not BeneficiaryList.objects.exists() and not BeneficiaryRow.objects.exists()


def payments_untouched(cycle):
    return (
        not Reconciliation.objects.exists()
        and not cycle.payments.exclude(status=PaymentStatus.PENDING).exists()
        and not cycle.payments.filter(paid_at__isnull=False).exists()
    )


def list_refusal(maker, programme, upload) -> str:
    with pytest.raises(ValidationError) as refusal:
        beneficiary_list_upload(acting_user=maker, programme=programme, upload=upload)
    assert nothing_listed()
    return " ".join(refusal.value.message_dict["file"])


def reconciliation_refusal(maker, cycle, name, content) -> str:
    with pytest.raises(ValidationError) as refusal:
        reconciliation_import(acting_user=maker, cycle=cycle, file_name=name, content=content)
    assert payments_untouched(cycle)
    return " ".join(refusal.value.message_dict["file"])


def sparse_upload(tmp_path, name: str, size: int) -> UploadedFile:
    path = tmp_path / name
    with open(path, "wb") as handle:
        handle.truncate(size)  # costs no disk and no time
    return UploadedFile(open(path, "rb"), name=name, size=os.path.getsize(path))  # noqa: SIM115 - closed by Django


# --- beneficiary lists -----------------------------------------------------------------------------


def test_a_list_in_utf8_with_a_byte_order_mark_is_read(samfya_officer, samfya_village, maker, programme):
    household = register(samfya_officer, samfya_village, "Zoë", "Mwansa", national_id="111111/11/1")
    text = (
        ",".join(LIST_HEADER)
        + f"\r\n111111/11/1,Zoë,Mwansa,F,1970-01-01,{samfya_village.code},S1,mobile,0977000001\r\n"
    )

    beneficiary_list = run_list(maker, programme, SimpleUploadedFile("list.csv", text.encode("utf-8-sig")))

    assert beneficiary_list.rows.get(line=2).household == household


def test_a_latin1_list_is_refused_naming_the_line(maker, programme):
    text = ",".join(LIST_HEADER) + "\r\n111111/11/1,Mary,Mwansa,F,,,,,\r\n222222/22/2,Zoë,Banda,F,,,,,\r\n"

    problem = list_refusal(maker, programme, SimpleUploadedFile("list.csv", text.encode("latin-1")))

    assert "list.csv is not UTF-8 text: line 3" in problem and "CSV UTF-8" in problem


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (lambda: bad_files.zip_bomb_xlsx([LIST_HEADER, ["111111/11/1"]]), "zip bomb"),
        (lambda: bad_files.declare_size(bad_files.workbook_bytes([LIST_HEADER]), bad_files.SHEET, 3 << 30), "inflate"),
        (lambda: bad_files.billion_laughs_xlsx([LIST_HEADER, ["111111/11/1"]]), "declares XML entities"),
        (lambda: bad_files.workbook_bytes([LIST_HEADER, ["=1+1"]]), "cell A2 of sheet 'Sheet'"),
        (lambda: b"NRC,Name\n111111/11/1,Mary\n", "looks like a text (CSV) file"),
    ],
)
def test_a_workbook_that_would_blow_up_or_lose_data_is_refused(maker, programme, content, words):
    assert words in list_refusal(maker, programme, SimpleUploadedFile("list.xlsx", content()))


def test_a_100_mb_list_is_refused_naming_the_limit_without_being_read(maker, programme, tmp_path):
    upload = sparse_upload(tmp_path, "list.csv", 100 * 1024 * 1024)

    problem = list_refusal(maker, programme, upload)

    assert "list.csv is 100 MB; files of at most 64 MB are accepted" in problem
    assert upload.file.tell() == 0  # not a byte read


def test_the_upload_page_shows_why_a_list_was_refused(client, maker, programme):
    client.force_login(maker)
    text = ",".join(LIST_HEADER) + "\r\n111111/11/1,Zoë,Banda,F,,,,,\r\n"

    response = client.post(
        reverse("beneficiary_lists:upload"),
        {"programme": programme.pk, "file": SimpleUploadedFile("list.csv", text.encode("cp1252"))},
    )

    assert response.status_code == 400
    assert "list.csv is not UTF-8 text: line 2" in response.content.decode()
    assert nothing_listed()


def test_names_that_look_like_formulas_are_kept_but_never_run_in_the_report(maker, programme, samfya_village):
    rows = [
        ["", text, "Mwansa", "F", "1970-01-01", samfya_village.code, reference, "mobile money", "0977000001"]
        for text, reference in zip(CSV_FORMULAS, ("=1+1", "+1", "-1", "@1"), strict=True)
    ]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))

    assert set(beneficiary_list.rows.values_list("first_name", flat=True)) == set(CSV_FORMULAS)
    report = list(
        csv.reader(io.StringIO(beneficiary_list_report_csv(user=maker, beneficiary_list=beneficiary_list).decode()))
    )
    assert len(report) == 5
    for row in report:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert {row[9] for row in report[1:]} == {"'" + text for text in CSV_FORMULAS}


# --- reconciliation files ------------------------------------------------------------------------


def test_a_latin1_provider_file_is_refused_and_nothing_applied(cycle, maker):
    content = provider_file([paid(references(cycle)[0], transaction="Réf-1")]).decode().encode("latin-1")

    problem = reconciliation_refusal(maker, cycle, "nov.csv", content)

    assert "nov.csv is not UTF-8 text: line 2" in problem


def test_a_utf16_provider_file_is_read(cycle, maker):
    content = provider_file([paid(references(cycle)[0])], delimiter="\t").decode().encode("utf-16")

    reconciliation = reconciliation_import(acting_user=maker, cycle=cycle, file_name="nov.csv", content=content)

    assert reconciliation.rows_applied == 1


def test_every_missing_column_is_named(cycle, maker):
    content = provider_file([(references(cycle)[0],)], header=("reference",))

    problem = reconciliation_refusal(maker, cycle, "nov.csv", content)

    assert "no status, amount, paid_at columns" in problem


def test_an_empty_or_header_only_file_is_refused(cycle, maker):
    assert "has no reference, status, amount, paid_at columns" in reconciliation_refusal(maker, cycle, "nov.csv", b"")
    assert "has a header but no rows" in reconciliation_refusal(maker, cycle, "nov.csv", provider_file([]))


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("nov.csv", lambda: bad_files.workbook_bytes([list(HEADER)]), None),  # a workbook named .csv is read
        ("nov.csv", lambda: b"%PDF-1.4\n", "looks like a PDF document"),
        ("nov.xlsx", lambda: bad_files.zip_bomb_xlsx([list(HEADER)]), "zip bomb"),
        ("nov.xlsx", lambda: bad_files.billion_laughs_xlsx([list(HEADER)]), "declares XML entities"),
        ("nov.csv", lambda: provider_file([]) + b'"' + b"x" * 200_000 + b'"\r\n', "cannot be read as CSV at line 2"),
    ],
)
def test_a_damaged_or_malicious_provider_file_is_refused(cycle, maker, name, content, words):
    if words is None:  # the provider's Excel export, whatever its name: read as the workbook it is
        assert "header but no rows" in reconciliation_refusal(maker, cycle, name, content())
        return
    assert words in reconciliation_refusal(maker, cycle, name, content())


def test_a_100_mb_provider_file_is_refused_before_it_is_read(tmp_path):
    upload = sparse_upload(tmp_path, "nov.csv", 100 * 1024 * 1024)

    with pytest.raises(ValidationError) as refusal:
        reconciliation_upload_content(upload)

    assert "nov.csv is 100 MB; files of at most 64 MB are accepted" in refusal.value.message_dict["file"][0]
    assert upload.file.tell() == 0


def test_the_api_refuses_a_100_mb_upload_from_its_content_length(cycle, maker):
    client = APIClient()
    client.force_authenticate(maker)

    response = client.post(
        f"/api/v1/payment-cycles/{cycle.pk}/reconcile/",
        {"file": SimpleUploadedFile("nov.csv", provider_file([paid(references(cycle)[0])]))},
        format="multipart",
        CONTENT_LENGTH=str(100 * 1024 * 1024),
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert list(error["fields"]) == ["file"]
    assert "The upload is 100 MB; files of at most 64 MB are accepted" in error["message"]
    assert payments_untouched(cycle)


def test_the_api_names_the_encoding_problem_in_the_error_shape(cycle, maker):
    client = APIClient()
    client.force_authenticate(maker)
    content = provider_file([paid(references(cycle)[0], transaction="Réf-1")]).decode().encode("cp1252")

    response = client.post(
        f"/api/v1/payment-cycles/{cycle.pk}/reconcile/",
        {"file": SimpleUploadedFile("nov.csv", content)},
        format="multipart",
    )

    assert response.status_code == 400
    assert "nov.csv is not UTF-8 text: line 2" in response.json()["error"]["fields"]["file"][0]
    assert payments_untouched(cycle)


def test_the_cycle_page_shows_why_a_provider_file_was_refused(client, cycle, maker):
    client.force_login(maker)

    response = client.post(
        reverse("payments:cycle-reconcile", args=[cycle.pk]),
        {"file": SimpleUploadedFile("nov.xlsx", bad_files.billion_laughs_xlsx([list(HEADER)]))},
    )

    assert response.status_code == 400
    assert "nov.xlsx is not a readable Excel workbook" in response.content.decode()
    assert payments_untouched(cycle)


def test_provider_cells_that_look_like_formulas_never_run_in_the_report(cycle, maker):
    from payments.reconciliation import reconciliation_report_csv

    rows = [(text, "paid", "1", PAID_AT, text) for text in CSV_FORMULAS]
    rows.append(("\t=1+1", "paid", "1", PAID_AT, "\r=1+1"))
    reconciliation = reconciliation_import(
        acting_user=maker, cycle=cycle, file_name="nov.csv", content=provider_file(rows)
    )

    report = list(csv.reader(io.StringIO(reconciliation_report_csv(reconciliation=reconciliation).decode())))
    for row in report:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert Payment.objects.filter(status=PaymentStatus.PAID).count() == 0
