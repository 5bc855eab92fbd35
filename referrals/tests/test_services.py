"""The referral state machine, its guards, and automatic referrals from eligibility."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction

from programmes.models import (
    Agency,
    AgencyKind,
    AutoReferral,
    EligibilityChange,
    Programme,
    ProgrammeDistrict,
    ProgrammeKind,
    ProgrammeStatus,
    ReferralDelivery,
)
from programmes.services import eligibility_recompute_household, programme_set_rules
from referrals.models import Delivery, Referral, ReferralEvent, ReferralSource, ReferralStatus, referral_id_from_number
from referrals.services import referral_create, referral_transition, referrals_from_eligibility
from registry.models import ChangeAction, Relationship
from registry.services import MemberInput, household_register, member_update
from registry.tests.factories import UserFactory
from spf.models import Role

S = ReferralStatus


@pytest.fixture
def agency(db):
    return Agency.objects.create(code="MCDSS", name="Ministry of Community Development", kind=AgencyKind.MINISTRY)


@pytest.fixture
def programme(agency, samfya, ministry_user):
    programme = Programme.objects.create(
        code="SCT", name="Social Cash Transfer", agency=agency, description="Cash", kind=ProgrammeKind.CASH_TRANSFER,
        status=ProgrammeStatus.ACTIVE, currency="ZMW", referral_sla_days=10, auto_referral=AutoReferral.SUGGEST,
    )
    ProgrammeDistrict.objects.create(programme=programme, district=samfya)
    programme_set_rules(acting_user=ministry_user, programme=programme, eligibility_rule="household.size >= 2")
    programme.refresh_from_db()
    return programme


@pytest.fixture
def household(samfya_officer, samfya_village):
    return household_register(acting_user=samfya_officer, village=samfya_village, members=[
        MemberInput(values={"first_name": "Mary", "last_name": "Mwansa", "sex": "F", "relationship": Relationship.HEAD,
                            "date_of_birth": datetime.date(1970, 1, 1)}),
        MemberInput(values={"first_name": "Bupe", "last_name": "Mwansa", "sex": "F", "relationship": Relationship.CHILD,
                            "date_of_birth": datetime.date(2015, 1, 1)}),
    ])


@pytest.fixture
def agency_officer(agency, samfya):
    return UserFactory(username="officer_mcdss_test", role=Role.PROGRAMME_OFFICER, agency=agency, districts=[samfya])


def statuses(referral) -> list[tuple[str, str]]:
    return list(referral.events.order_by("id").values_list("from_status", "to_status"))


def test_a_referral_is_sent_with_a_due_date_from_the_programme(household, programme, samfya_officer):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=programme, reason="Large family")
    assert referral.status == S.SENT
    assert referral.due_date == datetime.date.today() + datetime.timedelta(days=10)
    assert referral.agency == programme.agency and referral.district == household.district
    assert statuses(referral) == [("", "draft"), ("draft", "sent")]
    assert referral.events.last().actor == samfya_officer
    assert referral_id_from_number(referral.number) == referral.pk


def test_the_whole_lifecycle_records_who_moved_it(household, programme, samfya_officer, agency_officer):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=programme)
    for status in (S.RECEIVED, S.ACCEPTED, S.COMPLETED):
        referral = referral_transition(referral=referral, to_status=status, acting_user=agency_officer)
    assert statuses(referral)[-3:] == [("sent", "received"), ("received", "accepted"), ("accepted", "completed")]
    assert referral.closed_at is not None
    assert referral.events.last().agency == programme.agency


def test_an_illegal_move_is_refused_with_where_it_can_go(household, programme, samfya_officer, agency_officer):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=programme)
    with pytest.raises(ValidationError) as raised:
        referral_transition(referral=referral, to_status=S.COMPLETED, acting_user=agency_officer)
    assert "it can go to received" in raised.value.message_dict["status"][0]
    referral_transition(referral=referral, to_status=S.CANCELLED, acting_user=samfya_officer, reason="Moved away")
    with pytest.raises(ValidationError, match="closed"):
        referral_transition(referral=referral, to_status=S.SENT, acting_user=samfya_officer)


def test_a_rejection_needs_a_reason_from_the_list(household, programme, samfya_officer, agency_officer):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=programme)
    with pytest.raises(ValidationError) as raised:
        referral_transition(referral=referral, to_status=S.REJECTED, acting_user=agency_officer)
    assert "rejection_reason" in raised.value.message_dict
    with pytest.raises(ValidationError):
        referral_transition(referral=referral, to_status=S.REJECTED, acting_user=agency_officer, rejection_reason="other")
    referral = referral_transition(referral=referral, to_status=S.REJECTED, acting_user=agency_officer,
                                   rejection_reason="capacity_full")
    assert referral.rejection_reason == "capacity_full"


def test_only_the_agency_decides_and_only_the_window_sends(household, programme, samfya_officer, agency_officer, samfya):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=programme, send=False)
    with pytest.raises(PermissionDenied):
        referral_transition(referral=referral, to_status=S.SENT, acting_user=agency_officer)
    referral_transition(referral=referral, to_status=S.SENT, acting_user=samfya_officer)
    with pytest.raises(PermissionDenied):
        referral_transition(referral=referral, to_status=S.ACCEPTED, acting_user=samfya_officer)
    other_agency = Agency.objects.create(code="MOE", name="Ministry of Education", kind=AgencyKind.MINISTRY)
    stranger = UserFactory(username="officer_moe_test", role=Role.PROGRAMME_OFFICER, agency=other_agency, districts=[samfya])
    with pytest.raises(PermissionDenied):
        referral_transition(referral=referral, to_status=S.ACCEPTED, acting_user=stranger)


def test_an_officer_refers_only_in_their_districts(household, programme, lunga_officer, committee_samfya):
    with pytest.raises(PermissionDenied):
        referral_create(acting_user=lunga_officer, household=household, programme=programme)
    with pytest.raises(PermissionDenied):
        referral_create(acting_user=committee_samfya, household=household, programme=programme)


def test_the_same_update_twice_changes_nothing_twice(household, programme, samfya_officer, agency_officer):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=programme)
    referral_transition(referral=referral, to_status=S.RECEIVED, acting_user=agency_officer, idempotency_key="abc")
    again = referral_transition(referral=referral, to_status=S.RECEIVED, acting_user=agency_officer, idempotency_key="abc")
    assert again.status == S.RECEIVED
    assert referral.events.filter(to_status=S.RECEIVED).count() == 1


def test_one_open_referral_per_household_and_programme(household, programme, samfya_officer):
    referral_create(acting_user=samfya_officer, household=household, programme=programme)
    with pytest.raises(ValidationError, match="already has an open referral"):
        referral_create(acting_user=samfya_officer, household=household, programme=programme)


def test_the_database_refuses_a_second_open_referral(household, programme, samfya_officer):
    first = referral_create(acting_user=samfya_officer, household=household, programme=programme)
    with pytest.raises(IntegrityError), transaction.atomic():
        Referral.objects.create(household=household, programme=programme, agency=first.agency,
                                district=first.district, status=S.DRAFT)


def test_a_closed_referral_allows_a_new_one(household, programme, samfya_officer):
    first = referral_create(acting_user=samfya_officer, household=household, programme=programme)
    referral_transition(referral=first, to_status=S.CANCELLED, acting_user=samfya_officer, reason="Typed by mistake")
    second = referral_create(acting_user=samfya_officer, household=household, programme=programme)
    assert second.pk != first.pk


def test_a_programme_not_running_in_the_district_is_named(household, programme, samfya_officer):
    programme.coverage.all().delete()
    with pytest.raises(ValidationError) as raised:
        referral_create(acting_user=samfya_officer, household=household, programme=programme)
    assert "does not run in" in raised.value.message_dict["programme"][0]


def test_becoming_eligible_suggests_a_referral_once(household, programme):
    eligibility_recompute_household(household_id=household.pk)
    report = referrals_from_eligibility()
    assert (report.created, report.sent) == (1, 0)
    referral = Referral.objects.get()
    assert (referral.status, referral.source) == (S.DRAFT, ReferralSource.AUTOMATIC)
    assert referral.eligibility_change is not None
    assert statuses(referral) == [("", "draft")]
    assert report.changes_consumed == EligibilityChange.objects.count()
    assert referrals_from_eligibility().created == 0


def test_a_programme_set_to_create_sends_at_once(household, programme):
    Programme.objects.filter(pk=programme.pk).update(auto_referral=AutoReferral.CREATE)
    eligibility_recompute_household(household_id=household.pk)
    assert referrals_from_eligibility().sent == 1
    referral = Referral.objects.get()
    assert referral.status == S.SENT and referral.due_date == datetime.date.today() + datetime.timedelta(days=10)


def test_no_automatic_referral_when_one_is_open_or_the_programme_says_off(household, programme, samfya_officer):
    referral_create(acting_user=samfya_officer, household=household, programme=programme)
    eligibility_recompute_household(household_id=household.pk)
    assert referrals_from_eligibility().created == 0
    assert Referral.objects.count() == 1


def test_losing_eligibility_withdraws_the_suggestion(household, programme, samfya_officer):
    eligibility_recompute_household(household_id=household.pk)
    referrals_from_eligibility()
    child = household.members.get(first_name="Bupe")
    from registry.services import member_move_out

    member_move_out(acting_user=samfya_officer, member=child, moved_on=datetime.date.today())
    eligibility_recompute_household(household_id=household.pk)
    report = referrals_from_eligibility()
    assert report.withdrawn == 1
    referral = Referral.objects.get()
    assert referral.status == S.CANCELLED and "no longer eligible" in referral.status_note
    assert statuses(referral)[-1] == ("draft", "cancelled")


def test_a_suggestion_is_kept_when_eligibility_was_lost_and_regained_between_two_sweeps(
    household, programme, samfya_officer
):
    from registry.services import member_add, member_move_out

    eligibility_recompute_household(household_id=household.pk)
    referrals_from_eligibility()
    child = household.members.get(first_name="Bupe")
    member_move_out(acting_user=samfya_officer, member=child, moved_on=datetime.date.today())
    eligibility_recompute_household(household_id=household.pk)
    member_add(
        acting_user=samfya_officer,
        household=household,
        values={
            "first_name": "Mutale",
            "last_name": "Mwansa",
            "sex": "M",
            "relationship": Relationship.CHILD,
            "date_of_birth": child.date_of_birth,
        },
        event=ChangeAction.MOVE_IN,
    )
    eligibility_recompute_household(household_id=household.pk)

    report = referrals_from_eligibility()

    assert report.withdrawn == 0
    assert Referral.objects.get().status == S.DRAFT


def test_a_push_agency_gets_an_outbox_row_in_the_same_transaction(household, programme, samfya_officer, agency):
    Agency.objects.filter(pk=agency.pk).update(referral_delivery=ReferralDelivery.WEBHOOK,
                                               webhook_url="http://127.0.0.1:9/hook", webhook_secret="s3cret")
    referral = referral_create(acting_user=samfya_officer, household=household, programme=programme)
    delivery = Delivery.objects.get()
    assert delivery.referral == referral and delivery.event.to_status == S.SENT
    assert delivery.payload["referral"]["number"] == referral.number
    assert delivery.payload["household"]["number"] == household.number


def test_ministry_staff_may_act_for_an_agency(household, programme, samfya_officer, ministry_user):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=programme)
    referral_transition(referral=referral, to_status=S.ACCEPTED, acting_user=ministry_user)
    assert ReferralEvent.objects.filter(referral=referral, to_status=S.ACCEPTED, actor=ministry_user).exists()


def test_member_edit_does_not_touch_referrals(household, programme, samfya_officer):
    referral = referral_create(acting_user=samfya_officer, household=household, programme=programme)
    member_update(acting_user=samfya_officer, member=household.head, values={"phone": "0977 000000"})
    referral.refresh_from_db()
    assert referral.status == S.SENT


@pytest.mark.django_db(transaction=True)
def test_a_recompute_task_sweeps_its_changes_into_referrals(household, programme):
    from django.conf import settings

    from programmes.tasks import recompute_households

    if not settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("with a broker the sweep is queued for a worker; the beat job covers it")
    recompute_households(household_ids=[household.pk])
    assert Referral.objects.filter(household=household, programme=programme, status=S.DRAFT).exists()
