"""The catalogue, the household's programmes panel and the admin rule editor in
a real browser, saving screenshots to test-artifacts/ for a person to look at."""

from pathlib import Path

import pytest

from programmes.services import eligibility_recompute_household
from registry.tests.factories import UserFactory, make_district, make_village
from spf.models import Role

from .catalogue_helpers import SCHOOL_AGE, grandmother_and_two, make_programme, unknown_ages

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
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
def district(transactional_db, monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    samfya = make_district("SAM", "Samfya")
    village = make_village(samfya)
    ministry = UserFactory(username="minister", first_name="Ruth", last_name="Banda", role=Role.MINISTRY, is_staff=True)
    UserFactory(username="desk", first_name="Agnes", last_name="Chanda", role=Role.FRONT_DESK, districts=[samfya])
    make_programme(
        code="SCT",
        name="Social Cash Transfer",
        districts=[samfya],
        acting_user=ministry,
        description="Cash every month for poor households who cannot work: older people, people with a "
        "disability, and those caring for many children.",
        documents=["National registration card of the head", "A letter from the village headman"],
    )
    make_programme(
        code="HGSF",
        name="Home Grown School Feeding",
        districts=[samfya],
        acting_user=ministry,
        rule=SCHOOL_AGE,
        formula="",
        kind="school_feeding",
        frequency="termly",
        enrolment_mode="direct",
        description="A hot meal every school day for children aged 6 to 14.",
        documents=["The child's school enrolment letter"],
    )
    make_programme(
        code="FSP",
        name="Food Security Pack",
        districts=[samfya],
        acting_user=ministry,
        kind="in_kind",
        rule="household.size >= 8",
        formula="",
        frequency="annual",
        description="Seed and fertiliser for farming households with land but no means to plant it.",
    )
    household = grandmother_and_two(village)
    eligibility_recompute_household(household_id=household.pk)
    unsure = unknown_ages(village)
    eligibility_recompute_household(household_id=unsure.pk)
    return household


def log_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def test_the_catalogue_and_the_household_panel(live_server, browser, district):
    ARTIFACTS.mkdir(exist_ok=True)
    for width, name in ((1280, "desktop"), (390, "phone")):
        page = browser.new_page(viewport={"width": width, "height": 900})
        log_in(page, live_server.url, "desk")
        page.goto(f"{live_server.url}/programmes/")
        page.get_by_role("heading", name="Social Cash Transfer").wait_for()
        page.screenshot(path=str(ARTIFACTS / f"programmes-{name}-catalogue.png"), full_page=True)

        page.goto(f"{live_server.url}/households/{district.pk}/")
        panel = page.locator("#programmes")
        panel.get_by_text("Eligible").first.wait_for()
        panel.screenshot(path=str(ARTIFACTS / f"programmes-{name}-household-panel.png"))
        page.get_by_role("button", name="Re-check now").click()
        page.get_by_text("Re-checked now").wait_for()
        page.screenshot(path=str(ARTIFACTS / f"programmes-{name}-household-rechecked.png"), full_page=True)
        page.close()


def test_the_admin_rule_editor_with_a_preview_and_an_error(live_server, browser, district):
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("minister")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()
    from programmes.models import Programme

    sct = Programme.objects.get(code="SCT")
    page.goto(f"{live_server.url}/admin/programmes/programme/{sct.pk}/rules/")
    # The preview comes by itself after a pause in typing.
    page.get_by_label("Eligibility rule").fill("household.size >= 2")
    page.get_by_text("Preview of the draft").wait_for()
    assert page.url.endswith("/rules/")
    page.screenshot(path=str(ARTIFACTS / "programmes-admin-rule-preview.png"), full_page=True)

    page.get_by_label("Eligibility rule").fill("household.size >= 2 &&\n  household.members.exists(m, m.agee > 60)")
    page.get_by_role("button", name="Save as a new version").click()
    page.locator(".rule-pointer").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "programmes-admin-rule-error.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/programmes/programme/{sct.pk}/change/")
    page.screenshot(path=str(ARTIFACTS / "programmes-admin-programme-change.png"), full_page=True)
