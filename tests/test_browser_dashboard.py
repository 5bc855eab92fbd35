"""The district committee's dashboard in a real browser: a committee member of
Samfya opens the dashboard from the menu, filters by ward, follows a gap
figure to the households behind it (exactly those, in that ward), prints the
page on A4, and cannot reach Lunga's figures or households by changing the
address.

Saves screenshots (and the A4 print as PDF) to test-artifacts/ for a person to look at.
"""

import datetime

import pytest

from dashboard.summaries import summaries_refresh_district
from payments.tests.makers import enrol_active, make_cash_programme, make_officer
from programmes.models import Agency, AgencyKind
from programmes.services import eligibility_recompute_household, programme_set_rules
from registry.models import Relationship
from registry.services import MemberInput, household_register
from registry.tests.factories import UserFactory, make_district, make_village
from spf.models import Role

# The browser and its settings are the referral walk-through's: one way to start Chromium.
from .test_browser_referrals import ARTIFACTS, CHROMIUM, PASSWORD, browser, pdf_page_size_mm  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"),
]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def _household(desk, village, surname: str, *, people: int, child: bool = False):
    members = [
        MemberInput(
            values={
                "first_name": "Mary" if index == 0 else f"Child{index}",
                "last_name": surname,
                "sex": "F",
                "relationship": Relationship.HEAD if index == 0 else Relationship.CHILD,
                "date_of_birth": datetime.date(2024, 3, 1) if child and index else datetime.date(1985, 4, 2),
            }
        )
        for index in range(people)
    ]
    household = household_register(acting_user=desk, village=village, members=members, duplicates_confirmed=True)
    eligibility_recompute_household(household_id=household.pk)
    return household


@pytest.fixture
def two_districts(transactional_db, monkeypatch):
    """Samfya (two wards) and Lunga, a cash transfer for households of two or more, counted."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # the test makes between browser steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    samfya, lunga = make_district("SAM", "Samfya"), make_district("LUN", "Lunga")
    chisenga, kasaba, lunga_village = make_village(samfya, "1"), make_village(samfya, "2"), make_village(lunga, "1")
    ministry = UserFactory(username="ministry", role=Role.MINISTRY)
    UserFactory(username="committee", first_name="Esther", last_name="Bwalya", role=Role.COMMITTEE, districts=[samfya])
    desk = UserFactory(username="desk", role=Role.FRONT_DESK, districts=[samfya, lunga])
    agency = Agency.objects.create(
        code="MCDSS", name="Ministry of Community Development and Social Services", kind=AgencyKind.MINISTRY
    )
    maker, checker = (make_officer(agency, [samfya, lunga], name=name) for name in ("maker", "checker"))
    programme = make_cash_programme(agency=agency, districts=[samfya, lunga], ministry_user=ministry, capacity=10)
    programme.name = "Social Cash Transfer"
    programme.save()
    programme_set_rules(
        acting_user=ministry, programme=programme, eligibility_rule="household.size >= 2", benefit_formula="150"
    )
    ward_1 = [_household(desk, chisenga, name, people=2) for name in ("Mwansa", "Chanda", "Phiri")]
    ward_2 = [_household(desk, kasaba, name, people=3, child=True) for name in ("Banda", "Tembo")]
    _household(desk, kasaba, "Zulu", people=1)  # alone: not eligible
    lunga_gap = _household(desk, lunga_village, "Lungu", people=2)
    enrol_active(household=ward_1[0], programme=programme, maker=maker, checker=checker)
    enrol_active(household=ward_2[0], programme=programme, maker=maker, checker=checker)
    for district in (samfya, lunga):
        summaries_refresh_district(district_id=district.pk)
    return {
        "samfya": samfya,
        "lunga": lunga,
        "ward_2": kasaba.parent,
        "ward_2_gap": ward_2[1],
        "ward_1": ward_1,
        "lunga_gap": lunga_gap,
    }


def test_a_committee_member_filters_by_ward_follows_a_gap_to_its_households_and_cannot_reach_another_district(
    live_server,
    browser,  # noqa: F811 - the fixture imported above
    two_districts,
):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()

    def shot(step, *, phone_too=False):
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{step}.png"), full_page=True)
        if phone_too:
            page.set_viewport_size(PHONE)
            page.screenshot(path=str(ARTIFACTS / f"dashboard-{step}-phone.png"), full_page=True)
            page.set_viewport_size(DESKTOP)

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("committee")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Log out").wait_for()

    # From the menu to the district's dashboard: the whole district first.
    page.get_by_role("link", name="Dashboard").click()
    page.get_by_role("heading", name="District dashboard").wait_for()
    assert "Samfya · all wards" in page.locator(".dash-where").inner_text()
    assert "Figures as of" in page.locator(".freshness").inner_text()
    gap_column = page.locator("#table-coverage thead th").all_text_contents().index("Gap: eligible, not enrolled")
    whole_row = page.locator("#table-coverage tbody tr").first
    assert whole_row.locator("th, td").nth(gap_column).inner_text() == "3"
    # The charts are drawn from our own static files.
    page.locator("canvas#chart-coverage_by_month").wait_for()
    assert page.evaluate("typeof Chart") == "function"
    shot("1-district", phone_too=True)

    # Filter by ward 2: the figures narrow to it.
    page.get_by_label("Ward", exact=True).select_option(label="Ward 2 of Samfya")
    page.get_by_role("button", name="Show").click()
    page.wait_for_url("**ward=*")
    assert "Ward 2 of Samfya" in page.locator(".dash-where").inner_text()
    gap = page.locator("#table-coverage tbody tr").first.locator("th, td").nth(gap_column)
    assert gap.inner_text() == "1"
    shot("2-ward")

    # Follow the gap figure: the households behind it, exactly those.
    gap.get_by_role("link").click()
    page.get_by_role("heading", name="Households eligible for Social Cash Transfer and not enrolled in it").wait_for()
    listed = page.locator("table.dash-households tbody tr").all_inner_texts()
    assert len(listed) == 1 and two_districts["ward_2_gap"].number in listed[0]
    shot("3-gap-households", phone_too=True)

    # Back, and printed for the meeting: A4, without the menu or the filters.
    page.get_by_role("link", name="Back to the dashboard").click()
    page.get_by_role("heading", name="District dashboard").wait_for()
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    assert not page.locator(".dash-filter").is_visible()
    a4 = page.pdf(prefer_css_page_size=True, print_background=True)
    (ARTIFACTS / "dashboard-a4.pdf").write_bytes(a4)
    width, height = pdf_page_size_mm(a4)
    assert round(width) == 210 and round(height) == 297
    shot("4-print")
    page.emulate_media(media="screen")

    # Lunga by changing the address: not found, its figures and its households alike.
    lunga = two_districts["lunga"]
    for address in (
        f"/dashboard/?district={lunga.pk}",
        f"/dashboard/households/?district={lunga.pk}&figure=coverage&state=gap_any",
        f"/dashboard/export/coverage.csv?district={lunga.pk}",
    ):
        response = page.goto(f"{live_server.url}{address}")
        assert response.status == 404, address
    shot("5-other-district")
    # Nor by leaving the district out: the list behind Samfya's figure never holds a Lunga household.
    page.goto(f"{live_server.url}/dashboard/households/?figure=coverage&state=gap_any")
    listed = " ".join(page.locator("table.dash-households tbody tr").all_inner_texts())
    assert two_districts["lunga_gap"].number not in listed
    assert two_districts["ward_2_gap"].number in listed
    context.close()
