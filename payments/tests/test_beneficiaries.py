"""Programmes' beneficiary lists: upload, mapping, matching, the states rows end in, the officer's review,
re-upload, a crash, scope and the report."""

import csv
import datetime
import io
from decimal import Decimal

import openpyxl
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

from payments import beneficiaries
from payments.beneficiaries import (
    Decision,
    beneficiary_list_report_csv,
    beneficiary_list_run,
    beneficiary_list_start,
    beneficiary_list_upload,
    beneficiary_row_resolve,
    beneficiary_rows_for,
    guess_mapping,
)
from payments.models import (
    BeneficiaryList,
    BeneficiaryListStatus,
    BeneficiaryMatch,
    BeneficiaryRow,
    BeneficiaryRowState,
    Enrolment,
    EnrolmentSource,
    EnrolmentStatus,
    PaymentChannel,
)
from registry.models import ChangeEntry, Household, ImportJob, Member, MemberStatus, Relationship
from registry.services import MemberInput, household_register
from registry.tests.factories import make_village
from spf.celery import app as celery_app

from .makers import enrol_active

S = BeneficiaryRowState

HEADER = ["NRC", "First name", "Surname", "Sex", "DOB", "Village", "Beneficiary No", "Channel", "Wallet"]


@pytest.fixture(autouse=True)
def uploads_in_tmp(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def tasks_run_in_process():
    """The queued job runs in the test's process even when a broker is configured."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


def register(officer, village, first, last, *, national_id=None, born=datetime.date(1970, 1, 1), sex="F", others=()):
    members = [
        MemberInput(
            values={
                "first_name": first,
                "last_name": last,
                "sex": sex,
                "relationship": Relationship.HEAD,
                "date_of_birth": born,
                "national_id": national_id,
            }
        )
    ]
    for other in others:
        members.append(MemberInput(values={"relationship": Relationship.CHILD, "sex": "M", **other}))
    return household_register(acting_user=officer, village=village, members=members, duplicates_confirmed=True)


def csv_upload(rows, *, header=HEADER, name="sct-list.csv") -> SimpleUploadedFile:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return SimpleUploadedFile(name, buffer.getvalue().encode("utf-8"), content_type="text/csv")


def run_list(user, programme, upload, *, mapping=None, defaults=None):
    """Upload, confirm the guessed mapping (or the one given), run; the list as it ends."""
    beneficiary_list, created = beneficiary_list_upload(acting_user=user, programme=programme, upload=upload)
    assert created
    return beneficiary_list_start(
        acting_user=user,
        beneficiary_list=beneficiary_list,
        mapping=mapping if mapping is not None else beneficiary_list.mapping,
        payment_defaults=defaults or {"payment_channel": "", "pay_point": ""},
    )


def row_at(beneficiary_list, line) -> BeneficiaryRow:
    return BeneficiaryRow.objects.get(beneficiary_list=beneficiary_list, line=line)


def test_the_mapping_is_guessed_from_the_file_headers():
    columns = ["S/N", "NRC No.", "Name", "Surname", "Gender", "Date of Birth", "Village Code", "Amount (ZMW)", "Mobile"]
    mapping = guess_mapping(columns)
    assert mapping == {
        "national_id": 1,
        "first_name": 2,
        "last_name": 3,
        "sex": 4,
        "date_of_birth": 5,
        "village": 6,
        "amount": 7,
        "phone": 8,
    }
    assert guess_mapping(["Beneficiary Name", "ID Number"]) == {"full_name": 0, "national_id": 1}


def test_each_row_ends_in_the_state_it_should(samfya_officer, samfya_village, maker, checker, programme):
    by_id = register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    by_name = register(samfya_officer, samfya_village, "Chilufya", "Banda", born=datetime.date(1980, 5, 17))
    enrolled = register(samfya_officer, samfya_village, "Grace", "Tembo", national_id="333333/33/1")
    enrol_active(household=enrolled, programme=programme, maker=maker, checker=checker)
    # Two people who could both be "Bupe Phiri" of the list: an officer chooses.
    register(samfya_officer, samfya_village, "Bupe", "Phiri", born=datetime.date(1990, 1, 1))
    register(samfya_officer, samfya_village, "Bupe", "Phiri", born=datetime.date(1990, 1, 3))
    code = samfya_village.code
    rows = [
        ["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", code, "SCT-1", "mobile money", "0977000001"],  # 2
        ["", "Chilufya", "Banda", "F", "17/05/1980", code, "SCT-2", "mobile money", "0977000002"],  # 3 by name
        ["333333/33/1", "Grace", "Tembo", "F", "1970-01-01", code, "SCT-3", "mobile money", "0977000003"],  # 4
        ["", "Bupe", "Phiri", "F", "1990-01-02", code, "SCT-4", "mobile money", "0977000004"],  # 5 ambiguous
        ["444444/44/1", "Natasha", "Zulu", "F", "1985", code, "SCT-5", "mobile money", "0977000005"],  # 6 new
        ["", "Kondwani", "Lungu", "", "", code, "SCT-6", "mobile money", "0977000006"],  # 7 needs review
        ["", "Mutale", "Kasonde", "F", "31/02/1980", code, "SCT-7", "mobile money", "0977000007"],  # 8 bad date
    ]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))

    assert beneficiary_list.status == BeneficiaryListStatus.DONE, beneficiary_list.message
    states = dict(BeneficiaryRow.objects.filter(beneficiary_list=beneficiary_list).values_list("line", "state"))
    assert states == {
        2: S.ENROLLED,
        3: S.ENROLLED,
        4: S.ALREADY_ENROLLED,
        5: S.AMBIGUOUS,
        6: S.NEW_HOUSEHOLD,
        7: S.NEEDS_REVIEW,
        8: S.INVALID,
    }
    assert row_at(beneficiary_list, 2).household == by_id
    assert row_at(beneficiary_list, 2).match_method == BeneficiaryMatch.NATIONAL_ID
    named = row_at(beneficiary_list, 3)
    assert (named.household, named.match_method) == (by_name, BeneficiaryMatch.NAME)
    assert named.score >= beneficiaries.NAME_MATCH_SCORE
    assert row_at(beneficiary_list, 4).enrolment.household == enrolled
    ambiguous = row_at(beneficiary_list, 5)
    assert len(ambiguous.candidates) == 2 and ambiguous.enrolment is None
    assert "2 registered people" in ambiguous.reason
    new = row_at(beneficiary_list, 6)
    assert new.household.members.get().national_id == "444444/44/1"
    assert new.household.members.get().date_of_birth_estimated
    review = row_at(beneficiary_list, 7)
    assert "Sex" in review.reason and "DOB" in review.reason
    invalid = row_at(beneficiary_list, 8)
    assert invalid.column == "DOB" and "'31/02/1980' is not a date" in invalid.reason
    assert beneficiary_list.counts[S.ENROLLED] == 2
    assert beneficiary_list.enrolments_created == 3
    assert beneficiary_list.households_created == 1


def test_imported_enrolments_are_active_with_an_event_naming_the_list_and_the_officer(
    samfya_officer, samfya_village, maker, programme
):
    household = register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    rows = [["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-9", "mobile", "0977123456"]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows, name="mcdss-sct.csv"))

    enrolment = Enrolment.objects.get(household=household, programme=programme)
    assert (enrolment.status, enrolment.source) == (EnrolmentStatus.ACTIVE, EnrolmentSource.IMPORT)
    assert enrolment.external_reference == "SCT-9"
    assert (enrolment.channel, enrolment.account_number) == (PaymentChannel.MOBILE_MONEY, "0977123456")
    assert enrolment.account_name == "Mary Mwansa"
    # No amount in the list: the programme's formula (150 for a household of one).
    assert enrolment.amount == Decimal("150.00")
    assert enrolment.amount_rule_version == programme.current_version
    event = enrolment.events.get()
    assert (event.to_status, event.actor) == (EnrolmentStatus.ACTIVE, maker)
    assert "row 2 of the list “mcdss-sct.csv”" in event.reason and maker.username in event.reason
    assert event.idempotency_key == f"beneficiary-list-{beneficiary_list.pk}-row-2"


def test_the_list_amount_is_used_when_given(samfya_officer, samfya_village, maker, programme):
    household = register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    header = ["NRC", "Name", "Amount", "Pay point"]
    run_list(
        maker, programme, csv_upload([["111111/11/1", "Mary Mwansa", "ZMW 1,200.50", "Samfya boma"]], header=header)
    )
    enrolment = Enrolment.objects.get(household=household, programme=programme)
    assert enrolment.amount == Decimal("1200.50")
    assert enrolment.amount_rule_version is None
    assert (enrolment.channel, enrolment.pay_point) == (PaymentChannel.CASH, "Samfya boma")


def test_uploading_the_same_file_again_changes_nothing_and_says_so(samfya_officer, samfya_village, maker, programme):
    register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    rows = [["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-1", "mobile", "0977000001"]]
    first = run_list(maker, programme, csv_upload(rows))
    enrolments = Enrolment.objects.count()

    again, created = beneficiary_list_upload(acting_user=maker, programme=programme, upload=csv_upload(rows))
    assert (again.pk, created) == (first.pk, False)
    assert again.status == BeneficiaryListStatus.DONE
    assert Enrolment.objects.count() == enrolments
    assert BeneficiaryRow.objects.filter(beneficiary_list=first).count() == 1


def test_a_new_list_naming_people_already_imported_marks_them_already_enrolled(
    samfya_officer, samfya_village, maker, programme
):
    register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    row = ["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-1", "mobile", "0977000001"]
    new = ["444444/44/1", "Natasha", "Zulu", "F", "1985-03-04", samfya_village.code, "SCT-5", "mobile", "0977000005"]
    run_list(maker, programme, csv_upload([row, new], name="october.csv"))
    later = run_list(
        maker, programme, csv_upload([row, new, row[:6] + ["SCT-1b", "mobile", "0977000009"]], name="november.csv")
    )
    states = dict(BeneficiaryRow.objects.filter(beneficiary_list=later).values_list("line", "state"))
    # Row 4 repeats row 2's person (the NRC): invalid, and it says which row.
    assert states == {2: S.ALREADY_ENROLLED, 3: S.ALREADY_ENROLLED, 4: S.INVALID}
    assert "also on row 2" in row_at(later, 4).reason
    assert Household.objects.count() == 2
    assert Enrolment.objects.count() == 2


def test_the_officer_resolves_an_ambiguous_row_by_choosing_the_person(samfya_officer, samfya_village, maker, programme):
    first = register(samfya_officer, samfya_village, "Bupe", "Phiri", born=datetime.date(1990, 1, 1))
    register(samfya_officer, samfya_village, "Bupe", "Phiri", born=datetime.date(1990, 1, 3))
    rows = [["", "Bupe", "Phiri", "F", "1990-01-02", samfya_village.code, "SCT-4", "mobile", "0977000004"]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    row = row_at(beneficiary_list, 2)
    assert row.state == S.AMBIGUOUS

    row = beneficiary_row_resolve(
        acting_user=maker, row=row, decision=Decision.MATCH, member_id=first.head_id, reason="Checked her card."
    )
    assert row.state == S.ENROLLED
    assert (row.household, row.match_method, row.resolved_by) == (first, BeneficiaryMatch.OFFICER, maker)
    assert row.enrolment.household == first and row.enrolment.status == EnrolmentStatus.ACTIVE
    assert "Checked her card." in row.reason
    beneficiary_list.refresh_from_db()
    assert (beneficiary_list.counts[S.AMBIGUOUS], beneficiary_list.counts[S.ENROLLED]) == (0, 1)
    with pytest.raises(ValidationError) as problem:
        beneficiary_row_resolve(acting_user=maker, row=row, decision=Decision.REJECT, reason="No")
    assert "already decided" in str(problem.value.message_dict["decision"])


def test_the_officer_registers_a_row_needing_review_as_a_new_household(
    samfya_officer, samfya_village, maker, programme
):
    rows = [["", "Kondwani", "Lungu", "", "", samfya_village.code, "SCT-6", "mobile", "0977000006"]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    row = row_at(beneficiary_list, 2)
    assert row.state == S.NEEDS_REVIEW

    with pytest.raises(ValidationError) as problem:
        beneficiary_row_resolve(acting_user=maker, row=row, decision=Decision.NEW_HOUSEHOLD, sex="M")
    assert set(problem.value.message_dict) == {"date_of_birth"}

    row = beneficiary_row_resolve(
        acting_user=maker, row=row, decision=Decision.NEW_HOUSEHOLD, sex="M", date_of_birth=datetime.date(1960, 2, 3)
    )
    assert row.state == S.NEW_HOUSEHOLD
    person = row.household.members.get()
    assert (person.full_name, person.sex, person.date_of_birth) == ("Kondwani Lungu", "M", datetime.date(1960, 2, 3))
    assert row.enrolment.status == EnrolmentStatus.ACTIVE


def test_the_officer_rejects_a_row_with_a_reason(samfya_officer, samfya_village, maker, programme):
    rows = [["", "Kondwani", "Lungu", "", "", samfya_village.code, "SCT-6", "mobile", "0977000006"]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    row = row_at(beneficiary_list, 2)
    with pytest.raises(ValidationError) as problem:
        beneficiary_row_resolve(acting_user=maker, row=row, decision=Decision.REJECT)
    assert "reason" in problem.value.message_dict
    row = beneficiary_row_resolve(acting_user=maker, row=row, decision=Decision.REJECT, reason="Left the programme.")
    assert row.state == S.REJECTED and "Left the programme." in row.reason
    assert not Enrolment.objects.exists()


def test_a_national_id_given_to_someone_else_waits_for_an_officer(samfya_officer, samfya_village, maker, programme):
    register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    rows = [["111111/11/1", "John", "Phiri", "M", "1970-01-01", samfya_village.code, "SCT-1", "mobile", "0977000001"]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    row = row_at(beneficiary_list, 2)
    assert row.state == S.AMBIGUOUS
    assert "gives this NRC number to Mary Mwansa" in row.reason
    assert not Enrolment.objects.exists()


def test_a_deceased_person_is_not_enrolled(samfya_officer, samfya_village, maker, programme):
    household = register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    Member.objects.filter(household=household).update(
        status=MemberStatus.DECEASED, status_date=datetime.date(2025, 1, 1)
    )
    rows = [["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-1", "mobile", "0977000001"]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    row = row_at(beneficiary_list, 2)
    assert row.state == S.INVALID and "deceased" in row.reason and row.column == "NRC"


def test_a_row_missing_its_payment_details_is_invalid_naming_the_column(
    samfya_officer, samfya_village, maker, programme
):
    register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    rows = [["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-1", "mobile money", ""]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    row = row_at(beneficiary_list, 2)
    assert row.state == S.INVALID
    assert row.column == "Wallet" and "mobile money wallet number" in row.reason


def test_the_mapping_must_let_rows_be_matched_and_names_the_field(maker, programme):
    upload = csv_upload([["x", "Mary"]], header=["Comment", "Name"])
    beneficiary_list, _ = beneficiary_list_upload(acting_user=maker, programme=programme, upload=upload)
    with pytest.raises(ValidationError) as problem:
        beneficiary_list_start(
            acting_user=maker, beneficiary_list=beneficiary_list, mapping={}, payment_defaults={"pay_point": "Boma"}
        )
    assert "national_id" in problem.value.message_dict
    with pytest.raises(ValidationError) as problem:
        beneficiary_list_start(
            acting_user=maker,
            beneficiary_list=beneficiary_list,
            mapping={"first_name": 1, "sex": 1},
            payment_defaults={"pay_point": "Boma"},
        )
    assert set(problem.value.message_dict) == {"sex", "last_name"}
    assert "already used for First name" in problem.value.message_dict["sex"][0]
    with pytest.raises(ValidationError) as problem:
        beneficiary_list_start(
            acting_user=maker, beneficiary_list=beneficiary_list, mapping={"full_name": 1}, payment_defaults={}
        )
    assert "pay_point_default" in problem.value.message_dict


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("list.pdf", b"%PDF-1.4", ".csv or .xlsx"),
        ("list.xlsx", b"not a workbook", "not a readable Excel workbook"),
        ("list.csv", b"", "first row must name the columns"),
        ("list.csv", b"NRC,Name\n", "no rows"),
        ("list.csv", b"NRC,Name\n\x00\x01\x02\x03", "not text"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_naming_the_file(maker, programme, name, content, words):
    with pytest.raises(ValidationError) as problem:
        beneficiary_list_upload(acting_user=maker, programme=programme, upload=SimpleUploadedFile(name, content))
    assert words in str(problem.value.message_dict["file"])


def test_a_unicode_text_list_from_excel_is_read(samfya_officer, samfya_village, maker, programme):
    household = register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    text = "NRC\tName\tPay point\r\n111111/11/1\tMary Mwansa\tSamfya boma\r\n"
    beneficiary_list = run_list(maker, programme, SimpleUploadedFile("list.csv", text.encode("utf-16")))
    assert row_at(beneficiary_list, 2).household == household


def test_an_excel_list_is_read_with_its_dates(samfya_officer, samfya_village, maker, programme):
    household = register(samfya_officer, samfya_village, "Chilufya", "Banda", born=datetime.date(1980, 5, 17))
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["Name", "Gender", "Date of birth", "Village", "Pay point"])
    sheet.append(["Chilufya Banda", "Female", datetime.datetime(1980, 5, 17), samfya_village.name, "Samfya boma"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    beneficiary_list = run_list(maker, programme, SimpleUploadedFile("list.xlsx", buffer.getvalue()))
    row = row_at(beneficiary_list, 2)
    assert (row.state, row.household) == (S.ENROLLED, household)


def test_a_crash_while_writing_leaves_nothing_and_running_again_finishes(
    samfya_officer, samfya_village, maker, programme, monkeypatch
):
    register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    rows = [
        ["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-1", "mobile", "0977000001"],
        ["444444/44/1", "Natasha", "Zulu", "F", "1985-03-04", samfya_village.code, "SCT-5", "mobile", "0977000005"],
    ]
    real = beneficiaries._enrol_rows

    def crash(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("the database went away")

    monkeypatch.setattr(beneficiaries, "_enrol_rows", crash)
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    assert beneficiary_list.status == BeneficiaryListStatus.FAILED
    assert "the database went away" in beneficiary_list.message
    assert not Enrolment.objects.exists()
    assert Household.objects.count() == 1
    assert not BeneficiaryRow.objects.exists()
    assert not ImportJob.objects.exists()

    monkeypatch.setattr(beneficiaries, "_enrol_rows", real)
    beneficiary_list = beneficiary_list_start(
        acting_user=maker,
        beneficiary_list=beneficiary_list,
        mapping=beneficiary_list.mapping,
        payment_defaults=beneficiary_list.payment_defaults,
    )
    assert beneficiary_list.status == BeneficiaryListStatus.DONE
    assert Enrolment.objects.count() == 2 and Household.objects.count() == 2


def test_running_a_finished_list_again_does_nothing(samfya_officer, samfya_village, maker, programme):
    register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    rows = [["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-1", "mobile", "0977000001"]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    assert beneficiary_list_run(list_id=beneficiary_list.pk) is None
    assert Enrolment.objects.count() == 1


def test_a_big_list_runs_as_a_job(
    samfya_officer,
    samfya_village,
    maker,
    programme,
    monkeypatch,
    tasks_run_in_process,
    django_capture_on_commit_callbacks,
):
    register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    monkeypatch.setattr(beneficiaries, "INLINE_ROW_LIMIT", 0)
    rows = [["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-1", "mobile", "0977000001"]]
    beneficiary_list, _ = beneficiary_list_upload(acting_user=maker, programme=programme, upload=csv_upload(rows))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        beneficiary_list = beneficiary_list_start(
            acting_user=maker, beneficiary_list=beneficiary_list, mapping=beneficiary_list.mapping, payment_defaults={}
        )
    assert beneficiary_list.status == BeneficiaryListStatus.QUEUED
    assert len(callbacks) == 1
    callbacks[0]()
    beneficiary_list.refresh_from_db()
    assert beneficiary_list.status == BeneficiaryListStatus.DONE
    assert beneficiary_list.counts[S.ENROLLED] == 1


def test_a_committee_member_may_not_upload_a_list(committee_samfya, programme):
    with pytest.raises(PermissionDenied):
        beneficiary_list_upload(acting_user=committee_samfya, programme=programme, upload=csv_upload([["1"]]))


def test_the_window_of_one_district_matches_only_there_and_sees_only_its_rows(
    samfya_officer, lunga_officer, samfya_village, lunga_village, maker, programme
):
    register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    register(lunga_officer, lunga_village, "John", "Tembo", national_id="222222/22/1", sex="M")
    rows = [
        ["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-1", "mobile", "0977000001"],
        ["222222/22/1", "John", "Tembo", "M", "1970-01-01", lunga_village.code, "SCT-2", "mobile", "0977000002"],
        ["", "Peter", "Mumba", "M", "1970-01-01", lunga_village.code, "SCT-3", "mobile", "0977000003"],
    ]
    beneficiary_list = run_list(samfya_officer, programme, csv_upload(rows))
    states = dict(BeneficiaryRow.objects.filter(beneficiary_list=beneficiary_list).values_list("line", "state"))
    assert states == {2: S.ENROLLED, 3: S.INVALID, 4: S.INVALID}
    assert "not one of yours" in row_at(beneficiary_list, 3).reason
    assert "not one of yours" in row_at(beneficiary_list, 4).reason
    assert not Household.objects.filter(members__first_name="Peter").exists()

    # The uploader sees the rows that never reached a district of theirs; Lunga's window sees none of Samfya's.
    assert beneficiary_rows_for(samfya_officer, beneficiary_list).count() == 3
    assert beneficiary_rows_for(lunga_officer, beneficiary_list).count() == 0
    report = beneficiary_list_report_csv(user=lunga_officer, beneficiary_list=beneficiary_list).decode("utf-8-sig")
    assert "Mwansa" not in report and len(report.strip().splitlines()) == 1


def test_an_officer_cannot_resolve_a_row_of_another_district(
    samfya_officer, lunga_officer, samfya_village, maker, programme
):
    rows = [["", "Kondwani", "Lungu", "", "", samfya_village.code, "SCT-6", "mobile", "0977000006"]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    with pytest.raises(PermissionDenied):
        beneficiary_row_resolve(
            acting_user=lunga_officer, row=row_at(beneficiary_list, 2), decision=Decision.REJECT, reason="x"
        )


def test_the_report_has_every_row_with_its_state_and_reason(samfya_officer, samfya_village, maker, programme):
    register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    rows = [
        ["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-1", "mobile", "0977000001"],
        ["", "=HYPERLINK()", "Kasonde", "F", "31/02/1980", samfya_village.code, "SCT-7", "mobile", "0977000007"],
    ]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    report = list(
        csv.DictReader(
            io.StringIO(beneficiary_list_report_csv(user=maker, beneficiary_list=beneficiary_list).decode("utf-8-sig"))
        )
    )
    assert [(line["row"], line["state"]) for line in report] == [("2", "enrolled"), ("3", "invalid")]
    assert report[0]["enrolment"].startswith("E") and report[0]["household"]
    assert report[1]["column"] == "DOB" and "not a date" in report[1]["reason"]
    assert report[1]["first_name"] == "'=HYPERLINK()"


def test_new_households_have_the_registrys_import_history(samfya_officer, samfya_village, maker, programme):
    rows = [["444444/44/1", "Natasha", "Zulu", "F", "1985-03-04", samfya_village.code, "SCT-5", "mobile", "0977000005"]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    household = row_at(beneficiary_list, 2).household
    assert household.number.startswith("SAM-")
    entries = ChangeEntry.objects.filter(household=household)
    assert entries.count() == 2
    assert all(entry.actor == maker and entry.import_job == beneficiary_list.registry_import for entry in entries)


def test_a_village_name_is_accepted_when_it_is_unique(samfya_officer, samfya, samfya_village, maker, programme):
    other = make_village(samfya, suffix="2")
    rows = [["444444/44/1", "Natasha", "Zulu", "F", "1985-03-04", other.name, "SCT-5", "mobile", "0977000005"]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    row = row_at(beneficiary_list, 2)
    assert row.state == S.NEW_HOUSEHOLD and row.household.village == other


def test_a_programme_for_individuals_enrols_the_person_matched(samfya_officer, samfya_village, maker, programme):
    programme.target_unit = "individual"
    programme.save()
    household = register(
        samfya_officer,
        samfya_village,
        "Mary",
        "Mwansa",
        national_id="111111/11/1",
        others=[{"first_name": "Bupe", "last_name": "Mwansa", "date_of_birth": datetime.date(2010, 3, 2)}],
    )
    child = household.members.get(first_name="Bupe")
    header = ["Name", "DOB", "Village", "Pay point"]
    rows = [["Bupe Mwansa", "02/03/2010", samfya_village.code, "Samfya boma"]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows, header=header))
    row = row_at(beneficiary_list, 2)
    assert row.state == S.ENROLLED, row.reason
    assert (row.enrolment.member, row.enrolment.household) == (child, household)
    assert row.enrolment.account_name == "Bupe Mwansa"


def _matched(beneficiary_list, monkeypatch, per_row_limit):
    """Read and match the list as a run does, without writing: each row's state, person and candidates."""
    monkeypatch.setattr(beneficiaries, "NAME_MATCH_PER_ROW_LIMIT", per_row_limit)
    run = beneficiaries._ListRun(beneficiary_list)
    run.read()
    run.match()
    return {
        row.line: (row.state, row.member_id, row.match_method, [(c["member_id"], c["score"]) for c in row.candidates])
        for row in run.rows
    }


def test_the_pass_over_the_registry_finds_what_the_row_by_row_search_finds(
    samfya_officer, samfya_village, samfya, maker, programme, monkeypatch
):
    other_village = make_village(samfya, suffix="2")
    people = [
        ("Chilufya", "Banda", datetime.date(1980, 5, 17), samfya_village),
        ("Chilufya", "Banda", datetime.date(1981, 2, 1), other_village),
        ("Bupe", "Phiri", datetime.date(1990, 1, 1), samfya_village),
        ("Bupe", "Phiri", datetime.date(1990, 1, 3), samfya_village),
        ("Mutale", "Mwanza", datetime.date(1975, 6, 6), samfya_village),
        ("Grace", "Tembo", None, samfya_village),
    ]
    for first, last, born, village in people:
        register(samfya_officer, village, first, last, born=born)
    rows = [
        ["", "Chilufya", "Banda", "F", "1980-05-17", samfya_village.code, "1", "mobile", "0977000001"],
        ["", "Chilufya", "Banda", "F", "1980-05-17", "", "2", "mobile", "0977000002"],
        ["", "Bupe", "Phiri", "F", "1990-01-02", samfya_village.code, "3", "mobile", "0977000003"],
        ["", "Mutale", "Mwansa", "F", "1975-06-06", samfya_village.code, "4", "mobile", "0977000004"],
        ["", "Grace", "Tembo", "F", "", samfya_village.code, "5", "mobile", "0977000005"],
        ["", "Natasha", "Zulu", "F", "1985-01-01", samfya_village.code, "6", "mobile", "0977000006"],
    ]
    beneficiary_list, _ = beneficiary_list_upload(acting_user=maker, programme=programme, upload=csv_upload(rows))

    row_by_row = _matched(beneficiary_list, monkeypatch, per_row_limit=100)
    by_pass = _matched(beneficiary_list, monkeypatch, per_row_limit=0)
    assert by_pass == row_by_row
    # The cases above cover each outcome of matching by name.
    assert [state for state, *_rest in by_pass.values()] == [
        S.PENDING,
        S.AMBIGUOUS,
        S.AMBIGUOUS,
        S.PENDING,
        S.AMBIGUOUS,
        S.PENDING,
    ]
    assert [method for _state, _member, method, _candidates in by_pass.values()] == [
        BeneficiaryMatch.NAME,
        "",
        "",
        BeneficiaryMatch.NAME,
        "",
        BeneficiaryMatch.NEW_HOUSEHOLD,
    ]


def test_a_clear_best_match_is_taken_though_a_weaker_candidate_exists(
    samfya_officer, samfya_village, samfya, maker, programme
):
    other_village = make_village(samfya, suffix="2")
    same = register(samfya_officer, samfya_village, "Francis", "Mulenga", born=datetime.date(1983, 5, 25), sex="M")
    # Probably the same man registered twice (the registry's duplicate check would flag him): in another village.
    register(samfya_officer, other_village, "Francis", "Mulenga", born=datetime.date(1983, 5, 25), sex="M")
    rows = [["", "Francis", "Mulenga", "M", "1983-05-25", samfya_village.code, "1", "mobile", "0977000001"]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    row = row_at(beneficiary_list, 2)
    assert (row.state, row.household) == (S.ENROLLED, same)
    assert [candidate["score"] for candidate in row.candidates] == [1.0, 0.85]


def test_a_row_whose_formula_lacks_information_says_the_amount_is_missing(
    samfya_officer, samfya_village, maker, agency, samfya, lunga, ministry_user
):
    from .makers import make_cash_programme

    programme = make_cash_programme(
        code="DIS", agency=agency, districts=[samfya, lunga], ministry_user=ministry_user,
        formula='household.members.exists(m, m.disability_walking >= 3) ? 400 : 200',
    )  # fmt: skip
    household = register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    rows = [["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "1", "mobile", "0977000001"]]
    beneficiary_list = run_list(maker, programme, csv_upload(rows))
    row = row_at(beneficiary_list, 2)
    assert row.state == S.ENROLLED and row.enrolment.household == household
    assert row.enrolment.amount is None
    assert "No amount yet" in row.reason


def test_the_copy_writer_writes_what_bulk_create_writes(samfya_officer, samfya_village, maker, programme):
    from django.forms.models import model_to_dict

    register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    register(samfya_officer, samfya_village, "Bupe", "Phiri", born=datetime.date(1990, 1, 1))
    register(samfya_officer, samfya_village, "Bupe", "Phiri", born=datetime.date(1990, 1, 3))
    rows = [
        ["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-1", "mobile", "0977000001"],
        ["", "Bupe", "Phiri", "F", "1990-01-02", samfya_village.code, "SCT-4", "mobile", "0977000004"],
        ["", "Kondwani", "Lungu", "", "", "NOWHERE", "=SUM(1)", "", ""],
        ["", "Mutale", "Kasonde", "F", "31/02/1980", samfya_village.code, 'say "hi", ok', "bank", ""],
    ]
    written = {}
    # The second file ends with a blank line: another file (another SHA-256), the same rows.
    for name, blank, writer in (("a.csv", [], beneficiaries._copy_rows), ("b.csv", [[]], None)):
        beneficiary_list, _ = beneficiary_list_upload(
            acting_user=maker, programme=programme, upload=csv_upload(rows + blank, name=name)
        )
        beneficiary_list.mapped_by = maker
        run = beneficiaries._ListRun(beneficiary_list)
        run.read()
        run.match()
        if writer:
            writer(run.rows)
        else:
            BeneficiaryRow.objects.bulk_create(run.rows)
        written[name] = [
            {k: v for k, v in model_to_dict(row).items() if k not in ("id", "beneficiary_list")}
            for row in BeneficiaryRow.objects.filter(beneficiary_list=beneficiary_list).order_by("line")
        ]
    assert written["a.csv"] == written["b.csv"]
    assert [row["state"] for row in written["a.csv"]] == [S.PENDING, S.AMBIGUOUS, S.INVALID, S.INVALID]


def test_a_run_whose_worker_died_is_taken_over_and_one_still_moving_is_not(
    samfya_officer, samfya_village, maker, programme
):
    register(samfya_officer, samfya_village, "Mary", "Mwansa", national_id="111111/11/1")
    rows = [["111111/11/1", "Mary", "Mwansa", "F", "1970-01-01", samfya_village.code, "SCT-1", "mobile", "0977000001"]]
    beneficiary_list, _ = beneficiary_list_upload(acting_user=maker, programme=programme, upload=csv_upload(rows))
    moving = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    BeneficiaryList.objects.filter(pk=beneficiary_list.pk).update(
        status=BeneficiaryListStatus.MATCHING, mapped_by=maker, updated_at=moving
    )
    assert beneficiary_list_run(list_id=beneficiary_list.pk) is None

    BeneficiaryList.objects.filter(pk=beneficiary_list.pk).update(updated_at=moving - beneficiaries.STALE_RUN)
    beneficiary_list = beneficiary_list_run(list_id=beneficiary_list.pk)
    assert beneficiary_list.status == BeneficiaryListStatus.DONE
    assert beneficiary_list.counts[S.ENROLLED] == 1
