"""A grievance in a real browser, from the household page to closed: record it (a first try
with a missing field, the error beside it), acknowledge, print the slip (A4 and receipt),
assign it to a colleague, who resolves it, and close it with the person's answer. The
worklist and the household page after, at desktop and phone width.

Saves screenshots (and the slip as PDF) to test-artifacts/ for a person to look at.
"""

import datetime
import re
from pathlib import Path

import pytest

from grievances.models import Grievance, GrievanceStatus
from programmes.models import Agency, AgencyKind, Programme, ProgrammeDistrict, ProgrammeKind, ProgrammeStatus
from programmes.services import eligibility_recompute_household, programme_set_rules
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
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}

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
    UserFactory(username="desk2", first_name="Joseph", last_name="Banda", role=Role.FRONT_DESK, districts=[samfya])
    ministry = UserFactory(username="ministry", role=Role.MINISTRY)
    mcdss = Agency.objects.create(
        code="MCDSS", name="Ministry of Community Development and Social Services", kind=AgencyKind.MINISTRY
    )
    programme = Programme.objects.create(
        code="SCT",
        name="Social Cash Transfer",
        agency=mcdss,
        auto_referral="off",
        description="Cash every month",
        kind=ProgrammeKind.CASH_TRANSFER,
        status=ProgrammeStatus.ACTIVE,
        currency="ZMW",
    )
    ProgrammeDistrict.objects.create(programme=programme, district=samfya)
    programme_set_rules(acting_user=ministry, programme=programme, eligibility_rule="household.size >= 3")
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


