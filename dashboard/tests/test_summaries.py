"""The summaries the Celery job keeps: each household's profile (people by sex,
age band and disability at the reference date), and the counts the page reads,
by ward, kind of household and group of people."""

import datetime
from decimal import Decimal

import pytest
from django.db.models import Sum
from django.utils import timezone

from grievances.services import grievance_acknowledge, grievance_register, grievance_resolve
from payments.models import Enrolment, EnrolmentStatus, Payment, PaymentStatus
from payments.payroll import payment_cycle_create, payroll_generate
from referrals.models import Referral, ReferralEvent, ReferralStatus
from referrals.services import referral_create, referral_transition
from registry.models import Location, Member, MemberStatus

from ..models import DistrictRefresh, Group, HouseholdProfile, Subject, Tally
from ..summaries import profiles_rebuild, summaries_refresh_district, years_before
from .makers import TODAY, assess, count, enrol_active, person, programme_for_pairs, register

pytestmark = pytest.mark.django_db


def total(district, subject, *, measure: str = "count", group: str = "", **filters) -> int | Decimal:
    """A measure summed over the rows kept by ward (each cell is also kept added up for the district)."""
    filters.setdefault("whole_district", False)
    sums = Tally.objects.filter(district=district, subject=subject, group=group, **filters).aggregate(n=Sum(measure))
    return sums["n"] or 0


# --- profiles ------------------------------------------------------------------------------------


def test_profile_counts_people_by_age_band_on_their_birthdays_at_the_reference_date(
    samfya_officer, samfya_village, samfya
):
    household = register(
        samfya_officer,
        samfya_village,
        person("F", datetime.date(1980, 5, 17)),  # 46: 18-59
        person("M", years_before(TODAY, 5)),  # fifth birthday today: 5-17
        person("F", years_before(TODAY, 5) + datetime.timedelta(days=1)),  # 4 until tomorrow: 0-4
        person("F", years_before(TODAY, 60)),  # sixtieth birthday today: 60+
        person("M", years_before(TODAY, 60) + datetime.timedelta(days=1)),  # still 59: 18-59
        person("M", years_before(TODAY, 18) + datetime.timedelta(days=1)),  # still 17: 5-17
    )

    profiles_rebuild(district_id=samfya.pk, today=TODAY)

    profile = HouseholdProfile.objects.get(household=household)
    assert (profile.people, profile.people_female, profile.people_male) == (6, 3, 3)
    assert (
        profile.people_age_0_4,
        profile.people_age_5_17,
        profile.people_age_18_59,
        profile.people_age_60_plus,
    ) == (1, 2, 2, 1)
    assert profile.female_headed and profile.active
    assert profile.ward_id == samfya_village.parent_id


def test_a_person_with_a_lot_of_difficulty_in_one_domain_counts_as_disabled_and_one_gone_does_not_count(
    samfya_officer, samfya_village, samfya
):
    household = register(
        samfya_officer,
        samfya_village,
        person("M", head=True),
        person("F", disability_walking=3),  # a lot of difficulty: the Washington Group cut-off
        person("F", disability_seeing=2),  # some difficulty: not counted
        person("M"),
    )
    gone = Member.objects.filter(household=household).order_by("id").last()
    Member.objects.filter(pk=gone.pk).update(status=MemberStatus.MOVED_OUT, status_date=TODAY)

    profiles_rebuild(district_id=samfya.pk, today=TODAY)

    profile = HouseholdProfile.objects.get(household=household)
    assert (profile.people, profile.people_disability) == (3, 1)
    assert not profile.female_headed


def test_a_household_that_moved_to_another_district_is_profiled_once_there(
    samfya_officer, samfya_village, lunga_village, samfya, lunga
):
    household = register(samfya_officer, samfya_village, person())
    profiles_rebuild(district_id=samfya.pk, today=TODAY)
    type(household).objects.filter(pk=household.pk).update(district=lunga, village=lunga_village)

    profiles_rebuild(district_id=lunga.pk, today=TODAY)

    assert HouseholdProfile.objects.get(household=household).district_id == lunga.pk


# --- households ----------------------------------------------------------------------------------


