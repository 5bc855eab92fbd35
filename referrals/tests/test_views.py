"""The referral pages: refer from the household page, the referral page and its
actions, the slip and its QR code, the worklist and the agency's queue, the
notifications, and who may see what."""

import datetime
import re

import pytest
import segno
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from programmes.models import (
    Agency,
    AgencyKind,
    Programme,
    ProgrammeDistrict,
    ProgrammeKind,
    ProgrammeStatus,
    TargetUnit,
)
from programmes.services import eligibility_recompute_household, programme_set_rules
from referrals.models import (
    Delivery,
    DeliveryStatus,
    Notification,
    Referral,
    ReferralAttachment,
    ReferralEvent,
    ReferralStatus,
)
from referrals.services import referral_create, referral_transition
from registry.models import Relationship
from registry.services import MemberInput, household_register
from registry.tests.factories import UserFactory
from spf.models import Role

S = ReferralStatus


# --- the world: two agencies, their programmes, a household in each district ----------------


@pytest.fixture
def mcdss(db):
    return Agency.objects.create(
        code="MCDSS",
        name="Ministry of Community Development",
        kind=AgencyKind.MINISTRY,
        focal_point_name="District Social Welfare Officer",
        focal_point_title="DSWO",
        address="Civic Centre, Samfya",
        phone="0211 000000",
    )


@pytest.fixture
def moe(db):
    return Agency.objects.create(code="MOE", name="Ministry of Education", kind=AgencyKind.MINISTRY)


def make_programme(*, code, name, agency, districts, ministry_user, rule="household.size >= 2", **values):
    programme = Programme.objects.create(
        code=code,
        name=name,
        agency=agency,
        description=name,
        kind=ProgrammeKind.CASH_TRANSFER,
        status=ProgrammeStatus.ACTIVE,
        currency="ZMW",
        referral_sla_days=10,
        documents=["NRC of the head of household", "Under-five cards of the children"],
        **values,
    )
    for district in districts:
        ProgrammeDistrict.objects.create(programme=programme, district=district)
    programme_set_rules(acting_user=ministry_user, programme=programme, eligibility_rule=rule)
    programme.refresh_from_db()
    return programme


@pytest.fixture
def sct(mcdss, samfya, lunga, ministry_user):
    return make_programme(
        code="SCT", name="Social Cash Transfer", agency=mcdss, districts=[samfya, lunga], ministry_user=ministry_user
    )


@pytest.fixture
def bursary(moe, samfya, ministry_user):
    return make_programme(
        code="BURS",
        name="Secondary school bursary",
        agency=moe,
        districts=[samfya],
        ministry_user=ministry_user,
        target_unit=TargetUnit.INDIVIDUAL,
    )


def register_family(officer, village, surname):
    # Test families share first names and birthdays: not the duplicates the registry warns about.
    return household_register(
        acting_user=officer,
        village=village,
        phone="0977 123 456",
        duplicates_confirmed=True,
        members=[
            MemberInput(
                values={
                    "first_name": "Mary",
                    "last_name": surname,
                    "sex": "F",
                    "relationship": Relationship.HEAD,
                    "date_of_birth": datetime.date(1970, 1, 1),
                }
            ),
            MemberInput(
                values={
                    "first_name": "Bupe",
                    "last_name": surname,
                    "sex": "F",
                    "relationship": Relationship.CHILD,
                    "date_of_birth": datetime.date(2010, 1, 1),
                }
            ),
        ],
    )


@pytest.fixture
def mwansa(samfya_officer, samfya_village, sct, bursary):
    household = register_family(samfya_officer, samfya_village, "Mwansa")
    eligibility_recompute_household(household_id=household.pk)
    return household


@pytest.fixture
def lunga_household(lunga_officer, lunga_village, sct):
    return register_family(lunga_officer, lunga_village, "Banda")


@pytest.fixture
def officer_mcdss(mcdss, samfya):
    return UserFactory(
        username="officer_mcdss_t",
        first_name="Ruth",
        last_name="Phiri",
        role=Role.PROGRAMME_OFFICER,
        agency=mcdss,
        districts=[samfya],
    )


@pytest.fixture
def officer_moe(moe, samfya):
    return UserFactory(username="officer_moe_t", role=Role.PROGRAMME_OFFICER, agency=moe, districts=[samfya])


