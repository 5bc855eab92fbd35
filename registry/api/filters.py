"""Query-string filters of the household and individual lists.

The querysets they narrow come from `registry.selectors` and are already
scoped to the user's districts; a filter can only narrow further.
"""

import datetime

import django_filters
from django.db.models import Case, Exists, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.utils import timezone

from registry.models import (
    DISABILITY_DOMAINS,
    Difficulty,
    Household,
    HouseholdStatus,
    Member,
    MemberStatus,
    Sex,
)
from registry.selectors import household_search, member_candidates_by_name


def years_before(day: datetime.date, years: int) -> datetime.date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def age_condition(*, age_min: int | None, age_max: int | None, on: datetime.date, prefix: str = "") -> Q:
    """Members aged `age_min`..`age_max` (inclusive) on `on`, as a condition on the date of birth.

    Ages are never stored: someone is at least N on `on` when born on or
    before the same day N years earlier. No date of birth, no age: such a
    member matches no age range.
    """
    condition = Q()
    if age_min is not None:
        condition &= Q(**{f"{prefix}date_of_birth__lte": years_before(on, age_min)})
    if age_max is not None:
        # At most M means not yet M + 1.
        condition &= Q(**{f"{prefix}date_of_birth__gt": years_before(on, age_max + 1)})
    return condition


def disability_condition(*, prefix: str = "") -> Q:
    """The Washington Group cut-off: a lot of difficulty, or cannot do at all, in at least one domain."""
    condition = Q()
    for domain in DISABILITY_DOMAINS:
        condition |= Q(**{f"{prefix}disability_{domain}__gte": Difficulty.A_LOT})
    return condition


def _in_rank_order(queryset: QuerySet, ranked_ids: list[int]) -> QuerySet:
    """Keep the rows of `ranked_ids`, best match first (the search ranks them, not the database)."""
    if not ranked_ids:
        return queryset.none()
    rank = Case(*(When(pk=pk, then=Value(i)) for i, pk in enumerate(ranked_ids)), output_field=IntegerField())
    return queryset.filter(pk__in=ranked_ids).order_by(rank)


# No one is this old: an age filter beyond it is a typo, and its date of birth would fall before year 1.
AGE_FILTER_LIMIT = 150


class _PersonFilters(django_filters.FilterSet):
    """Filters on a person (sex, age, disability) shared by both lists."""

    sex = django_filters.ChoiceFilter(choices=Sex.choices, method="_person", help_text="F or M.")
    age_min = django_filters.NumberFilter(
        min_value=0,
        max_value=AGE_FILTER_LIMIT,
        method="_person",
        help_text="Aged at least this many years today (from the date of birth).",
    )
    age_max = django_filters.NumberFilter(
        min_value=0,
        max_value=AGE_FILTER_LIMIT,
        method="_person",
        help_text="Aged at most this many years today (from the date of birth).",
    )
    disability = django_filters.BooleanFilter(
        method="_person",
        help_text="true: a lot of difficulty or cannot do at all in at least one Washington Group domain; "
        "false: no such difficulty.",
    )

    def _person(self, queryset, name, value):
        # Applied together in `person_condition`, so that on households one
        # member must match all of them at once.
        return queryset

    def person_condition(self, *, prefix: str = "") -> Q | None:
        data = self.form.cleaned_data
        sex, age_min, age_max = data.get("sex"), data.get("age_min"), data.get("age_max")
        disability = data.get("disability")
        if not sex and age_min is None and age_max is None and disability is None:
            return None
        condition = Q()
        if sex:
            condition &= Q(**{f"{prefix}sex": sex})
        condition &= age_condition(
            age_min=int(age_min) if age_min is not None else None,
            age_max=int(age_max) if age_max is not None else None,
            on=timezone.localdate(),
            prefix=prefix,
        )
        if disability is True:
            condition &= disability_condition(prefix=prefix)
        elif disability is False:
            condition &= ~disability_condition(prefix=prefix)
        return condition


class HouseholdFilter(_PersonFilters):
    district = django_filters.CharFilter(field_name="district__code", help_text="District code, e.g. SAM.")
    ward = django_filters.CharFilter(field_name="village__parent__code", help_text="Ward code.")
    village = django_filters.CharFilter(field_name="village__code", help_text="Village code.")
    status = django_filters.ChoiceFilter(choices=HouseholdStatus.choices)
    registered_from = django_filters.DateFilter(
        field_name="registration_date", lookup_expr="gte", help_text="Registered on or after this date."
    )
    registered_to = django_filters.DateFilter(
        field_name="registration_date", lookup_expr="lte", help_text="Registered on or before this date."
    )
    search = django_filters.CharFilter(
        method="_search",
        help_text="Household number, national ID, phone or a loosely spelt name; best matches first.",
    )

    class Meta:
        model = Household
        fields: list[str] = []

    def _search(self, queryset, name, value):
        hits = household_search(user=self.request.user, query=value)
        return _in_rank_order(queryset, [hit.household.pk for hit in hits])

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        condition = self.person_condition()
        if condition is None:
            return queryset
        # sex, age and disability describe one person: a household matches
        # when one member who still lives in it matches all of them.
        present = Member.objects.filter(household=OuterRef("pk"), status=MemberStatus.PRESENT)
        return queryset.filter(Exists(present.filter(condition)))


class MemberFilter(_PersonFilters):
    district = django_filters.CharFilter(field_name="household__district__code", help_text="District code, e.g. SAM.")
    ward = django_filters.CharFilter(field_name="household__village__parent__code", help_text="Ward code.")
    village = django_filters.CharFilter(field_name="household__village__code", help_text="Village code.")
    status = django_filters.ChoiceFilter(choices=MemberStatus.choices)
    household = django_filters.CharFilter(method="_household", help_text="Household number, e.g. SAM-000123.")
    national_id = django_filters.CharFilter(method="_national_id", help_text="The exact national ID.")
    search = django_filters.CharFilter(method="_search", help_text="A name, spelt loosely; best matches first.")

    class Meta:
        model = Member
        fields: list[str] = []

    def _household(self, queryset, name, value):
        return queryset.filter(household__number=value.strip().upper())

    def _national_id(self, queryset, name, value):
        # Stored trimmed and in capitals (see registry.services.refresh_member_keys).
        return queryset.filter(national_id=value.strip().upper())

    def _search(self, queryset, name, value):
        ranked = member_candidates_by_name(queryset, value)
        return _in_rank_order(queryset, [member.pk for member, _score in ranked])

    def filter_queryset(self, queryset):
        condition = self.person_condition()
        if condition is not None:
            queryset = queryset.filter(condition)
        # The name search ranks what the other filters leave, so it runs last.
        return super().filter_queryset(queryset)