def test_households_and_people_are_counted_by_ward_and_by_group(
    samfya_officer, samfya_village, samfya_ward_2_village, samfya
):
    register(samfya_officer, samfya_village, person("F"), person("M", datetime.date(2024, 1, 1)))
    register(samfya_officer, samfya_village, person("M"))
    register(samfya_officer, samfya_ward_2_village, person("F"), person("F"), person("F", datetime.date(2023, 6, 1)))

    count(samfya, today=TODAY)

    households = Subject.HOUSEHOLDS
    assert (total(samfya, households), total(samfya, households, measure="people")) == (3, 6)
    assert total(samfya, households, ward=samfya_village.parent) == 2
    assert total(samfya, households, ward=samfya_ward_2_village.parent, measure="people") == 3
    # Two households have a child under five; they hold two such children.
    assert total(samfya, households, group=Group.AGE_0_4) == 2
    assert total(samfya, households, group=Group.AGE_0_4, measure="people") == 2
    assert total(samfya, households, female_headed=True) == 2
    assert total(samfya, households, group=Group.MALE, measure="people") == 2
    # The district's own rows are the wards' added up.
    for group in ("", Group.AGE_0_4, Group.MALE):
        for measure in ("count", "people"):
            assert total(samfya, households, group=group, measure=measure, whole_district=True) == total(
                samfya, households, group=group, measure=measure
            )


# --- coverage ------------------------------------------------------------------------------------


def test_the_gap_is_the_eligible_households_not_enrolled(
    samfya_officer, samfya_village, samfya, programme, maker, checker
):
    pairs = [register(samfya_officer, samfya_village, person("F"), person("M")) for _ in range(3)]
    single = register(samfya_officer, samfya_village, person("F"))
    assess(*pairs, single)
    enrol_active(household=pairs[0], programme=programme, maker=maker, checker=checker)

    count(samfya)

    coverage = {"subject": Subject.COVERAGE, "programme": programme}
    assert total(samfya, state="eligible", **coverage) == 3
    assert total(samfya, state="enrolled", **coverage) == 1
    assert total(samfya, state="gap", **coverage) == 2
    assert total(samfya, Subject.COVERAGE, state="gap_any") == 2
    assert total(samfya, Subject.COVERAGE, state="enrolled_any") == 1
    assert total(samfya, Subject.COVERAGE, state="enrolled_two_plus") == 0
    # The place's cost a year is set against the budget: 150 a month.
    assert total(samfya, state="committed", measure="amount", **coverage) == Decimal("150.00")


def test_a_household_holding_two_places_in_a_programme_is_enrolled_once(
    samfya_officer, samfya_village, samfya, programme, maker, checker
):
    household = register(samfya_officer, samfya_village, person("F"), person("M"))
    assess(household)
    enrol_active(household=household, programme=programme, maker=maker, checker=checker)
    # A second place in the same programme, as a programme for individuals gives one a person.
    second = Enrolment.objects.get()
    second.pk, second.member = None, household.members.order_by("pk").last()
    second.save()

    count(samfya)

    assert Enrolment.objects.filter(status=EnrolmentStatus.ACTIVE).count() == 2
    assert total(samfya, Subject.COVERAGE, state="enrolled", programme=programme) == 1
    assert total(samfya, Subject.COVERAGE, state="enrolled", programme=programme, measure="people") == 2


def test_a_household_in_two_programmes_counts_towards_complementary_coverage(
    samfya_officer, samfya_village, samfya, lunga, agency, ministry_user, programme, maker, checker
):
    second = programme_for_pairs(agency=agency, districts=[samfya, lunga], ministry_user=ministry_user, code="CSG")
    both, one = (register(samfya_officer, samfya_village, person("F"), person("M")) for _ in range(2))
    assess(both, one)
    enrol_active(household=both, programme=programme, maker=maker, checker=checker)
    enrol_active(household=both, programme=second, maker=maker, checker=checker)
    enrol_active(household=one, programme=second, maker=maker, checker=checker)

    count(samfya)

    assert total(samfya, Subject.COVERAGE, state="enrolled_any") == 2
    assert total(samfya, Subject.COVERAGE, state="enrolled_two_plus") == 1
    assert total(samfya, Subject.COVERAGE, state="gap_any") == 1


# --- referrals -----------------------------------------------------------------------------------


