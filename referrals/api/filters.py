"""Query-string filters of the referral list.

The queryset they narrow is already scoped to the user (districts, or the
agency for its officers and its system); a filter can only narrow further.
"""

import django_filters
from django.db.models import Q
from django.utils import timezone

from ..models import OPEN_STATUSES, Referral, ReferralStatus
from ..selectors import AWAITING_AGENCY, IN_PROGRESS


def overdue_condition(*, today) -> Q:
    """The same test as the worklist's overdue tab (`referrals.selectors.referral_is_overdue`):
    marked by the follow-up job and still in progress, or waiting on the agency past its due date."""
    return Q(status__in=IN_PROGRESS, overdue_since__isnull=False) | Q(status__in=AWAITING_AGENCY, due_date__lt=today)


def _values(choices) -> str:
    return ", ".join(f"`{value}`" for value, _ in choices)


class ReferralFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        choices=ReferralStatus.choices,
        help_text=f"One or more of {_values(ReferralStatus.choices)} (repeat the parameter).",
    )
    open = django_filters.BooleanFilter(method="_open", help_text="true: draft, sent, received or accepted.")
    programme = django_filters.CharFilter(
        field_name="programme__code", lookup_expr="iexact", help_text="Programme code, e.g. SCT."
    )
    agency = django_filters.CharFilter(field_name="agency__code", lookup_expr="iexact", help_text="Agency code.")
    district = django_filters.CharFilter(field_name="district__code", lookup_expr="iexact", help_text="District code.")
    ward = django_filters.CharFilter(
        field_name="household__village__parent__code", lookup_expr="iexact", help_text="Ward code."
    )
    household = django_filters.CharFilter(method="_household", help_text="Household number, e.g. SAM-000123.")
    overdue = django_filters.BooleanFilter(
        method="_overdue",
        help_text="true: sent or received and past the due date, or marked overdue by the follow-up job and "
        "not yet closed; false: the others.",
    )
    created_from = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__gte", help_text="Made on or after this date."
    )
    created_to = django_filters.DateFilter(
        field_name="created_at", lookup_expr="date__lte", help_text="Made on or before this date."
    )
    due_from = django_filters.DateFilter(field_name="due_date", lookup_expr="gte", help_text="Due on or after.")
    due_to = django_filters.DateFilter(field_name="due_date", lookup_expr="lte", help_text="Due on or before.")

    class Meta:
        model = Referral
        fields: list[str] = []

    def _open(self, queryset, name, value):
        return queryset.filter(status__in=OPEN_STATUSES) if value else queryset.exclude(status__in=OPEN_STATUSES)

    def _household(self, queryset, name, value):
        return queryset.filter(household__number=value.strip().upper())

    def _overdue(self, queryset, name, value):
        condition = overdue_condition(today=timezone.localdate())
        return queryset.filter(condition) if value else queryset.exclude(condition)
