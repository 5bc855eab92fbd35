"""Query-string filters of the enrolment, payment and payment-cycle lists.

The querysets they narrow are already scoped to the user (`payments.selectors`);
a filter can only narrow further.
"""

import django_filters

from ..models import (
    CycleStatus,
    Enrolment,
    EnrolmentSource,
    EnrolmentStatus,
    Payment,
    PaymentChannel,
    PaymentCycle,
    PaymentStatus,
)


def _values(choices) -> str:
    return ", ".join(f"`{value}`" for value, _ in choices)


class EnrolmentFilter(django_filters.FilterSet):
    programme = django_filters.CharFilter(
        field_name="programme__code", lookup_expr="iexact", help_text="Programme code, e.g. SCT."
    )
    status = django_filters.MultipleChoiceFilter(
        choices=EnrolmentStatus.choices,
        help_text=f"One or more of {_values(EnrolmentStatus.choices)} (repeat the parameter).",
    )
    district = django_filters.CharFilter(field_name="district__code", lookup_expr="iexact", help_text="District code.")
    household = django_filters.CharFilter(method="_household", help_text="Household number, e.g. SAM-000123.")
    under_review = django_filters.BooleanFilter(
        field_name="review_since",
        lookup_expr="isnull",
        exclude=True,
        help_text="true: flagged because the household lost eligibility, waiting for an officer's decision.",
    )
    source = django_filters.ChoiceFilter(choices=EnrolmentSource.choices, help_text=_values(EnrolmentSource.choices))
    channel = django_filters.ChoiceFilter(choices=PaymentChannel.choices, help_text=_values(PaymentChannel.choices))
    applied_from = django_filters.DateFilter(
        field_name="applied_at", lookup_expr="date__gte", help_text="Applied on or after this date."
    )
    applied_to = django_filters.DateFilter(
        field_name="applied_at", lookup_expr="date__lte", help_text="Applied on or before this date."
    )

    class Meta:
        model = Enrolment
        fields: list[str] = []

    def _household(self, queryset, name, value):
        return queryset.filter(household__number=value.strip().upper())


class PaymentFilter(django_filters.FilterSet):
    cycle = django_filters.NumberFilter(field_name="cycle_id", help_text="Payment cycle id.")
    status = django_filters.MultipleChoiceFilter(
        choices=PaymentStatus.choices,
        help_text=f"One or more of {_values(PaymentStatus.choices)} (repeat the parameter).",
    )
    household = django_filters.CharFilter(method="_household", help_text="Household number, e.g. SAM-000123.")
    programme = django_filters.CharFilter(
        field_name="programme__code", lookup_expr="iexact", help_text="Programme code, e.g. SCT."
    )
    district = django_filters.CharFilter(field_name="district__code", lookup_expr="iexact", help_text="District code.")
    channel = django_filters.ChoiceFilter(choices=PaymentChannel.choices, help_text=_values(PaymentChannel.choices))
    reference = django_filters.CharFilter(
        lookup_expr="iexact", help_text="The payment's reference, as the provider quotes it."
    )
    reissue = django_filters.BooleanFilter(
        field_name="reissue_of", lookup_expr="isnull", exclude=True, help_text="true: reissues of failed payments only."
    )

    class Meta:
        model = Payment
        fields: list[str] = []

    def _household(self, queryset, name, value):
        return queryset.filter(household__number=value.strip().upper())


class PaymentCycleFilter(django_filters.FilterSet):
    programme = django_filters.CharFilter(
        field_name="programme__code", lookup_expr="iexact", help_text="Programme code, e.g. SCT."
    )
    status = django_filters.MultipleChoiceFilter(
        choices=CycleStatus.choices,
        help_text=f"One or more of {_values(CycleStatus.choices)} (repeat the parameter).",
    )
    period_from = django_filters.DateFilter(
        field_name="period_start", lookup_expr="gte", help_text="Periods starting on or after this date."
    )
    period_to = django_filters.DateFilter(
        field_name="period_start", lookup_expr="lte", help_text="Periods starting on or before this date."
    )

    class Meta:
        model = PaymentCycle
        fields: list[str] = []