def test_a_grievance_is_recorded_acknowledged_printed_assigned_resolved_and_closed(live_server, browser, samfya_window):
    household = samfya_window
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport=DESKTOP)

    def shot(step, *, full_page=True):
        page.screenshot(path=str(ARTIFACTS / f"grievances-{step}.png"), full_page=full_page)

    def log_in(username):
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("button", name="Log out").wait_for()

    # The window: the household's page, its grievances section, and an appeal offered beside
    # the programme it was found not eligible for.
    log_in("desk")
    page.goto(f"{live_server.url}/households/{household.pk}/")
    section = page.locator("#grievances")
    assert "No grievance recorded" in section.inner_text()
    assert section.get_by_role("link", name=re.compile("Social Cash Transfer")).count() == 1
    section.get_by_role("link", name="Record a grievance").click()

    page.get_by_role("heading", name="Record a grievance").wait_for()
    assert page.get_by_label("Household member").input_value() == str(household.head_id)
    page.get_by_label("Category").select_option("data_correction")
    shot("1-record-form")
    # Forgot what happened: the error is beside the field, the choices kept.
    page.get_by_role("button", name="Record the grievance").click()
    error = page.locator(".has-error", has=page.locator("#id_description"))
    error.get_by_text("Write what the person says happened").wait_for()
    assert page.get_by_label("Category").input_value() == "data_correction"
    shot("2-record-error")
    page.get_by_label("What the person says happened").fill(
        "Her national ID is on the card with one digit wrong, so the pay point turned her away."
    )
    page.get_by_label("Received by").select_option("walk_in")
    page.get_by_role("button", name="Record the grievance").click()

    grievance = Grievance.objects.get(household=household)
    page.get_by_role("heading", name=f"Grievance {grievance.number}").wait_for()
    assert "recorded" in page.locator(".messages").inner_text()
    assert page.locator(".grievance-status").get_attribute("data-status") == "received"
    shot("3-grievance-received")

    page.get_by_role("button", name="Acknowledge").click()
    page.locator(".messages", has_text="acknowledged").wait_for()
    assert page.locator(".grievance-status").get_attribute("data-status") == "acknowledged"
    shot("4-grievance-acknowledged")

    # The slip: A4, then the receipt printer; printed, the navigation is gone.
    page.get_by_role("link", name="Print the slip").click()
    slip = page.locator("article.grievance-slip")
    slip.wait_for()
    assert grievance.number in slip.inner_text() and "Mary Mwansa" in slip.inner_text()
    assert slip.locator("svg.slip-qr title").text_content() == grievance.number
    assert grievance.due_date.strftime("%-d %B %Y") in slip.inner_text()
    shot("5-slip-a4-screen")
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    assert not page.locator(".slip-toolbar").is_visible()
    shot("6-slip-a4-print")
    a4 = page.pdf(prefer_css_page_size=True, print_background=True)
    (ARTIFACTS / "grievances-slip-a4.pdf").write_bytes(a4)
    width, height = pdf_page_size_mm(a4)
    assert round(width) == 210 and round(height) == 297
    page.emulate_media(media="screen")
    page.get_by_role("link", name="Receipt printer (80 mm)").click()
    page.locator("article.slip-receipt").wait_for()
    shot("7-slip-receipt-screen")
    page.emulate_media(media="print")
    page.set_viewport_size({"width": 320, "height": 900})
    receipt = page.pdf(prefer_css_page_size=True, print_background=True)
    (ARTIFACTS / "grievances-slip-receipt.pdf").write_bytes(receipt)
    assert round(pdf_page_size_mm(receipt)[0]) == 80
    shot("8-slip-receipt-print")
    page.emulate_media(media="screen")
    page.set_viewport_size(DESKTOP)

    # Assign it to a colleague.
    page.get_by_role("link", name="‹ Back").click()
    page.get_by_text("Assign…").click()
    page.get_by_label("Assign to an officer").select_option(label="Joseph Banda (front-desk officer)")
    page.get_by_label("What to look into").fill("Check the NRC against the registry record.")
    shot("9-assign-form")
    page.get_by_role("button", name="Assign", exact=True).click()
    page.locator(".messages", has_text="assigned").wait_for()
    page.get_by_role("button", name="Log out").click()

    # The colleague finds it in the worklist, assigned to them, and resolves it.
    log_in("desk2")
    page.get_by_role("link", name="Grievances", exact=True).click()
    page.get_by_role("heading", name="Grievances and appeals").wait_for()
    page.get_by_role("link", name=re.compile("^Assigned to me")).click()
    page.get_by_role("link", name=grievance.number, exact=True).wait_for()
    shot("10-worklist-assigned-to-me")
    page.set_viewport_size(PHONE)
    shot("11-worklist-phone")
    page.set_viewport_size(DESKTOP)
    page.get_by_role("link", name=grievance.number, exact=True).click()
    page.get_by_text("Resolve…").click()
    page.get_by_label("Resolution").fill("The national ID was corrected from her NRC; she can collect next month.")
    page.get_by_role("button", name="Resolve", exact=True).click()
    page.locator(".messages", has_text="resolved").wait_for()
    page.get_by_role("button", name="Log out").click()

    # The window tells her and closes it with her answer.
    log_in("desk")
    page.goto(f"{live_server.url}/grievances/{grievance.number}/")
    page.get_by_text("Close…").click()
    page.get_by_label("Yes, the person accepted the resolution").check()
    page.get_by_role("button", name="Close", exact=True).click()
    page.locator(".messages", has_text="closed").wait_for()
    assert page.locator(".grievance-status").get_attribute("data-status") == "closed"
    history = page.locator("#history-title").locator("xpath=..").inner_text()
    for words in ("Grievance recorded", "Agnes Chanda", "Joseph Banda", "Assigned to: Joseph Banda"):
        assert words in history
    shot("12-grievance-closed")
    page.set_viewport_size(PHONE)
    shot("13-grievance-closed-phone")
    page.set_viewport_size(DESKTOP)

    page.goto(f"{live_server.url}/households/{household.pk}/")
    section = page.locator("#grievances")
    assert grievance.number in section.inner_text() and "Closed" in section.inner_text()
    section.scroll_into_view_if_needed()
    shot("14-household-with-grievance", full_page=False)
    page.set_viewport_size(PHONE)
    section.scroll_into_view_if_needed()
    shot("15-household-phone", full_page=False)
    page.close()
    grievance.refresh_from_db()
    assert grievance.status == GrievanceStatus.CLOSED and grievance.resolution_accepted is True
    assert grievance.events.count() == 5