def test_referrals_are_counted_by_status_with_the_overdue_and_the_days_to_acceptance(
    samfya_officer, samfya_village, samfya, programme, maker
):
    late, quick = (register(samfya_officer, samfya_village, person("F"), person("M")) for _ in range(2))
    today = timezone.localdate()
    three_weeks_ago = timezone.now() - datetime.timedelta(days=21)
    for household in (late, quick):
        referral = referral_create(acting_user=samfya_officer, household=household, programme=programme)
        Referral.objects.filter(pk=referral.pk).update(
            sent_at=three_weeks_ago, due_date=(three_weeks_ago + datetime.timedelta(days=10)).date()
        )
    accepted = Referral.objects.get(household=quick)
    referral_transition(referral=accepted, to_status=ReferralStatus.ACCEPTED, acting_user=maker)
    ReferralEvent.objects.filter(referral=accepted, to_status=ReferralStatus.ACCEPTED).update(
        at=three_weeks_ago + datetime.timedelta(days=3)
    )

    count(samfya, today=today)

    referrals = {"subject": Subject.REFERRALS, "programme": programme, "category": "sent"}
    assert total(samfya, state=ReferralStatus.SENT, **referrals) == 1
    assert total(samfya, state=ReferralStatus.ACCEPTED, **referrals) == 1
    # Sent three weeks ago, due after ten days, still waiting for the agency.
    assert total(samfya, measure="overdue", **referrals) == 1
    accepted_rows = Tally.objects.filter(district=samfya, subject=Subject.ACCEPTANCES, group="", whole_district=True)
    assert [(row.days, row.count, row.timely) for row in accepted_rows] == [(3, 1, 1)]


# --- payments ------------------------------------------------------------------------------------


def test_payments_are_counted_per_cycle_with_amounts_and_timeliness(
    samfya_officer, samfya_village, samfya, programme, maker, checker
):
    households = [register(samfya_officer, samfya_village, person("F"), person("M")) for _ in range(3)]
    assess(*households)
    for household in households:
        enrol_active(household=household, programme=programme, maker=maker, checker=checker)
    month = timezone.localdate().replace(day=1)
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=month)
    payroll_generate(acting_user=maker, cycle=cycle)
    paid, failed, pending = Payment.objects.filter(cycle=cycle).order_by("pk")
    on_the_fifth = timezone.make_aware(datetime.datetime(month.year, month.month, 5, 10))
    Payment.objects.filter(pk=paid.pk).update(status=PaymentStatus.PAID, paid_at=on_the_fifth, paid_amount=paid.amount)
    Payment.objects.filter(pk=failed.pk).update(status=PaymentStatus.FAILED)

    count(samfya)

    payments = {"subject": Subject.PAYMENTS, "programme": programme, "month": month}
    assert total(samfya, **payments) == 3
    assert total(samfya, measure="amount", **payments) == Decimal("450.00")
    assert total(samfya, state=PaymentStatus.PAID, measure="paid_amount", **payments) == Decimal("150.00")
    assert total(samfya, state=PaymentStatus.FAILED, **payments) == 1
    assert total(samfya, state=PaymentStatus.PENDING, **payments) == 1
    paid_row = Tally.objects.get(district=samfya, group="", whole_district=True, state=PaymentStatus.PAID, **payments)
    assert (paid_row.days, paid_row.timely) == (4, 1)


def test_the_copy_writer_writes_exactly_the_rows_bulk_create_writes(
    samfya_officer, samfya_village, samfya, programme, maker, checker, monkeypatch
):
    households = [register(samfya_officer, samfya_village, person("F"), person("M")) for _ in range(3)]
    assess(*households)
    for household in households[1:]:
        enrol_active(household=household, programme=programme, maker=maker, checker=checker)
    cycle = payment_cycle_create(
        acting_user=maker, programme=programme, period_start=timezone.localdate().replace(day=1)
    )
    payroll_generate(acting_user=maker, cycle=cycle)
    paid = Payment.objects.filter(cycle=cycle).order_by("pk").first()
    Payment.objects.filter(pk=paid.pk).update(
        status=PaymentStatus.PAID, paid_at=timezone.now(), paid_amount=paid.amount
    )
    referral_create(acting_user=samfya_officer, household=households[0], programme=programme)

    def written() -> list[tuple]:
        summaries_refresh_district(district_id=samfya.pk, today=TODAY)
        fields = [f.attname for f in Tally._meta.concrete_fields if f.attname != "id"]
        return sorted(Tally.objects.values_list(*fields), key=repr)

    by_copy = written()
    monkeypatch.setattr("dashboard.summaries.copy_available", lambda: False)
    by_bulk_create = written()

    assert len(by_copy) > 50
    assert {row[fields_index("amount")] for row in by_copy} - {None}  # amounts, and NULLs, both written
    assert by_copy == by_bulk_create


