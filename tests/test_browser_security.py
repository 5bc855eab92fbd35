"""The Content-Security-Policy in a real browser: ministry staff log in and open one page of every kind (front-desk
search, household, programme, referral worklist, payment cycle, grievance worklist, the dashboard with its charts,
admin change forms with inlines, the rule editor's live preview, a date picker, the partner admin, the API docs),
and Chromium reports no violation; the lockout page after five wrong passwords neither.

Violations are caught twice: the `securitypolicyviolation` events of each page (an init script records them) and
Chromium's console messages. Screenshots go to test-artifacts/security-*.png for a person to look at (a page
whose stylesheet was refused looks broken there at once).
"""

import pytest

from grievances.services import grievance_register
from interop.tests.makers import partner
from payments.payroll import payment_cycle_create, payroll_generate
from payments.tests.makers import enrol_active, first_of_month, make_cash_programme, make_officer
from programmes.services import eligibility_recompute_household
from referrals.services import referral_create
from referrals.tests.makers import make_agency, make_household, make_programme
from registry.tests.factories import UserFactory, make_district, make_village
from spf.models import Role

# One way to start Chromium, the referral walk-through's.
from .test_browser_referrals import ARTIFACTS, CHROMIUM, PASSWORD, browser  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"),
]

RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (event) {
  window.__cspViolations.push({
    directive: event.violatedDirective, blocked: event.blockedURI, source: event.sourceFile,
    line: event.lineNumber, sample: event.sample
  });
});
"""


@pytest.fixture
def office(transactional_db, monkeypatch):
    """Samfya with a programme, households referred, enrolled, paid and complaining; a partner system."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # the test makes between browser steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from dashboard.summaries import summaries_refresh_district

    samfya = make_district("SAM", "Samfya")
    village = make_village(samfya)
    root = UserFactory(
        username="ministry",
        first_name="Chanda",
        last_name="Mulenga",
        role=Role.MINISTRY,
        is_staff=True,
        is_superuser=True,
    )
    desk = UserFactory(username="desk", role=Role.FRONT_DESK, districts=[samfya])
    agency = make_agency("MCDSS")
    maker, checker = (make_officer(agency, [samfya], name=name) for name in ("maker", "checker"))
    cash = make_cash_programme(agency=agency, districts=[samfya], ministry_user=root)
    referred = make_programme(code="HIW", agency=agency, districts=[samfya])
    households = [
        make_household(officer=desk, village=village, last_name=name) for name in ("Mwansa", "Chanda", "Phiri")
    ]
    for household in households:
        eligibility_recompute_household(household_id=household.pk)
    referral_create(acting_user=desk, household=households[1], programme=referred)
    enrol_active(household=households[0], programme=cash, maker=maker, checker=checker)
    cycle = payment_cycle_create(acting_user=maker, programme=cash, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    grievance_register(
        acting_user=desk,
        category="other",
        description="The pay point was closed on pay day.",
        household=households[2],
        complainant_name="Mary Phiri",
    )
    summaries_refresh_district(district_id=samfya.pk)
    nsr = partner(root, [samfya])
    return {"household": households[0], "programme": cash, "cycle": cycle, "partner": nsr, "desk": desk}


def REDOCLY_LOGO_REFUSED(violation) -> bool:  # noqa: N802 - reads as the constant it stands for
    text = violation if isinstance(violation, str) else f"{violation['directive']} {violation['blocked']}"
    return "img-src" in text and "https://cdn.redoc.ly/" in text


class PageWatch:
    """A browser page that keeps every CSP violation it hears of, by event and by console message."""

    def __init__(self, context):
        # A loaded two-core machine (the whole suite, other jobs) can take more than Playwright's 30 s default
        # for the admin's heaviest pages; nothing here is about speed.
        context.set_default_timeout(120_000)
        context.add_init_script(RECORD_VIOLATIONS)
        self.page = context.new_page()
        self.console: list[str] = []
        self.page.on("console", self._console)
        self.found: dict[str, list] = {}

    def _console(self, message) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.console.append(text)

    def check(self, name: str, *, full_page: bool = True) -> None:
        """Record what this page violated (events and console), and take its picture."""
        self.page.wait_for_load_state("networkidle")
        events = self.page.evaluate("window.__cspViolations || []")
        if events or self.console:
            self.found[name] = events + self.console
        self.console = []
        self.page.screenshot(path=str(ARTIFACTS / f"security-{name}.png"), full_page=full_page)

    def visit(self, name: str, url: str, ready: str, *, full_page: bool = True) -> None:
        self.page.goto(url)
        self.page.locator(ready).first.wait_for()
        self.check(name, full_page=full_page)


def test_every_kind_of_page_runs_under_the_policy_without_a_violation(
    live_server,
    browser,  # noqa: F811 - the fixture imported above
    office,
):
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    watch = PageWatch(context)
    page, base = watch.page, live_server.url
    household, programme, cycle = office["household"], office["programme"], office["cycle"]

    page.goto(f"{base}/accounts/login/")
    watch.check("login")
    page.get_by_label("Username").fill("ministry")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("button", name="Log out").wait_for()

    # The front desk and the pages behind it.
    watch.visit("search", f"{base}/?q=Mwansa", "main h1")
    watch.visit("household", f"{base}/households/{household.pk}/", "main h1")
    watch.visit("programme", f"{base}/programmes/{programme.code}/", "main h1")
    watch.visit("referral-worklist", f"{base}/referrals/", "main h1")
    watch.visit("payment-cycle", f"{base}/payments/cycles/{cycle.pk}/", "main h1")
    watch.visit("grievance-worklist", f"{base}/grievances/", "main h1")
    watch.visit("register", f"{base}/households/new/", "main h1")
    page.get_by_role("button", name="Add another member").click()  # a member's fields from a <template>
    watch.check("register-two-members")

    # The dashboard draws its charts with Chart.js (which styles through the CSSOM, allowed).
    watch.visit("dashboard", f"{base}/dashboard/", "canvas[data-chart]")
    charts = page.evaluate(
        "Array.from(document.querySelectorAll('canvas[data-chart]')).filter(c => Chart.getChart(c)).length"
    )
    assert charts >= 1, "Chart.js drew no chart"

    # The admin: change forms with inlines (one added by its script), the rule editor, a date picker.
    watch.visit("admin-index", f"{base}/admin/", "#content h1")
    watch.visit("admin-programme", f"{base}/admin/programmes/programme/{programme.pk}/change/", ".inline-group")
    rows = page.locator(".inline-group tbody tr.form-row:not(.empty-form)")
    before = rows.count()
    page.locator(".inline-group .add-row a").first.click()
    assert rows.count() == before + 1, "the inline's script added a row"
    watch.check("admin-programme-inline-added")
    watch.visit("admin-household", f"{base}/admin/registry/household/{household.pk}/change/", ".inline-group")
    watch.visit("rule-editor", f"{base}/admin/programmes/programme/{programme.pk}/rules/", "#rule-form")
    page.locator("textarea").first.fill("household.size >= 1")
    page.locator("#preview .preview-box").wait_for()  # the live preview came back from the server
    watch.check("rule-editor-preview")
    partner_pk = office["partner"].pk
    watch.visit("admin-partner", f"{base}/admin/interop/partner/{partner_pk}/change/", "#content h1")
    watch.visit("admin-issue-token", f"{base}/admin/interop/partner/{partner_pk}/tokens/issue/", "form")
    page.locator(".datetimeshortcuts a").last.click()  # the calendar of the date field
    page.locator(".calendarbox").first.wait_for(state="visible")
    watch.check("admin-date-picker")
    watch.visit("admin-lockouts", f"{base}/admin/axes/accessattempt/", "#content h1")

    # The API docs: Swagger UI started by its own script, and ReDoc.
    # Both render every operation of the API: the first screen is the picture.
    watch.visit("api-docs", f"{base}/api/docs/", ".swagger-ui .info .title", full_page=False)
    watch.visit(
        "api-redoc", f"{base}/api/redoc/", "h1:has-text('Single-window social protection API')", full_page=False
    )
    assert page.locator("text=Agencies that run programmes").count() >= 1, "ReDoc styled and listed the operations"

    context.close()
    found = dict(watch.found)
    # ReDoc's footer always asks Redocly's server for its logo; img-src refuses it (nothing is loaded from
    # elsewhere) and ReDoc drops the image. That refusal, and only it, is expected.
    redoc = [v for v in found.pop("api-redoc", []) if not REDOCLY_LOGO_REFUSED(v)]
    if redoc:
        found["api-redoc"] = redoc
    assert not found, f"Content-Security-Policy violations: {found}"


def test_the_lockout_page_runs_under_the_policy(live_server, browser, office):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    watch = PageWatch(context)
    page = watch.page

    for _ in range(5):
        page.goto(f"{live_server.url}/accounts/login/")
        page.get_by_label("Username").fill("desk")
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Log in").click()
        page.locator("main h1").wait_for()

    assert page.locator("main h1").inner_text() == "Account locked"
    assert "Try again in 15 minutes" in page.locator("main").inner_text()
    watch.check("lockout")
    context.close()
    assert not watch.found, f"Content-Security-Policy violations: {watch.found}"
