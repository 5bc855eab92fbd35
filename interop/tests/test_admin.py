"""The partners' admin: ministry staff register a partner and its scope, issue a token (shown
once), revoke it, add and revoke signing keys, and read the partner's messages. Nobody else does."""

import base64
import re

import pytest
from django.contrib.admin.models import LogEntry

from interop.dci import ed25519
from interop.models import Partner, PartnerKey, PartnerToken, Transaction
from spf.models import Role

from .makers import envelope, post, search_message, search_request

URL = "/dci/registry/sync/search"


@pytest.fixture
def staff(client, ministry_user):
    client.force_login(ministry_user)
    return client


def add_form(samfya, **fields):
    data = {
        "code": "nsr.gov.zm",
        "name": "National Social Registry",
        "agency": "",
        "districts": [samfya.pk],
        "programmes": [],
        "can_search_registry": "on",
        "callback_url": "https://nsr.example.gov/dci",
        "callback_token": "",
        "pay_point": "",
        "active": "on",
        "notes": "Agreement of 2026-10-01.",
    }
    data.update(fields)
    return {key: value for key, value in data.items() if value is not None}


def test_ministry_staff_register_a_partner_with_its_districts(staff, samfya, ministry_user):
    response = staff.post("/admin/interop/partner/add/", add_form(samfya))

    assert response.status_code == 302, response.content.decode()[:2000]
    partner = Partner.objects.get(code="nsr.gov.zm")
    assert list(partner.service_user.districts.all()) == [samfya]
    assert partner.service_user.role == Role.COMMITTEE and not partner.service_user.has_usable_password()
    assert partner.created_by == ministry_user
    entry = LogEntry.objects.get(object_id=str(partner.pk))
    assert "Registered partner system nsr.gov.zm: districts SAM" in entry.change_message


def test_the_form_says_what_is_wrong_next_to_each_field(staff, samfya):
    response = staff.post(
        "/admin/interop/partner/add/",
        add_form(samfya, districts=[], can_search_registry=None, callback_url="ftp://nsr.example.gov"),
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "Choose the districts" in errors["districts"][0]
    assert "Allow at least one kind of exchange" in errors["can_search_registry"][0]
    assert "http(s) address" in errors["callback_url"][0]
    assert not Partner.objects.exists()


def test_changing_a_partners_districts_changes_what_it_sees(staff, nsr, samfya, lunga):
    response = staff.post(f"/admin/interop/partner/{nsr.pk}/change/", add_form(samfya, districts=[samfya.pk, lunga.pk]))

    assert response.status_code == 302
    nsr.refresh_from_db()
    assert set(nsr.service_user.districts.all()) == {samfya, lunga}
    assert nsr.code == "nsr.gov.zm"
    assert "districts: SAM → LUN, SAM" in LogEntry.objects.latest("action_time").change_message


def test_a_token_is_shown_once_works_and_is_revoked_from_the_admin(staff, client, nsr, mwansa):
    page = staff.post(f"/admin/interop/partner/{nsr.pk}/tokens/issue/", {"label": "production gateway"})

    assert page.status_code == 200 and "no-store" in page["Cache-Control"]
    raw = re.search(r'id="dci-token">(dci_[^<]+)<', page.content.decode()).group(1)
    token = PartnerToken.objects.get(partner=nsr)
    assert token.label == "production gateway"
    listing = staff.get(f"/admin/interop/partner/{nsr.pk}/change/").content.decode()
    assert token.prefix in listing and raw not in listing

    body = envelope(search_message(search_request({"type": "UIN", "value": "111111/11/1"})), sender_id="nsr.gov.zm")
    assert post(client, URL, body, raw).status_code == 200

    confirm = staff.get(f"/admin/interop/partner/{nsr.pk}/tokens/{token.pk}/revoke/")
    assert "cannot be undone" in confirm.content.decode()
    assert staff.post(f"/admin/interop/partner/{nsr.pk}/tokens/{token.pk}/revoke/").status_code == 302

    assert post(client, URL, body, raw).status_code == 401


def test_a_signing_key_is_checked_when_added(staff, nsr):
    bad = staff.post(f"/admin/interop/partner/{nsr.pk}/keys/add/", {"key_id": "k1", "public_key": "not-a-key"})
    assert bad.status_code == 400 and "32 bytes" in bad.content.decode()

    public = base64.b64encode(ed25519.public_key(bytes(range(32)))).decode()
    good = staff.post(f"/admin/interop/partner/{nsr.pk}/keys/add/", {"key_id": "k1", "public_key": public})

    assert good.status_code == 302
    assert PartnerKey.objects.get(partner=nsr).public_key == public
    repeated = staff.post(f"/admin/interop/partner/{nsr.pk}/keys/add/", {"key_id": "k1", "public_key": public})
    assert "already has a key k1" in repeated.content.decode()


def test_the_partner_page_gives_the_registrys_identity_and_endpoints(staff, nsr):
    from interop.dci.config import identity

    page = staff.get(f"/admin/interop/partner/{nsr.pk}/change/").content.decode()

    assert identity().public_key_base64 in page and identity().sender_id in page
    assert "/dci/registry/sync/search" in page and "/dci/registry/sync/enrollment/updates" in page


def test_staff_read_a_partners_messages_with_their_requests(staff, client, nsr, nsr_token, registry):
    body = envelope(
        search_message(search_request({"type": "UIN", "value": "111111/11/1"}, reference_id="r-7")),
        sender_id="nsr.gov.zm",
    )
    post(client, URL, body, nsr_token)
    row = Transaction.objects.get()

    listing = staff.get(f"/admin/interop/transaction/?partner__id__exact={nsr.pk}").content.decode()
    detail = staff.get(f"/admin/interop/transaction/{row.pk}/change/").content.decode()

    assert body["header"]["message_id"] in listing
    assert "r-7" in detail and "1 / 1 (page 1 of size 50)" in detail
    assert "Not kept: it may name people" in detail
    assert staff.get("/admin/interop/transaction/?q=r-7").context["cl"].result_count == 1


def test_nobody_but_ministry_staff_manages_partners(client, samfya):
    from registry.tests.factories import UserFactory

    officer = UserFactory(username="staff_officer", role=Role.FRONT_DESK, districts=[samfya], is_staff=True)
    client.force_login(officer)

    assert client.get("/admin/interop/partner/").status_code == 403
    assert client.get("/admin/interop/transaction/").status_code == 403
    assert client.post("/admin/interop/partner/add/", add_form(samfya)).status_code == 403
    assert not Partner.objects.exists()
