import django_filters

from ..models import Programme, ProgrammeKind, ProgrammeStatus


class ProgrammeFilter(django_filters.FilterSet):
    district = django_filters.CharFilter(method="in_district", help_text="Programmes running in this district (code).")
    agency = django_filters.CharFilter(field_name="agency__code", lookup_expr="iexact", help_text="The agency's code.")
    kind = django_filters.ChoiceFilter(choices=ProgrammeKind.choices)
    status = django_filters.ChoiceFilter(
        choices=ProgrammeStatus.choices, help_text="Only ministry staff see programmes that are not active."
    )

    class Meta:
        model = Programme
        fields = ["district", "agency", "kind", "status"]

    def in_district(self, queryset, name, value):
        return queryset.filter(coverage__district__code=value.strip().upper())
