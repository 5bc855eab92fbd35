"""The beneficiary-list pages: upload, mapping, the result, the rows, the review queue, the report, and who may see them."""

import datetime
import re

import pytest
from django.urls import reverse

from payments.models import BeneficiaryList, BeneficiaryListStatus, BeneficiaryRow, BeneficiaryRowState

from .test_beneficiaries import csv_upload, register

S = BeneficiaryRowState


@pytest.fixture(autouse=True)
def uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def _upload(client, programme, rows, **kwargs):
    response = client.post(
        reverse("beneficiary_lists:upload"), {"programme": programme.pk, "file": csv_upload(rows, **kwargs)}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    return BeneficiaryList.objects.latest("pk"), response


def _confirm(client, beneficiary_list, **changes):
    data = {key: "" if index is None else str(index) for key, index in beneficiary_list.mapping.items()}
    data.update({"payment_channel_default": "", "pay_point_default": ""})
    data.update(changes)
    return client.post(reverse("beneficiary_lists:mapping", args=[beneficiary_list.pk]), data)


def test_an_officer_uploads_maps_and_sees_the_result(client, samfya_officer, samfya_village, maker, programme):
    register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    client.force_login(maker)
    rows = [
        ["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-1", "mobile", "0977000001"],
        ["", "Kondwani", "Lungu", "", "", samfya_village.code, "SCT-6", "mobile", "0977000006"],
    ]
    beneficiary_list, response = _upload(client, programme, rows)
    assert response["Location"] == reverse("beneficiary_lists:mapping", args=[beneficiary_list.pk])

    page = client.get(response["Location"]).content.decode()
    # The sample and the guessed mapping are shown.
    assert "Kondwani" in page
    assert re.search(r'<option value="0" selected>NRC</option>', page)

    response = _confirm(client, beneficiary_list)
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Done" in page and "Download the report (CSV)" in page
    assert "Review 1 row" in page

    rows_page = client.get(reverse("beneficiary_lists:rows", args=[beneficiary_list.pk]), {"state": "enrolled"})
    assert "Mary Mwansa" in rows_page.content.decode() and "Kondwani" not in rows_page.content.decode()

    report = client.get(reverse("beneficiary_lists:report", args=[beneficiary_list.pk]))
    assert report["Content-Type"].startswith("text/csv")
    assert "needs_review" in report.content.decode("utf-8-sig")
    from spf.models import ExportKind, PersonalDataExport

    assert PersonalDataExport.objects.filter(
        kind=ExportKind.BENEFICIARY_LIST_REPORT, file_name=f"beneficiary-list-{beneficiary_list.pk}-report.csv"
    ).exists()


def test_a_mapping_problem_is_shown_beside_the_field(client, maker, programme):
    client.force_login(maker)
    beneficiary_list, _ = _upload(client, programme, [["x", "Mary"]], header=["Comment", "Remarks"])
    response = _confirm(client, beneficiary_list, first_name="1")
    assert response.status_code == 400
    page = response.content.decode()
    assert "Map the surname column too." in page
    beneficiary_list.refresh_from_db()
    assert beneficiary_list.status == BeneficiaryListStatus.UPLOADED


def test_uploading_the_same_file_again_says_nothing_changed(client, samfya_officer, samfya_village, maker, programme):
    client.force_login(maker)
    rows = [["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-1", "mobile", "0977000001"]]
    beneficiary_list, _ = _upload(client, programme, rows)
    _confirm(client, beneficiary_list)
    _again, response = _upload(client, programme, rows)
    assert response["Location"] == reverse("beneficiary_lists:detail", args=[beneficiary_list.pk])
    page = client.get(response["Location"]).content.decode()
    assert "already uploaded" in page and "nothing was changed" in page
    assert BeneficiaryList.objects.count() == 1


def test_the_officer_decides_a_row_on_the_review_page(client, samfya_officer, samfya_village, maker, programme):
    first = register(samfya_officer, samfya_village, "Bupe", "Phiri", born=datetime.date(1990, 1, 1))
    register(samfya_officer, samfya_village, "Bupe", "Phiri", born=datetime.date(1990, 1, 3))
    client.force_login(maker)
    rows = [["", "Bupe", "Phiri", "F", "1990-01-02", samfya_village.code, "SCT-4", "mobile", "0977000004"]]
    beneficiary_list, _ = _upload(client, programme, rows)
    _confirm(client, beneficiary_list)
    row = BeneficiaryRow.objects.get(beneficiary_list=beneficiary_list)
    review = reverse("beneficiary_lists:review", args=[beneficiary_list.pk])
    page = client.get(review).content.decode()
    assert "This is Bupe Phiri" in page and first.number in page

    resolve = reverse("beneficiary_lists:resolve", args=[beneficiary_list.pk, row.pk])
    # Rejecting needs a reason: the page comes back with the problem beside the field.
    response = client.post(resolve, {f"row-{row.pk}-choice": "reject"})
    assert response.status_code == 400
    assert "Say why the row is rejected." in response.content.decode()

    response = client.post(resolve, {f"row-{row.pk}-choice": f"member-{first.head_id}", f"row-{row.pk}-reason": ""})
    assert response.status_code == 302
    row.refresh_from_db()
    assert (row.state, row.household) == (S.ENROLLED, first)
    assert "Nothing waits for an officer" in client.get(review).content.decode()


def test_another_districts_window_sees_no_rows_of_the_list(
    client, samfya_officer, lunga_officer, samfya_village, maker, programme
):
    client.force_login(maker)
    rows = [["", "Kondwani", "Lungu", "", "", samfya_village.code, "SCT-6", "mobile", "0977000006"]]
    beneficiary_list, _ = _upload(client, programme, rows)
    _confirm(client, beneficiary_list)
    row = BeneficiaryRow.objects.get(beneficiary_list=beneficiary_list)

    client.force_login(lunga_officer)
    page = client.get(reverse("beneficiary_lists:review", args=[beneficiary_list.pk])).content.decode()
    assert "Kondwani" not in page
    assert "Kondwani" not in client.get(reverse("beneficiary_lists:rows", args=[beneficiary_list.pk])).content.decode()
    response = client.post(
        reverse("beneficiary_lists:resolve", args=[beneficiary_list.pk, row.pk]),
        {f"row-{row.pk}-choice": "reject", f"row-{row.pk}-reason": "no"},
    )
    assert response.status_code == 404


def test_only_the_uploader_reads_the_first_rows_of_a_list_not_yet_mapped(
    client, samfya_officer, lunga_officer, samfya_village, maker, programme, ministry_user
):
    client.force_login(maker)
    rows = [["222222/22/2", "Kondwani", "Lungu", "", "", samfya_village.code, "SCT-6", "mobile", "0977000006"]]
    beneficiary_list, _ = _upload(client, programme, rows)
    mapping = reverse("beneficiary_lists:mapping", args=[beneficiary_list.pk])
    detail = reverse("beneficiary_lists:detail", args=[beneficiary_list.pk])
    assert "Kondwani" in client.get(mapping).content.decode()
    assert "Map the columns" in client.get(detail).content.decode()

    # The rows are in no district yet: a window officer of either district must not read them.
    for officer in (lunga_officer, samfya_officer):
        client.force_login(officer)
        assert "Map the columns" not in client.get(detail).content.decode()
        response = client.get(mapping)
        assert response.status_code == 403 and "Kondwani" not in response.content.decode()
        assert _confirm(client, beneficiary_list).status_code == 403
    beneficiary_list.refresh_from_db()
    assert beneficiary_list.status == BeneficiaryListStatus.UPLOADED
    client.force_login(ministry_user)
    assert "Kondwani" in client.get(mapping).content.decode()


def test_another_agencys_officer_cannot_open_the_list(client, samfya, lunga, samfya_village, maker, programme):
    from .makers import make_agency, make_officer

    other = make_officer(make_agency("MOH"), [samfya, lunga], name="officer")
    client.force_login(maker)
    beneficiary_list, _ = _upload(client, programme, [["111111/11/1", "Mary", "Mwansa"]])
    client.force_login(other)
    assert client.get(reverse("beneficiary_lists:detail", args=[beneficiary_list.pk])).status_code == 404
    assert client.get(reverse("beneficiary_lists:report", args=[beneficiary_list.pk])).status_code == 404


def test_a_committee_member_has_no_lists_page(client, committee_samfya, programme):
    client.force_login(committee_samfya)
    assert client.get(reverse("beneficiary_lists:lists")).status_code == 403
    assert client.get(reverse("beneficiary_lists:upload")).status_code == 403


def test_the_progress_endpoint_reports_the_run(client, samfya_village, maker, programme):
    client.force_login(maker)
    beneficiary_list, _ = _upload(client, programme, [["111111/11/1", "Mary", "Mwansa"]])
    progress = client.get(reverse("beneficiary_lists:progress", args=[beneficiary_list.pk])).json()
    assert progress["status"] == "uploaded" and progress["finished"] is True


def test_the_lists_page_shows_the_lists_and_what_waits(client, samfya_officer, samfya_village, maker, programme):
    client.force_login(maker)
    rows = [["", "Kondwani", "Lungu", "", "", samfya_village.code, "SCT-6", "mobile", "0977000006"]]
    beneficiary_list, _ = _upload(client, programme, rows, name="october.csv")
    _confirm(client, beneficiary_list)
    page = client.get(reverse("beneficiary_lists:lists")).content.decode()
    assert "october.csv" in page and reverse("beneficiary_lists:review", args=[beneficiary_list.pk]) in page


def test_a_file_that_cannot_be_read_is_refused_beside_the_file_field(client, maker, programme):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(maker)
    response = client.post(
        reverse("beneficiary_lists:upload"),
        {"programme": programme.pk, "file": SimpleUploadedFile("list.xlsx", b"not a workbook")},
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert re.search(r'class="field has-error[^"]*">\s*<label for="id_file">', page)
    assert "not a readable Excel workbook" in page
    assert not BeneficiaryList.objects.exists()
