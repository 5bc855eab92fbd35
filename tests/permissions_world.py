"""A small world for the role × endpoint table (`spf.permissions_table`): two districts, the people who
work in them, and one of everything a URL can name, each built through the services (or the apps' own
test makers) as it would be in use.

District A is Samfya (SAM), district B is Lunga (LUN). Every object a URL names belongs to district A; B
has its own household, enrolment and payment so that the shared payment cycle has a second district and
district B's officer has something of their own. The names of district A's people are distinctive so a
page shown to district B's officer can be searched for them (`A_SECRETS`).
"""

import datetime
import io
from dataclasses import dataclass
from types import SimpleNamespace

from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token

from grievances.models import GrievanceCategory
from grievances.services import grievance_acknowledge, grievance_attachment_add, grievance_register
from interop.services import partner_register, partner_token_issue
from payments.models import BeneficiaryList, BeneficiaryListStatus, BeneficiaryRow, BeneficiaryRowState
from payments.payroll import payment_cycle_create, payroll_approve, payroll_export, payroll_generate
from payments.reconciliation import reconciliation_import
from payments.tests.makers import enrol_active, first_of_month, make_cash_programme, make_officer
from programmes.services import recompute_run_create
from referrals.models import Notification
from referrals.services import referral_attachment_add, referral_create
from referrals.tests.makers import make_agency, make_programme
from registry.models import ImportJob, ImportStatus, Relationship
from registry.services import MemberInput, household_register
from registry.tests.factories import UserFactory, make_district, make_village
from spf.models import Role

# What district B's officer must never read on any page: district A's household and its people.
A_HOUSEHOLD_PHONE = "0977 424242"
A_NATIONAL_ID = "424242/42/1"
A_NAMES = ("Namwinga", "Kasonde", "Chibesakunda")


def _person(first: str, last: str, relationship: str, born: datetime.date, **more) -> MemberInput:
    return MemberInput(
        values={
            "first_name": first,
            "last_name": last,
            "sex": "F",
            "date_of_birth": born,
            "relationship": relationship,
            **more,
        }
    )


def _pdf(name: str) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"%PDF-1.4 a letter", content_type="application/pdf")


@dataclass
class World:
    """Everything the table's URLs name, and the actors who call them."""

    objects: SimpleNamespace
    users: dict  # actor key -> User (None for anonymous)
    api_tokens: dict  # actor key -> DRF token key
    partner_token: str
    limited_partner_token: str
    user_bearer_token: str
    secrets: tuple[str, ...]


