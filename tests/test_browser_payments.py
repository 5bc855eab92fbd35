"""An enrolment and its first payment in a real browser, from the window to the
provider's file and back: the front desk enrols an eligible household, the
agency's officer verifies it and is told a colleague must approve (maker-
checker), a second officer approves and activates it and generates the
month's payroll, the first officer approves the payroll (not the one who
generated it), downloads the payment file and uploads the provider's
reconciliation file, and the household page shows the payment paid.

Saves screenshots to test-artifacts/ for a person to look at, at a desktop
width and, for the pages the window and the agency use most, a phone's.
"""

import csv
import datetime
import io

import pytest
from django.utils import timezone

from payments.models import CycleStatus, Enrolment, EnrolmentStatus, Payment, PaymentCycle, PaymentStatus
from programmes.models import Agency, AgencyKind, EnrolmentMode, Programme, ProgrammeDistrict, ProgrammeKind
from programmes.services import eligibility_recompute_household, programme_set_rules
from registry.services import MemberInput, household_register
from registry.tests.factories import UserFactory, make_district, make_village
from spf.models import Role

# The browser and its settings are the referral walk-through's: one way to start Chromium.
from .test_browser_referrals import ARTIFACTS, CHROMIUM, PASSWORD, browser  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"),
]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def samfya_cash_transfer(transactional_db, monkeypatch):
    """Samfya's window, MCDSS with two officers, a cash transfer enrolled at the window, one eligible household."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # the test makes between browser steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    samfya = make_district("SAM", "Samfya")
    village = make_village(samfya)
    desk = UserFactory(
        username="desk", first_name="Agnes", last_name="Chanda", role=Role.FRONT_DESK, districts=[samfya]
    )
    ministry = UserFactory(username="ministry", role=Role.MINISTRY)
    mcdss = Agency.objects.create(
        code="MCDSS", name="Ministry of Community Development and Social Services", kind=AgencyKind.MINISTRY
    )
    for username, first, last in (("officer_mcdss", "Ruth", "Phiri"), ("checker_mcdss", "Moses", "Tembo")):
        UserFactory(
            username=username,
            first_name=first,
            last_name=last,
            role=Role.PROGRAMME_OFFICER,
            agency=mcdss,
            districts=[samfya],
        )
    programme = Programme.objects.create(
        code="SCT",
        name="Social Cash Transfer",
        agency=mcdss,
        auto_referral="off",
        description="Cash every month",
        kind=ProgrammeKind.CASH_TRANSFER,
        status="active",
        currency="ZMW",
        enrolment_mode=EnrolmentMode.DIRECT,
    )
    ProgrammeDistrict.objects.create(programme=programme, district=samfya)
    programme_set_rules(
        acting_user=ministry,
        programme=programme,
        eligibility_rule="household.size >= 2",
        benefit_formula="150 * (household.members.size() >= 5 ? 2 : 1)",
    )
    household = household_register(
        acting_user=desk,
        village=village,
        phone="0977 123 456",
        members=[
            MemberInput(
                values={
                    "first_name": "Mary",
                    "last_name": "Mwansa",
                    "sex": "F",
                    "relationship": "head",
                    "date_of_birth": datetime.date(1980, 5, 17),
                }
            ),
            MemberInput(
                values={
                    "first_name": "Joseph",
                    "last_name": "Mwansa",
                    "sex": "M",
                    "relationship": "child",
                    "date_of_birth": datetime.date(2016, 2, 1),
                }
            ),
        ],
    )
    eligibility_recompute_household(household_id=household.pk)
    return household


def provider_answer(payment_file: bytes, *, paid_at: datetime.datetime) -> bytes:
    """The provider's reconciliation file for a payment file: every payment paid."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["reference", "status", "amount", "paid_at", "transaction_id"])
    for number, row in enumerate(csv.DictReader(io.StringIO(payment_file.decode()))):
        if row["reference"] == "TOTAL":
            continue
        writer.writerow([row["reference"], "paid", row["amount"], f"{paid_at:%Y-%m-%d %H:%M}", f"MM{number:06d}"])
    return out.getvalue().encode()