@pytest.fixture
def desk(client, samfya_officer):
    client.force_login(samfya_officer)
    return client


def logged_in(client, user):
    client.force_login(user)
    return client


def page_url(referral):
    return reverse("referrals:referral", args=[referral.number])


def move(client, referral, to_status, **data):
    return client.post(reverse("referrals:move", args=[referral.number]), {"to_status": to_status, **data})


# --- referring from the household page ------------------------------------------------------


def test_the_household_page_offers_refer_beside_eligible_programmes(desk, mwansa, sct):
    page = desk.get(reverse("frontdesk:household", args=[mwansa.pk])).content.decode()
    assert f"{reverse('referrals:refer', args=[mwansa.pk])}?programme=SCT" in page
    assert "No referrals yet." in page


def test_sending_a_referral_opens_its_page_with_where_to_go_and_what_to_bring(desk, mwansa, sct):
    form = desk.get(reverse("referrals:refer", args=[mwansa.pk]), {"programme": "SCT"})
    assert 'value="SCT" selected' in form.content.decode()
    response = desk.post(
        reverse("referrals:refer", args=[mwansa.pk]),
        {
            "programme": "SCT",
            "reason": "Large family, no one fit to work",
            "priority": "high",
            "action": "send",
        },
    )
    referral = Referral.objects.get(household=mwansa, programme=sct)
    assert response.status_code == 302 and response["Location"] == page_url(referral)
    assert referral.status == S.SENT and referral.priority == "high"
    page = desk.get(page_url(referral)).content.decode()
    for text in (
        "Civic Centre, Samfya",
        "District Social Welfare Officer",
        "Under-five cards of the children",
        referral.due_date.strftime("%-d %b %Y"),
        "Print the slip",
        "Cancel the referral",
    ):
        assert text in page
    assert "Referral made" in page and re.search(r"Draft</span> <span[^>]*>→</span> Sent", page)  # the timeline
    household_page = desk.get(reverse("frontdesk:household", args=[mwansa.pk])).content.decode()
    assert referral.number in household_page
    assert "?programme=SCT" not in household_page  # an open referral: no second Refer button


def test_a_suggestion_is_confirmed_with_one_click_from_the_household_page(desk, mwansa, sct):
    desk.post(
        reverse("referrals:refer", args=[mwansa.pk]), {"programme": "SCT", "priority": "normal", "action": "suggest"}
    )
    referral = Referral.objects.get(household=mwansa)
    assert referral.status == S.DRAFT and referral.due_date is None
    household_url = reverse("frontdesk:household", args=[mwansa.pk])
    assert "Confirm and send" in desk.get(household_url).content.decode()
    confirm = {"idempotency_key": f"confirm-{referral.number}", "next": household_url}
    assert move(desk, referral, "sent", **confirm)["Location"] == household_url
    move(desk, referral, "sent", **confirm)  # a double click
    referral.refresh_from_db()
    assert referral.status == S.SENT and referral.events.filter(to_status=S.SENT).count() == 1


def test_the_services_errors_appear_beside_the_fields(desk, mwansa, sct, bursary, samfya_officer):
    response = desk.post(
        reverse("referrals:refer", args=[mwansa.pk]), {"programme": "BURS", "priority": "normal", "action": "send"}
    )
    assert response.status_code == 400
    assert "serves individuals: choose the member referred" in response.context["form"].errors["member"][0]
    referral_create(acting_user=samfya_officer, household=mwansa, programme=sct)
    again = desk.post(reverse("referrals:refer", args=[mwansa.pk]), {"programme": "SCT", "priority": "normal"})
    assert "already has an open referral" in again.context["form"].errors["programme"][0]
    assert Referral.objects.count() == 1


def test_an_individual_referral_names_the_member(desk, mwansa, bursary):
    bupe = mwansa.members.get(first_name="Bupe")
    desk.post(
        reverse("referrals:refer", args=[mwansa.pk]),
        {"programme": "BURS", "member": bupe.pk, "priority": "normal", "action": "send"},
    )
    assert Referral.objects.get(programme=bursary).member == bupe