def build_world() -> World:
    samfya, lunga = make_district("SAM", "Samfya"), make_district("LUN", "Lunga")
    samfya_village, lunga_village = make_village(samfya), make_village(lunga)

    ministry = UserFactory(username="perm_ministry", role=Role.MINISTRY, is_staff=True)
    superuser = UserFactory(username="perm_superuser", role=Role.MINISTRY, is_staff=True, is_superuser=True)
    desk_a = UserFactory(username="perm_desk_a", role=Role.FRONT_DESK, districts=[samfya])
    desk_b = UserFactory(username="perm_desk_b", role=Role.FRONT_DESK, districts=[lunga])
    committee_a = UserFactory(username="perm_committee_a", role=Role.COMMITTEE, districts=[samfya])
    designated = UserFactory(username="perm_designated_a", role=Role.FRONT_DESK, districts=[samfya])
    designated.user_permissions.add(
        Permission.objects.get(codename="handle_sensitive", content_type__app_label="grievances")
    )
    # Records the sensitive grievance, so that no actor sees it only for having recorded it.
    recorder_a = UserFactory(username="perm_recorder_a", role=Role.FRONT_DESK, districts=[samfya])

    agency_x, agency_y = make_agency("MCDSS"), make_agency("MOE")
    officer_x = make_officer(agency_x, [samfya], name="perm_officer")
    # The agency's maker and checker for district B too: the shared payroll has both districts.
    maker_x = make_officer(agency_x, [samfya, lunga], name="perm_maker")
    checker_x = make_officer(agency_x, [samfya, lunga], name="perm_checker")

    # A cash transfer of agency X that households are referred to, in both districts; a programme of agency Y.
    cash = make_cash_programme(
        agency=agency_x, districts=[samfya, lunga], ministry_user=ministry, direct=False, formula="150"
    )
    feeding = make_programme(code="HGSF", agency=agency_y, districts=[samfya, lunga])

    household = household_register(
        acting_user=desk_a,
        village=samfya_village,
        phone=A_HOUSEHOLD_PHONE,
        duplicates_confirmed=True,
        members=[
            _person("Namwinga", "Kasonde", Relationship.HEAD, datetime.date(1975, 3, 9), national_id=A_NATIONAL_ID),
            _person("Chibesakunda", "Kasonde", Relationship.CHILD, datetime.date(2012, 6, 1)),
        ],
    )
    member = household.members.get(first_name="Chibesakunda")
    household_b = household_register(
        acting_user=desk_b,
        village=lunga_village,
        duplicates_confirmed=True,
        members=[_person("Mutale", "Bwalya", Relationship.HEAD, datetime.date(1980, 1, 1))],
    )

    referral = referral_create(acting_user=desk_a, household=household, programme=cash, reason="Elderly head")
    referral_attachment = referral_attachment_add(acting_user=desk_a, referral=referral, file=_pdf("letter.pdf"))
    other_agency_referral = referral_create(
        acting_user=desk_a, household=household, programme=feeding, reason="School-age child"
    )
    Notification.objects.create(recipient=desk_a, referral=referral, kind="sent", message="A referral was sent.")

    enrolment = enrol_active(household=household, programme=cash, maker=maker_x, checker=checker_x)
    enrol_active(household=household_b, programme=cash, maker=maker_x, checker=checker_x)
    cycle = payment_cycle_create(acting_user=maker_x, programme=cash, period_start=first_of_month())
    payroll_generate(acting_user=maker_x, cycle=cycle)
    payroll_approve(acting_user=checker_x, cycle=cycle)
    payroll_export(acting_user=maker_x, cycle=cycle, channel="mobile_money")
    payment = cycle.payments.get(household=household)
    provider_file = io.StringIO()
    provider_file.write("reference,status,amount,paid_at,provider_transaction_id\r\n")
    provider_file.write(f"{payment.reference},paid,150,2026-11-20 10:00,TX-1\r\n")
    reconciliation = reconciliation_import(
        acting_user=maker_x, cycle=cycle, file_name="provider.csv", content=provider_file.getvalue().encode()
    )

    grievance = grievance_register(
        acting_user=desk_a,
        category=GrievanceCategory.PAYMENT,
        description="The November payment did not arrive.",
        household=household,
        complainant=household.head,
        programme=cash,
    )
    grievance = grievance_acknowledge(acting_user=desk_a, grievance=grievance)
    grievance_attachment = grievance_attachment_add(acting_user=desk_a, grievance=grievance, file=_pdf("receipt.pdf"))
    sensitive = grievance_register(
        acting_user=recorder_a,
        category=GrievanceCategory.OTHER,
        description="Asked for money to be put on the list.",
        household=household,
        complainant=household.head,
        programme=cash,
        sensitive=True,
    )
    sensitive = grievance_acknowledge(acting_user=designated, grievance=sensitive)
    sensitive_attachment = grievance_attachment_add(
        acting_user=designated, grievance=sensitive, file=_pdf("statement.pdf")
    )

    import_job = ImportJob.objects.create(
        original_name="samfya.csv", created_by=desk_a, status=ImportStatus.DONE, total_rows=1, processed_rows=1
    )
    beneficiary_list = BeneficiaryList.objects.create(
        programme=cash,
        file="beneficiary-lists/sct.csv",
        file_name="sct.csv",
        file_sha256="0" * 64,
        uploaded_by=officer_x,
        columns=["NRC", "First name", "Surname"],
        sample=[[A_NATIONAL_ID, "Namwinga", "Kasonde"]],
        status=BeneficiaryListStatus.DONE,
        total_rows=1,
        processed_rows=1,
        counts={BeneficiaryRowState.AMBIGUOUS: 1},
    )
    beneficiary_row = BeneficiaryRow.objects.create(
        beneficiary_list=beneficiary_list,
        line=2,
        first_name="Namwinga",
        last_name="Kasonde",
        national_id=A_NATIONAL_ID,
        village=samfya_village,
        district=samfya,
        state=BeneficiaryRowState.AMBIGUOUS,
    )
    # Uploaded and not yet mapped: the file's first rows are shown to map its columns, and they may name
    # anyone, of any district.
    unmapped_list = BeneficiaryList.objects.create(
        programme=cash,
        file="beneficiary-lists/sct-december.csv",
        file_name="sct-december.csv",
        file_sha256="1" * 64,
        uploaded_by=officer_x,
        columns=["NRC", "First name", "Surname"],
        sample=[[A_NATIONAL_ID, "Namwinga", "Kasonde"]],
        estimated_rows=1,
        status=BeneficiaryListStatus.UPLOADED,
    )
    recompute_run = recompute_run_create(acting_user=ministry, programme=cash, district=samfya, reason="rule change")

    full_partner = partner_register(
        acting_user=ministry,
        code="nsr.test",
        name="National social registry",
        districts=[samfya],
        programmes=[cash],
        can_search_registry=True,
        can_read_enrolments=True,
        can_update_enrolments=True,
    )
    # Allowed to search the registry and nothing else: the IBR's enrolment exchanges refuse it.
    limited_partner = partner_register(
        acting_user=ministry,
        code="search-only.test",
        name="A partner that only searches",
        districts=[samfya],
        can_search_registry=True,
    )
    _, partner_token = partner_token_issue(acting_user=ministry, partner=full_partner, label="gateway")
    _, limited_token = partner_token_issue(acting_user=ministry, partner=limited_partner, label="gateway")

    users = {
        "anonymous": None,
        "desk_a": desk_a,
        "officer_x": officer_x,
        "committee_a": committee_a,
        "ministry": ministry,
        "superuser": superuser,
        "desk_b": desk_b,
        "designated_a": designated,
    }
    api_tokens = {key: Token.objects.create(user=user).key for key, user in users.items() if user is not None}
    objects = SimpleNamespace(
        district=samfya,
        other_district=lunga,
        village=samfya_village,
        household=household,
        member=member,
        household_b=household_b,
        agency=agency_x,
        programme=cash,
        other_programme=feeding,
        referral=referral,
        referral_attachment=referral_attachment,
        other_agency_referral=other_agency_referral,
        enrolment=enrolment,
        cycle=cycle,
        payment=payment,
        reconciliation=reconciliation,
        grievance=grievance,
        grievance_attachment=grievance_attachment,
        sensitive=sensitive,
        sensitive_attachment=sensitive_attachment,
        import_job=import_job,
        beneficiary_list=beneficiary_list,
        beneficiary_row=beneficiary_row,
        unmapped_list=unmapped_list,
        recompute_run=recompute_run,
    )
    return World(
        objects=objects,
        users=users,
        api_tokens=api_tokens,
        partner_token=partner_token,
        limited_partner_token=limited_token,
        user_bearer_token=api_tokens["desk_a"],
        secrets=(household.number, A_HOUSEHOLD_PHONE, A_NATIONAL_ID, *A_NAMES),
    )