def test_an_enrolment_is_approved_paid_and_reconciled_through_the_pages(
    live_server,
    browser,  # noqa: F811 - the fixture imported above
    samfya_cash_transfer,
    tmp_path,
):
    household = samfya_cash_transfer
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()

    def shot(step, *, phone_too=False):
        page.screenshot(path=str(ARTIFACTS / f"payments-{step}.png"), full_page=True)
        if phone_too:
            page.set_viewport_size(PHONE)
            page.screenshot(path=str(ARTIFACTS / f"payments-{step}-phone.png"), full_page=True)
            page.set_viewport_size(DESKTOP)

    def log_in(username):
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("button", name="Log out").wait_for()

    def log_out():
        page.get_by_role("button", name="Log out").click()
        page.get_by_role("button", name="Log in").wait_for()

    # The window: the household is eligible and not enrolled; enrol it, paid by mobile money.
    log_in("desk")
    page.goto(f"{live_server.url}/households/{household.pk}/")
    section = page.locator("#enrolments")
    assert "Not enrolled in any programme" in section.inner_text()
    section.scroll_into_view_if_needed()
    shot("1-household-eligible")
    section.get_by_role("link", name="Enrol in Social Cash Transfer").click()
    page.get_by_role("heading", name="Enrol in Social Cash Transfer").wait_for()
    page.get_by_label("Mobile money wallet").check()
    # The pay point is for cash: the page's script hides it once a wallet is chosen.
    page.get_by_label("Pay point", exact=True).wait_for(state="hidden")
    page.get_by_role("button", name="Apply for enrolment").click()
    # The wallet number was forgotten: the error is beside it, the choice kept.
    page.locator(".has-error", has_text="Give the mobile money wallet number").wait_for()
    assert page.get_by_label("Mobile money wallet").is_checked()
    shot("2-enrol-error", phone_too=True)
    page.get_by_label("Account or wallet number").fill("0977 123 456")
    page.get_by_role("button", name="Apply for enrolment").click()
    enrolment = Enrolment.objects.get(household=household)
    page.get_by_role("heading", name=f"Enrolment {enrolment.number}").wait_for()
    assert page.locator(".enrolment-status").get_attribute("data-status") == EnrolmentStatus.APPLIED
    shot("3-enrolment-applied")
    log_out()

    # The agency: its officer verifies from the work list, then may not approve what it verified.
    log_in("officer_mcdss")
    page.get_by_role("link", name="Enrolments", exact=True).click()
    page.get_by_role("heading", name="Enrolments for Ministry of Community Development and Social Services").wait_for()
    shot("4-work-to-verify", phone_too=True)
    page.get_by_role("button", name=f"Verify {enrolment.number}").click()
    page.locator(".messages", has_text="verified").wait_for()
    page.get_by_role("link", name="To approve").click()
    page.locator(".maker-checker", has_text="wait").wait_for()
    assert page.get_by_role("button", name=f"Approve {enrolment.number}").count() == 0
    shot("5-work-maker-checker")
    log_out()

    # A second officer approves (the amount comes from the formula) and activates.
    log_in("checker_mcdss")
    page.goto(f"{live_server.url}/payments/?tab=approve")
    page.get_by_role("link", name=enrolment.number, exact=True).click()
    page.get_by_role("button", name="Approve").click()
    page.locator(".messages", has_text="approved at ZMW 150.00 a payment").wait_for()
    page.get_by_role("button", name="Activate").click()
    page.locator(".messages", has_text="active").wait_for()
    assert page.locator(".enrolment-status").get_attribute("data-status") == EnrolmentStatus.ACTIVE
    shot("6-enrolment-active", phone_too=True)

    # The same officer creates this month's cycle and generates its payroll.
    page.get_by_role("link", name="Payments", exact=True).click()
    page.get_by_role("heading", name="Payment cycles").wait_for()
    month = timezone.localdate().strftime("%Y-%m")
    assert page.get_by_label("New cycle: month").input_value() == month
    shot("7-cycles")
    page.get_by_role("button", name="Create the cycle of Social Cash Transfer").click()
    page.get_by_role("button", name="Generate the payroll").click()
    page.locator(".messages", has_text="Payroll generated: 1 payment, ZMW 150.00").wait_for()
    assert page.get_by_role("button", name="Approve the payroll").is_disabled()
    shot("8-cycle-generated")
    log_out()

    # The first officer approves the payroll, downloads the payment file, uploads the provider's answer.
    log_in("officer_mcdss")
    cycle = PaymentCycle.objects.get(programme__code="SCT")
    page.goto(f"{live_server.url}/payments/cycles/{cycle.pk}/")
    page.get_by_role("button", name="Approve the payroll").click()
    page.locator(".messages", has_text="approved").wait_for()
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the mobile money wallet file").click()
    payment_file = download.value.path().read_bytes()
    assert download.value.suggested_filename == f"SCT-{month.replace('-', '')}-mobile_money.csv"
    payment = Payment.objects.get(cycle=cycle)
    assert payment.reference in payment_file.decode() and "0977 123 456" in payment_file.decode()
    answer = tmp_path / "provider-answer.csv"
    answer.write_bytes(provider_answer(payment_file, paid_at=timezone.localtime() - datetime.timedelta(hours=1)))
    page.reload()
    page.get_by_label("The provider's reconciliation file").set_input_files(str(answer))
    page.get_by_role("button", name="Upload and reconcile").click()
    page.locator(".messages", has_text="1 applied").wait_for()
    reconciliations = page.locator("#reconciliations")
    assert "provider-answer.csv" in reconciliations.inner_text()
    with page.expect_download() as report:
        reconciliations.get_by_role("link", name="Download the row report").click()
    assert "applied" in report.value.path().read_text()
    shot("9-cycle-reconciled", phone_too=True)
    log_out()

    # The window again: the household's payment is paid.
    log_in("desk")
    page.goto(f"{live_server.url}/households/{household.pk}/#enrolments")
    section = page.locator("#enrolments")
    row = section.locator(f"#payment-{payment.reference}")
    assert "Paid" in row.inner_text() and "ZMW 150.00" in row.inner_text()
    assert "Active" in section.inner_text()
    section.scroll_into_view_if_needed()
    shot("10-household-paid", phone_too=True)
    context.close()
    payment.refresh_from_db()
    cycle.refresh_from_db()
    assert payment.status == PaymentStatus.PAID and cycle.status == CycleStatus.CLOSED
    assert cycle.generated_by.username == "checker_mcdss" and cycle.approved_by.username == "officer_mcdss"