def test_an_attachment_is_kept_and_served_only_within_scope(
    desk, client, mwansa, sct, settings, tmp_path, lunga_officer, officer_moe
):
    settings.MEDIA_ROOT = tmp_path
    letter = SimpleUploadedFile("letter.pdf", b"%PDF-1.4 letter from the headman", content_type="application/pdf")
    desk.post(
        reverse("referrals:refer", args=[mwansa.pk]),
        {
            "programme": "SCT",
            "priority": "normal",
            "action": "send",
            "attachment": letter,
            "attachment_description": "Headman's letter",
        },
    )
    attachment = ReferralAttachment.objects.get()
    url = reverse("referrals:attachment", args=[attachment.referral.number, attachment.pk])
    assert "Headman&#x27;s letter" in desk.get(page_url(attachment.referral)).content.decode()
    assert b"".join(desk.get(url).streaming_content).startswith(b"%PDF")
    assert logged_in(client, lunga_officer).get(url).status_code == 404
    assert logged_in(client, officer_moe).get(url).status_code == 404
    from spf.models import ExportKind, PersonalDataExport

    # Served once (to the desk), recorded once: the refusals gave nothing away and recorded nothing.
    served = PersonalDataExport.objects.get()
    assert (served.kind, served.what) == (ExportKind.ATTACHMENT, f"A document of referral {attachment.referral.number}")


