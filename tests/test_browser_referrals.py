"""A referral in a real browser, from the window to the agency and back: the
household's eligible programmes, refer, print the slip (A4 and receipt), the
programme officer opens it by its number and accepts, and the household page
shows it accepted.

Saves screenshots (and the slip as PDF) to test-artifacts/ for a person to look at.
"""

import datetime
import re
from pathlib import Path

import pytest

from programmes.models import Agency, AgencyKind, Programme, ProgrammeDistrict, ProgrammeKind, ProgrammeStatus
from programmes.services import eligibility_recompute_household, programme_set_rules
from referrals.models import Referral, ReferralStatus
from registry.services import MemberInput, household_register
from registry.tests.factories import UserFactory, make_district, make_village
from spf.models import Role

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "pass-word-123"
# PDF points per millimetre: the slip's paper sizes are checked in the PDF the browser prints.
POINTS_PER_MM = 72 / 25.4

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"),
]


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def samfya_window(transactional_db, monkeypatch):
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
        code="MCDSS",
        name="Ministry of Community Development and Social Services",
        kind=AgencyKind.MINISTRY,
        focal_point_name="District Social Welfare Officer",
        focal_point_title="DSWO",
        address="Civic Centre, Samfya Boma",
        phone="0211 000000",
    )
    UserFactory(
        username="officer_mcdss",
        first_name="Ruth",
        last_name="Phiri",
        role=Role.PROGRAMME_OFFICER,
        agency=mcdss,
        districts=[samfya],
    )
    programme = Programme.objects.create(
        code="SCT",
        name="Social Cash Transfer",
        agency=mcdss,
        # The window refers by hand in this walk-through; automatic suggestions are tested elsewhere.
        auto_referral="off",
        description="Cash every month",
        kind=ProgrammeKind.CASH_TRANSFER,
        status=ProgrammeStatus.ACTIVE,
        currency="ZMW",
        referral_sla_days=14,
        documents=["NRC of the head of household", "Birth certificates or under-five cards of the children"],
    )
    ProgrammeDistrict.objects.create(programme=programme, district=samfya)
    programme_set_rules(acting_user=ministry, programme=programme, eligibility_rule="household.size >= 2")
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
                    "national_id": "123456/10/1",
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


def pdf_page_size_mm(pdf: bytes) -> tuple[float, float]:
    box = re.search(rb"/MediaBox\s*\[\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*\]", pdf)
    return float(box.group(3)) / POINTS_PER_MM, float(box.group(4)) / POINTS_PER_MM


def test_a_household_is_referred_slip_printed_and_the_agency_accepts(live_server, browser, samfya_window):
    household = samfya_window
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def shot(step, *, full_page=True):
        page.screenshot(path=str(ARTIFACTS / f"referrals-{step}.png"), full_page=full_page)

    def log_in(username):
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("button", name="Log out").wait_for()

    # The window: the household's page lists the programmes it is eligible for.
    log_in("desk")
    page.goto(f"{live_server.url}/households/{household.pk}/")
    panel = page.locator("#programmes")
    panel.get_by_text("Social Cash Transfer").first.wait_for()
    panel.get_by_role("link", name="Refer to Social Cash Transfer").click()

    page.get_by_role("heading", name="Refer to Social Cash Transfer").wait_for()
    assert page.get_by_label("Programme").input_value() == "SCT"
    # A household programme: the member box stays out of the way.
    # The page's script hides it once loaded: wait for that rather than race it.
    page.get_by_label("Member referred").wait_for(state="hidden")
    page.get_by_label("Why the household is referred").fill("Two children, no income since the harvest failed.")
    page.get_by_label("Priority").select_option("high")
    shot("1-refer-form")
    page.get_by_role("button", name="Send the referral").click()

    referral = Referral.objects.get(household=household)
    page.get_by_role("heading", name=f"Referral {referral.number}").wait_for()
    assert "sent to Ministry of Community Development" in page.locator(".messages").inner_text()
    assert "Civic Centre, Samfya Boma" in page.locator("main").inner_text()
    shot("2-referral-page")

    # The slip: A4, then the receipt printer; printed, the navigation is gone.
    page.get_by_role("link", name="Print the slip").click()
    slip = page.locator("article.slip")
    slip.wait_for()
    assert referral.number in slip.inner_text() and "Mary Mwansa" in slip.inner_text()
    assert slip.locator("svg.slip-qr title").text_content() == referral.number
    shot("3-slip-a4-screen")
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    assert not page.locator(".slip-toolbar").is_visible()
    shot("4-slip-a4-print")
    a4 = page.pdf(prefer_css_page_size=True, print_background=True)
    (ARTIFACTS / "referrals-slip-a4.pdf").write_bytes(a4)
    width, height = pdf_page_size_mm(a4)
    assert round(width) == 210 and round(height) == 297
    page.emulate_media(media="screen")

    page.get_by_role("link", name="Receipt printer (80 mm)").click()
    page.locator("article.slip-receipt").wait_for()
    shot("5-slip-receipt-screen")
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 320, "height": 900})
    shot("6-slip-receipt-print")
    receipt = page.pdf(prefer_css_page_size=True, print_background=True)
    (ARTIFACTS / "referrals-slip-receipt.pdf").write_bytes(receipt)
    assert round(pdf_page_size_mm(receipt)[0]) == 80
    page.emulate_media(media="screen")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{live_server.url}/referrals/")
    page.get_by_role("link", name=referral.number, exact=True).wait_for()
    shot("7-worklist")
    page.get_by_role("button", name="Log out").click()

    # The agency: its officer scans the slip (the scanner types the number and Enter).
    log_in("officer_mcdss")
    page.get_by_role("link", name="Referrals", exact=True).click()
    page.get_by_role("heading", name="Referrals to Ministry of Community Development and Social Services").wait_for()
    shot("8-queue")
    box = page.get_by_role("textbox", name="Open a referral")
    assert box.evaluate("element => element === document.activeElement")
    box.fill(referral.number)
    box.press("Enter")
    page.get_by_role("heading", name=f"Referral {referral.number}").wait_for()
    page.get_by_role("button", name="Accept").click()
    page.locator(".messages", has_text="accepted").wait_for()
    assert page.locator(".referral-status").get_attribute("data-status") == "accepted"
    shot("9-referral-accepted")
    page.get_by_role("button", name="Log out").click()

    # The window again: the household page shows the referral accepted.
    log_in("desk")
    page.goto(f"{live_server.url}/households/{household.pk}/")
    referrals = page.locator("#referrals")
    assert "Accepted" in referrals.inner_text() and referral.number in referrals.inner_text()
    assert "Accepted" in page.locator("#programmes").inner_text()
    referrals.scroll_into_view_if_needed()
    shot("10-household-with-referrals")
    page.set_viewport_size({"width": 390, "height": 844})
    shot("11-household-phone")
    page.goto(f"{live_server.url}/referrals/")
    shot("12-worklist-phone")
    page.close()
    referral.refresh_from_db()
    assert referral.status == ReferralStatus.ACCEPTED
