"""The front desk in a real browser: log in, search, register a household of
two people past an error and a duplicate warning, and read its page.

Runs at a desktop width and at a 390px phone width, saving screenshots to
test-artifacts/ for a person to look at.
"""

import datetime
from pathlib import Path

import pytest

from registry.models import Household
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
def samfya_desk(transactional_db, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # the test makes between browser steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    samfya = make_district("SAM", "Samfya")
    village = make_village(samfya)
    officer = UserFactory(
        username="desk", first_name="Agnes", last_name="Chanda", role=Role.FRONT_DESK, districts=[samfya]
    )
    household_register(
        acting_user=officer,
        village=village,
        phone="0977 123 456",
        members=[
            MemberInput(
                values={
                    "first_name": "Mary",
                    "last_name": "Mwansa",
                    "sex": "F",
                    "date_of_birth": datetime.date(1980, 5, 17),
                    "relationship": "head",
                    "national_id": "123456/10/1",
                }
            )
        ],
    )
    return village


@pytest.mark.parametrize("width, height, name", [(1280, 900, "desktop"), (390, 844, "phone")])
def test_an_officer_finds_nobody_registers_a_household_and_reads_its_page(
    live_server, browser, samfya_desk, width, height, name
):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": width, "height": height})

    def shot(step):
        page.screenshot(path=str(ARTIFACTS / f"frontdesk-{name}-{step}.png"), full_page=True)
        # What the officer sees first, readable without zooming into a long page.
        page.screenshot(path=str(ARTIFACTS / f"frontdesk-{name}-{step}-screen.png"))

    page.goto(f"{live_server.url}/")
    page.get_by_label("Username").fill("desk")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    search_box = page.get_by_role("searchbox")
    assert search_box.evaluate("element => element === document.activeElement")
    shot("1-search")

    search_box.fill("Zebedayo Kunda")
    search_box.press("Enter")
    page.get_by_text("No household found").wait_for()
    shot("2-no-results")

    page.get_by_role("searchbox").fill("marry mwanza")
    page.get_by_role("searchbox").press("Enter")
    page.get_by_role("link", name="Mary Mwansa").wait_for()
    shot("3-found")

    page.get_by_role("link", name="Register", exact=True).click()
    page.get_by_label("Village").select_option(label="Village 1 of Samfya")
    page.get_by_label("Household phone").fill("0966 200 300")
    first = page.locator("fieldset[data-member-form]").nth(0)
    first.get_by_label("First name").fill("Mary")
    first.get_by_label("Surname").fill("Mwanza")
    first.get_by_label("Sex").select_option("F")
    first.get_by_label("Date of birth").fill("1980-05-17")
    # The warning while typing, beside the member.
    first.locator("[data-dup-hint]").get_by_text("May already be registered").wait_for()
    shot("4-duplicate-while-typing")

    second = page.locator("fieldset[data-member-form]").nth(1)
    second.get_by_label("First name").fill("Joseph")
    second.get_by_label("Surname").fill("Mwanza")
    second.get_by_label("Sex").select_option("M")
    second.get_by_label("year of birth").fill("2012")
    second.get_by_label("Relationship to the head").select_option("child")
    second.get_by_label("NRC number").fill("12/34")
    page.get_by_role("button", name="Register household").click()
    second.locator(".error", has_text="NRC number must look like 123456/10/1.").wait_for()
    page.get_by_role("link", name="Member 2, NRC number: NRC number must look like 123456/10/1.").wait_for()
    assert page.locator("fieldset[data-member-form]").nth(1).get_by_label("First name").input_value() == "Joseph"
    shot("5-error-kept-input")

    page.locator("fieldset[data-member-form]").nth(1).get_by_label("NRC number").fill("")
    page.get_by_role("button", name="Register household").click()
    page.get_by_role("heading", name="These people may already be registered").wait_for()
    shot("6-duplicate-on-submit")
    assert Household.objects.count() == 1

    page.get_by_label("None of these is the same person — register anyway").check()
    page.get_by_role("button", name="Register household").click()
    page.get_by_role("heading", name="Household SAM-000002").wait_for()
    members = page.locator(".members-table")
    assert "Mary Mwanza" in members.inner_text() and "Joseph Mwanza" in members.inner_text()
    assert "(est.)" in members.inner_text()
    history = page.locator("#history").inner_text()
    assert "Household registered" in history and "Member added: Joseph Mwanza" in history
    shot("7-household")

    # A member added with the button (JavaScript) is posted with the others.
    page.get_by_role("link", name="Register", exact=True).click()
    page.get_by_role("button", name="+ Add another member").click()
    assert page.locator("fieldset[data-member-form]").count() == 4
    assert page.locator("input[name='members-3-first_name']").evaluate("e => e === document.activeElement")
    page.close()