def test_a_wrong_kind_of_file_is_refused_and_nothing_is_referred(desk, mwansa, sct, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    response = desk.post(
        reverse("referrals:refer", args=[mwansa.pk]),
        {
            "programme": "SCT",
            "priority": "normal",
            "attachment": SimpleUploadedFile("run.exe", b"MZ"),
        },
    )
    assert response.status_code == 400 and "attachment" in response.context["form"].errors
    assert not Referral.objects.exists()


def test_a_committee_member_cannot_refer(client, committee_samfya, mwansa):
    assert logged_in(client, committee_samfya).get(reverse("referrals:refer", args=[mwansa.pk])).status_code == 403


# --- who sees which referral ------------------------------------------------------------------


@pytest.fixture
def sent(mwansa, sct, samfya_officer):
    return referral_create(acting_user=samfya_officer, household=mwansa, programme=sct, reason="Large family")


def test_a_referral_opens_by_its_plain_id_too(desk, sent):
    response = desk.get(reverse("referrals:referral", args=[str(sent.pk)]))
    assert response.status_code == 302 and response["Location"] == page_url(sent)
    assert desk.get(reverse("referrals:referral", args=["R99999999"])).status_code == 404
    assert desk.get(reverse("referrals:referral", args=["nonsense"])).status_code == 404


def test_a_lunga_officer_gets_404_for_a_samfya_referral_and_its_slip(client, lunga_officer, sent):
    logged_in(client, lunga_officer)
    assert client.get(page_url(sent)).status_code == 404
    assert client.get(reverse("referrals:slip", args=[sent.number])).status_code == 404
    assert client.get(reverse("referrals:household-slip", args=[sent.household_id])).status_code == 404
    assert move(client, sent, "cancelled", reason="Not mine").status_code == 404
    assert sent.number not in client.get(reverse("referrals:worklist")).content.decode()


def test_an_moe_officer_cannot_see_mcdss_referrals(client, officer_moe, sent):
    logged_in(client, officer_moe)
    assert client.get(page_url(sent)).status_code == 404
    assert client.get(reverse("referrals:slip", args=[sent.number])).status_code == 404
    assert move(client, sent, "accepted").status_code == 404
    queue = client.get(reverse("referrals:queue"), {"tab": "all"})
    assert queue.context["tabs"][-1]["count"] == 0 and sent.number not in queue.content.decode()
    opened = client.get(reverse("referrals:open"), {"number": sent.number}, follow=True)
    assert f"No referral {sent.number}" in opened.content.decode()
    sent.refresh_from_db()
    assert sent.status == S.SENT


def test_the_household_page_shows_only_referrals_in_the_users_scope(client, officer_moe, officer_mcdss, sent, mwansa):
    household_url = reverse("frontdesk:household", args=[mwansa.pk])
    assert sent.number not in logged_in(client, officer_moe).get(household_url).content.decode()
    assert sent.number in logged_in(client, officer_mcdss).get(household_url).content.decode()


# --- moving a referral through its pages --------------------------------------------------------


def test_the_agency_officer_receives_accepts_and_completes_from_the_page(client, officer_mcdss, sent):
    logged_in(client, officer_mcdss)
    page = client.get(page_url(sent))
    assert [a["to_status"] for a in page.context["actions"]] == [S.RECEIVED, S.ACCEPTED, S.REJECTED]
    for to_status in (S.RECEIVED, S.ACCEPTED, S.COMPLETED):
        response = move(client, sent, to_status, idempotency_key=f"page-{to_status}")
        assert response.status_code == 302, response.content.decode()[:500]
    sent.refresh_from_db()
    assert sent.status == S.COMPLETED
    timeline = client.get(page_url(sent)).content.decode()
    assert "Ruth Phiri (MCDSS)" in timeline and "Completed" in timeline
    assert client.get(page_url(sent)).context["actions"] == []


def test_the_same_form_posted_twice_moves_the_referral_once(client, officer_mcdss, sent):
    logged_in(client, officer_mcdss)
    for _ in range(2):
        assert move(client, sent, S.ACCEPTED, idempotency_key="page-abc").status_code == 302
    assert sent.events.filter(to_status=S.ACCEPTED).count() == 1


def test_a_rejection_needs_a_reason_from_the_list_and_the_error_shows_in_the_form(client, officer_mcdss, sent):
    logged_in(client, officer_mcdss)
    refused = move(client, sent, S.REJECTED, reason="")
    assert refused.status_code == 400
    reject = next(a for a in refused.context["actions"] if a["to_status"] == S.REJECTED)
    assert reject["open"] and "rejection_reason" in reject["form"].errors
    assert "Choose why the referral is rejected" in refused.content.decode()
    assert move(client, sent, S.REJECTED, rejection_reason="other").status_code == 400
    assert move(client, sent, S.REJECTED, rejection_reason="capacity_full", reason="Budget used up").status_code == 302
    sent.refresh_from_db()
    assert sent.status == S.REJECTED and sent.rejection_reason == "capacity_full"
    page = client.get(page_url(sent)).content.decode()
    assert "No place left (capacity or budget)" in page and "Budget used up" in page


def test_the_window_cancels_with_a_reason_and_cannot_accept(desk, sent):
    page = desk.get(page_url(sent))
    assert [a["to_status"] for a in page.context["actions"]] == [S.CANCELLED]
    refused = move(desk, sent, S.ACCEPTED)
    assert refused.status_code == 403 and "Only Ministry of Community Development" in refused.content.decode()
    assert move(desk, sent, S.CANCELLED).status_code == 400
    assert move(desk, sent, S.CANCELLED, reason="The family moved to Mansa").status_code == 302
    sent.refresh_from_db()
    assert sent.status == S.CANCELLED and sent.status_note == "The family moved to Mansa"


def test_an_illegal_move_from_a_list_comes_back_to_the_list_with_the_reason(client, officer_mcdss, sent):
    logged_in(client, officer_mcdss)
    queue = reverse("referrals:queue")
    response = move(client, sent, S.COMPLETED, next=queue)
    assert response["Location"] == queue
    assert "it can go to received" in client.get(queue).content.decode()


def test_a_committee_member_reads_the_referral_but_has_no_actions(client, committee_samfya, sent):
    page = logged_in(client, committee_samfya).get(page_url(sent))
    assert page.status_code == 200 and page.context["actions"] == []
    assert move(client, sent, S.CANCELLED, reason="x").status_code == 403


# --- the slip ----------------------------------------------------------------------------------


def qr_matrix_from_svg(svg: str) -> list[list[bool]]:
    """Read back the dark modules segno drew: its path is rows of `h` runs and relative `m` moves."""
    path = re.search(r'\sd="([^"]+)"', svg).group(1)
    dark, x, y = set(), 0.0, 0.0
    for command, numbers in re.findall(r"([MmHh])([-\d.\s]+)", path):
        values = [float(v) for v in numbers.split()]
        if command == "M":
            x, y = values
        elif command == "m":
            x, y = x + values[0], y + values[1]
        else:
            for step in range(int(values[0])):
                dark.add((int(x) + step, int(y)))
            x += values[0]
    size = max(max(c for c, _ in dark), max(r for _, r in dark)) + 1
    return [[(column, row) in dark for column in range(size)] for row in range(size)]


def test_the_slip_carries_the_referral_number_in_its_qr_code(desk, sent):
    response = desk.get(reverse("referrals:slip", args=[sent.number]))
    page = response.content.decode()
    assert response.status_code == 200
    for text in (
        sent.household.number,
        "Mary Mwansa",
        "Social Cash Transfer",
        "Ministry of Community Development",
        "Under-five cards of the children",
        sent.due_date.strftime("%A %-d %B %Y"),
        "slip-a4",
    ):
        assert text in page
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert f"<title>{sent.number}</title>" in svg
    expected = segno.make_qr(sent.number, error="m")
    border = 4
    drawn = qr_matrix_from_svg(svg)
    assert [[bool(v) for v in row] for row in expected.matrix] == [
        row[border : border + len(expected.matrix)] for row in drawn[border : border + len(expected.matrix)]
    ]
    receipt = desk.get(reverse("referrals:slip", args=[sent.number]), {"format": "receipt"}).content.decode()
    assert "slip-receipt" in receipt and "css/print.css" in receipt


def test_the_household_slip_lists_every_open_sent_referral_with_its_own_code(
    desk, mwansa, sent, bursary, samfya_officer
):
    bupe = mwansa.members.get(first_name="Bupe")
    second = referral_create(acting_user=samfya_officer, household=mwansa, programme=bursary, member=bupe)
    page = desk.get(reverse("referrals:household-slip", args=[mwansa.pk])).content.decode()
    assert "Social Cash Transfer" in page and "Secondary school bursary" in page and "Bupe Mwansa" in page
    assert f"<title>{sent.number}</title>" in page and f"<title>{second.number}</title>" in page


def test_a_household_without_a_sent_referral_has_no_slip(desk, mwansa):
    response = desk.get(reverse("referrals:household-slip", args=[mwansa.pk]))
    assert response.status_code == 302


# --- the worklist and the queue --------------------------------------------------------------------


def test_the_open_box_takes_a_scanned_or_typed_number(client, officer_mcdss, sent):
    logged_in(client, officer_mcdss)
    for typed in (sent.number, sent.number.lower(), str(sent.pk), f"  {sent.number}\n"):
        response = client.get(reverse("referrals:open"), {"number": typed})
        assert response["Location"] == page_url(sent), typed
    bad = client.get(reverse("referrals:open"), {"number": "hello"}, follow=True)
    assert "is not a referral number" in bad.content.decode()


@pytest.fixture
def worklist_world(mwansa, sct, bursary, samfya_officer, samfya_village, officer_mcdss):
    """One referral of each kind the worklist separates: open, overdue, failed delivery, suggestion, closed."""
    households = [register_family(samfya_officer, samfya_village, f"Family{i}") for i in range(4)]
    on_time = referral_create(acting_user=samfya_officer, household=mwansa, programme=sct)
    overdue = referral_create(acting_user=samfya_officer, household=households[0], programme=sct)
    Referral.objects.filter(pk=overdue.pk).update(
        due_date=timezone.localdate() - datetime.timedelta(days=1), sent_at=timezone.now() - datetime.timedelta(days=20)
    )
    failed = referral_create(acting_user=samfya_officer, household=households[1], programme=sct)
    Delivery.objects.create(
        referral=failed,
        event=failed.events.last(),
        agency=failed.agency,
        idempotency_key="k1",
        payload={},
        status=DeliveryStatus.FAILED,
        attempts=8,
        last_error="HTTP 500",
    )
    suggestion = referral_create(acting_user=samfya_officer, household=households[2], programme=sct, send=False)
    closed = referral_create(acting_user=samfya_officer, household=households[3], programme=sct)
    referral_transition(referral=closed, to_status=S.REJECTED, acting_user=officer_mcdss, rejection_reason="declined")
    return {"on_time": on_time, "overdue": overdue, "failed": failed, "suggestion": suggestion, "closed": closed}


def test_the_worklist_counts_each_tab_and_lists_the_chosen_one(desk, worklist_world):
    response = desk.get(reverse("referrals:worklist"))
    counts = {t["key"]: t["count"] for t in response.context["tabs"]}
    assert counts == {"open": 3, "overdue": 1, "failed": 1, "suggestions": 1, "closed": 1, "all": 5}
    listed = lambda r: [row["referral"].pk for row in r.context["rows"]]  # noqa: E731
    assert listed(desk.get(reverse("referrals:worklist"), {"tab": "overdue"})) == [worklist_world["overdue"].pk]
    assert listed(desk.get(reverse("referrals:worklist"), {"tab": "failed"})) == [worklist_world["failed"].pk]
    suggestions = desk.get(reverse("referrals:worklist"), {"tab": "suggestions"})
    assert listed(suggestions) == [worklist_world["suggestion"].pk]
    assert [a["to_status"] for a in suggestions.context["rows"][0]["quick"]] == [S.SENT]


def test_the_worklist_filters_by_programme_agency_ward_status_and_age(desk, worklist_world, samfya_village):
    def count(**params):
        return desk.get(reverse("referrals:worklist"), {"tab": "all", **params}).context["page"].paginator.count

    assert count(programme="SCT") == 5 and count(programme="BURS") == 0
    assert count(agency="MCDSS") == 5 and count(agency="MOE") == 0
    assert count(ward=samfya_village.parent_id) == 5
    assert count(status="rejected") == 1
    assert count(age="15-30") == 1 and count(age="0-7") == 3


def test_the_agency_queue_holds_its_referrals_with_their_actions(client, officer_mcdss, worklist_world):
    response = logged_in(client, officer_mcdss).get(reverse("referrals:queue"))
    assert (
        response.context["is_queue"] and "Referrals to Ministry of Community Development" in response.content.decode()
    )
    rows = {row["referral"].pk: row for row in response.context["rows"]}
    assert set(rows) == {worklist_world[k].pk for k in ("on_time", "overdue", "failed")}
    assert [a["to_status"] for a in rows[worklist_world["on_time"].pk]["quick"]] == [S.RECEIVED, S.ACCEPTED]


def test_the_worklist_makes_the_same_number_of_queries_for_few_or_many_referrals(
    desk, worklist_world, samfya_officer, samfya_village, sct
):
    with CaptureQueriesContext(connection) as few:
        desk.get(reverse("referrals:worklist"), {"tab": "all"})
    for index in range(10):
        household = register_family(samfya_officer, samfya_village, f"More{index}")
        referral_create(acting_user=samfya_officer, household=household, programme=sct)
    with CaptureQueriesContext(connection) as many:
        response = desk.get(reverse("referrals:worklist"), {"tab": "all"})
    assert len(response.context["rows"]) == 15
    assert len(many) == len(few) <= 12


# --- notifications ------------------------------------------------------------------------------


def test_notifications_are_listed_counted_in_the_nav_and_marked_read(desk, samfya_officer, sent, lunga_officer):
    Notification.objects.create(
        recipient=samfya_officer, referral=sent, kind="overdue", message=f"Referral {sent.number} is overdue"
    )
    Notification.objects.create(recipient=samfya_officer, kind="delivery_failed", message="A delivery failed")
    Notification.objects.create(recipient=lunga_officer, kind="overdue", message="Someone else's notice")
    page = desk.get(reverse("referrals:notifications")).content.decode()
    assert f"Referral {sent.number} is overdue" in page and "Someone else" not in page
    assert re.search(r'class="nav-count">2<', page)
    first = Notification.objects.get(kind="overdue", recipient=samfya_officer)
    desk.post(reverse("referrals:notifications-read"), {"notification": first.pk})
    assert re.search(r'class="nav-count">1<', desk.get(reverse("referrals:worklist")).content.decode())
    desk.post(reverse("referrals:notifications-read"), {"all": "1"})
    assert not Notification.objects.filter(recipient=samfya_officer, read_at__isnull=True).exists()
    assert Notification.objects.filter(recipient=lunga_officer, read_at__isnull=True).exists()
    assert "nav-count" not in desk.get(reverse("referrals:notifications")).content.decode()


def test_every_page_needs_a_login(client, sent):
    for url in (
        reverse("referrals:worklist"),
        page_url(sent),
        reverse("referrals:slip", args=[sent.number]),
        reverse("referrals:notifications"),
        reverse("referrals:refer", args=[sent.household_id]),
    ):
        assert client.get(url).status_code == 302


def test_events_record_the_page_user(desk, sent):
    move(desk, sent, S.CANCELLED, reason="Duplicate")
    event = ReferralEvent.objects.filter(referral=sent).last()
    assert event.actor.username == "frontdesk_samfya_test" and event.reason == "Duplicate"
