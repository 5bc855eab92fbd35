"""Partner systems in a real browser: ministry staff register the national social registry's
system, issue its token (shown once), register its signing key; its system searches; staff read
its messages. Saves screenshots to test-artifacts/ for a person to look at."""

import base64
import datetime
import json
import re
import urllib.request

import pytest

from interop.dci import ed25519
from programmes.models import Agency, AgencyKind
from registry.models import Relationship
from registry.tests.factories import UserFactory, make_district, make_village
from spf.models import Role
from tests.test_browser_referrals import ARTIFACTS, CHROMIUM, PASSWORD, browser  # noqa: F401

from .makers import PARTNER_SEED, define_attributes, envelope, person, register, search_message, search_request, sign

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium"),
]


@pytest.fixture
def ministry_and_registry(transactional_db, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls
    # the test makes between browser steps are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    samfya, lunga = make_district("SAM", "Samfya"), make_district("LUN", "Lunga")
    make_district("MAN", "Mansa")
    desk = UserFactory(username="desk", role=Role.FRONT_DESK, districts=[samfya])
    UserFactory(username="ministry", first_name="Chanda", last_name="Mulenga", role=Role.MINISTRY, is_staff=True)
    Agency.objects.create(code="MCDSS", name="Ministry of Community Development", kind=AgencyKind.MINISTRY)
    define_attributes()
    register(
        desk,
        make_village(samfya),
        [
            person("Mary", "Mwansa", "F", datetime.date(1970, 3, 4), national_id="111111/11/1"),
            person("Bupe", "Mwansa", "F", datetime.date(2015, 1, 1), relationship=Relationship.CHILD),
        ],
        pmt="3.5",
    )
    return samfya, lunga


def dci_post(url: str, body: dict, token: str) -> dict:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def test_ministry_staff_set_up_a_partner_and_read_its_messages(live_server, browser, ministry_and_registry):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def shot(step):
        page.screenshot(path=str(ARTIFACTS / f"interop-{step}.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill("ministry")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()

    # Register the partner: its code, its districts, what it may do.
    page.goto(f"{live_server.url}/admin/interop/partner/add/")
    page.get_by_label("Code").fill("nsr.gov.zm")
    page.get_by_label("Name").fill("National Social Registry")
    page.locator("#id_districts_from").select_option(label="Samfya")
    page.locator("#id_districts_add").click()
    page.get_by_label("May search the registry").check()
    page.get_by_label("Callback url").fill("https://nsr.example.gov/dci")
    shot("1-register")
    page.get_by_role("button", name="Save and continue editing").click()
    page.get_by_text("Issue a token").first.wait_for()
    shot("2-partner")

    # A token, shown once.
    page.get_by_role("link", name="Issue a token").first.click()
    page.get_by_label("Label").fill("production gateway")
    shot("3-issue-token")
    page.get_by_role("button", name="Issue the token").click()
    token = page.locator("#dci-token").inner_text().strip()
    assert re.fullmatch(r"dci_[A-Za-z0-9_-]{43}", token)
    shot("4-token-issued")

    # Its signing key.
    page.get_by_role("link", name="Back to National Social Registry").click()
    page.get_by_role("link", name="Add a signing key").click()
    page.get_by_label("Key id").fill("key-2026-1")
    page.get_by_label("Public key").fill(base64.b64encode(ed25519.public_key(PARTNER_SEED)).decode())
    shot("5-add-key")
    page.get_by_role("button", name="Add the key").click()
    page.get_by_text("must now be signed").wait_for()
    shot("6-partner-with-token-and-key")

    # Its system searches: once signed, once not (refused, not logged), once with a bad page size.
    for query, pagination in (
        ({"type": "UIN", "value": "111111/11/1"}, None),
        ({"type": "UIN", "value": "1"}, {"page_size": 0}),
    ):
        request = search_request(query, **({"pagination": pagination} if pagination else {}))
        body = sign(envelope(search_message(request), sender_id="nsr.gov.zm"), sender_id="nsr.gov.zm")
        answer = dci_post(f"{live_server.url}/dci/registry/sync/search", body, token)
        assert answer["header"]["status"] == "succ"

    page.goto(f"{live_server.url}/admin/interop/transaction/")
    page.get_by_text("Social Registry: search (sync)").first.wait_for()
    shot("7-transactions")
    page.locator("#result_list tbody tr a").first.click()
    page.get_by_text("requests in the message", exact=False).first.wait_for()
    shot("8-transaction")

    page.goto(f"{live_server.url}/admin/interop/partner/")
    shot("9-partners")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/admin/interop/partner/")
    shot("10-partners-phone")
