"""The dashboard over HTTP: the same figures, indicators and tables as the
page, as JSON, for the ministry's reporting and partners' systems.

Same reading of the query string as the page (`dashboard.forms`), same
scope: a district the user may not see is a 404 in the API's error shape,
a role without the dashboard a 403, a bad filter a 400 naming the field.
"""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.api.views import ERROR_RESPONSE

from ..figures import dashboard_build
from ..forms import OutOfScope, dashboard_filter_form
from ..selectors import Split, dashboard_may_view
from ..tables import Table

DASHBOARD_RESPONSE = inline_serializer(
    "Dashboard",
    {
        "districts": inline_serializer(
            "DashboardDistrict",
            {"id": serializers.IntegerField(), "code": serializers.CharField(), "name": serializers.CharField()},
            many=True,
        ),
        "ward": serializers.IntegerField(allow_null=True),
        "period": inline_serializer(
            "DashboardPeriod", {"from": serializers.CharField(), "to": serializers.CharField()}
        ),
        "split": serializers.CharField(),
        "refreshed_at": serializers.DateTimeField(allow_null=True, help_text="How fresh the figures are."),
        "indicators": inline_serializer(
            "DashboardIndicator",
            {
                "key": serializers.CharField(),
                "name": serializers.CharField(),
                "formula": serializers.CharField(),
                "unit": serializers.CharField(),
                "value": serializers.FloatField(allow_null=True),
                "note": serializers.CharField(),
            },
            many=True,
        ),
        "tables": inline_serializer(
            "DashboardTable",
            {
                "key": serializers.CharField(),
                "title": serializers.CharField(),
                "note": serializers.CharField(),
                "columns": inline_serializer(
                    "DashboardColumn",
                    {"key": serializers.CharField(), "label": serializers.CharField(), "kind": serializers.CharField()},
                    many=True,
                ),
                "rows": serializers.ListField(
                    child=serializers.DictField(), help_text="One object per row: column key to value."
                ),
            },
            many=True,
        ),
    },
)


def _table(table: Table) -> dict:
    return {
        "key": table.key,
        "title": table.title,
        "note": table.note,
        "columns": [{"key": c.key, "label": c.label, "kind": c.kind} for c in table.columns],
        "rows": table.records(),
    }


class DashboardView(APIView):
    @extend_schema(
        summary="A district dashboard: coverage, gaps, referrals, payments, grievances",
        description=(
            "The figures of the district committee dashboard for your districts (ministry staff: any), from "
            "summaries a Celery job keeps current (`refreshed_at`). Money is a string with two decimals, in "
            "the programme's currency; rates are percentages."
        ),
        parameters=[
            OpenApiParameter(
                "district", OpenApiTypes.INT, many=True, description="District ids; default: all of yours."
            ),
            OpenApiParameter("ward", OpenApiTypes.INT, description="A ward of the districts chosen."),
            OpenApiParameter("from", OpenApiTypes.STR, description="First month, YYYY-MM (default: 11 months ago)."),
            OpenApiParameter("to", OpenApiTypes.STR, description="Last month, YYYY-MM (default: this month)."),
            OpenApiParameter("split", OpenApiTypes.STR, enum=[c[0] for c in Split.CHOICES if c[0]]),
            OpenApiParameter(
                "cycles",
                OpenApiTypes.STR,
                enum=["all"],
                description="`all`: every payment cycle of the period in `payments` (default: each programme's last 3).",
            ),
        ],
        responses={
            200: DASHBOARD_RESPONSE,
            400: OpenApiResponse(ERROR_RESPONSE, description="A filter is not valid; `fields` names it."),
            403: OpenApiResponse(ERROR_RESPONSE, description="Your role has no dashboard."),
            404: OpenApiResponse(ERROR_RESPONSE, description="A district that is not one of yours."),
        },
    )
    def get(self, request):
        if not dashboard_may_view(request.user):
            raise PermissionDenied("The dashboard is for district committee members and ministry staff.")
        try:
            form = dashboard_filter_form(user=request.user, params=request.query_params, today=timezone.localdate())
        except OutOfScope:
            raise NotFound("No such district among yours.") from None
        if not form.is_valid():
            raise ValidationError({field: list(errors) for field, errors in form.errors.items()})
        query = form.query()
        board = dashboard_build(query=query)
        return Response(
            {
                "districts": [{"id": d.pk, "code": d.code, "name": d.name} for d in query.districts],
                "ward": query.ward.pk if query.ward else None,
                "period": {"from": f"{query.period.first:%Y-%m}", "to": f"{query.period.last:%Y-%m}"},
                "split": query.split,
                "refreshed_at": board.freshness.refreshed_at,
                "indicators": [
                    {
                        "key": value.indicator.key,
                        "name": value.indicator.name,
                        "formula": value.indicator.formula,
                        "unit": value.indicator.unit,
                        "value": value.value,
                        "note": value.note,
                    }
                    for value in board.indicators
                ],
                "tables": [_table(table) for table in board.tables().values()],
            }
        )