def fields_index(name: str) -> int:
    return [f.attname for f in Tally._meta.concrete_fields if f.attname != "id"].index(name)


# --- grievances ----------------------------------------------------------------------------------


def test_a_sensitive_grievance_is_counted_and_nothing_more(samfya_officer, samfya_village, samfya):
    household = register(samfya_officer, samfya_village, person("F"), person("F", datetime.date(2024, 2, 2)))
    head = household.head
    grievance_register(
        acting_user=samfya_officer,
        category="staff_conduct",
        description="An officer asked for money.",
        household=household,
        complainant=head,
        sensitive=True,
    )
    ordinary = grievance_register(
        acting_user=samfya_officer,
        category="payment",
        description="The payment did not come.",
        household=household,
        complainant=head,
    )
    grievance_acknowledge(acting_user=samfya_officer, grievance=ordinary)
    grievance_resolve(acting_user=samfya_officer, grievance=ordinary, resolution="Paid at the next cycle.")

    count(samfya)

    sensitive = Tally.objects.filter(district=samfya, subject=Subject.GRIEVANCES, category="sensitive")
    assert sorted((row.group, row.ward_id, row.whole_district, row.count) for row in sensitive) == [
        ("", None, False, 1),
        ("", None, True, 1),
    ]
    assert not Tally.objects.filter(district=samfya, category="staff_conduct").exists()
    assert total(samfya, Subject.GRIEVANCES, category="payment", ward=samfya_village.parent) == 1
    assert total(samfya, Subject.GRIEVANCES, category="payment", group=Group.AGE_0_4) == 1
    assert total(samfya, Subject.RESOLUTIONS, category="payment") == 1


# --- the refresh ---------------------------------------------------------------------------------


def test_a_refresh_replaces_its_own_rows_and_keeps_earlier_months_snapshots(samfya_officer, samfya_village, samfya):
    register(samfya_officer, samfya_village, person("F"))
    october = datetime.date(2026, 10, 20)

    count(samfya, today=october)
    register(samfya_officer, samfya_village, person("M"))
    count(samfya, today=TODAY)
    count(samfya, today=TODAY)

    snapshots = dict(
        Tally.objects.filter(district=samfya, subject=Subject.HOUSEHOLDS, group="", whole_district=True)
        .values_list("month")
        .annotate(n=Sum("count"))
    )
    assert snapshots == {datetime.date(2026, 10, 1): 1, datetime.date(2026, 11, 1): 2}
    assert total(samfya, Subject.REGISTRATIONS) == 2
    refresh = DistrictRefresh.objects.get(district=samfya)
    assert refresh.reference_date == TODAY and refresh.households == 2 and refresh.refreshed_at is not None


def test_every_district_can_be_refreshed_even_with_no_household(samfya):
    report = summaries_refresh_district(district_id=samfya.pk, today=TODAY)

    assert report.households == 0
    assert Location.objects.get(pk=samfya.pk)
    assert not Tally.objects.filter(district=samfya).exclude(count=0).exists()


def test_beat_recounts_every_district_and_says_how_often(settings, samfya, lunga, samfya_officer, samfya_village):
    from ..tasks import summaries_refresh

    register(samfya_officer, samfya_village, person("F"))
    entry = settings.CELERY_BEAT_SCHEDULE["dashboard-summaries-refresh"]
    assert entry["task"] == "dashboard.tasks.summaries_refresh"

    assert summaries_refresh.apply().get() == 2

    counted = dict(DistrictRefresh.objects.values_list("district_id", "households"))
    assert counted == {samfya.pk: 1, lunga.pk: 0}
