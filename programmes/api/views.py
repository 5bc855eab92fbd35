"""The catalogue and eligibility over HTTP.

Every signed-in user reads the catalogue (ministry staff also see drafts and
suspended programmes). A household's eligibility is personal data, scoped like
the household itself: outside the user's districts it does not exist (404).
Previewing a draft rule is for ministry staff only (403 for others).
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from registry.api.views import ERROR_RESPONSE
from registry.models import Household
from registry.selectors import households_for
from spf.scope import district_ids_for

from ..models import Agency, Programme
from ..selectors import household_eligibility, programme_by_code, programme_catalogue, rule_preview
from .filters import ProgrammeFilter
from .permissions import IsMinistryStaff
from .serializers import (
    AgencySerializer,
    HouseholdEligibilitySerializer,
    PreviewRequestSerializer,
    PreviewSerializer,
    ProgrammeSerializer,
)


def _sees_everything(user) -> bool:
    return district_ids_for(user) is None


@extend_schema_view(
    list=extend_schema(summary="The programme catalogue", description="Active programmes; ministry staff see all."),
    retrieve=extend_schema(
        summary="One programme with its districts, documents and current rule",
        responses={200: ProgrammeSerializer, 404: ERROR_RESPONSE},
    ),
)
class ProgrammeViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ProgrammeSerializer
    filterset_class = ProgrammeFilter
    lookup_field = "code"
    lookup_value_converter = "str"
    queryset = Programme.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return programme_catalogue(include_inactive=_sees_everything(self.request.user))

    def get_object(self) -> Programme:
        try:
            programme = programme_by_code(
                code=self.kwargs["code"], include_inactive=_sees_everything(self.request.user)
            )
        except Programme.DoesNotExist:
            raise NotFound() from None
        self.check_object_permissions(self.request, programme)
        return programme

    @extend_schema(
        summary="Counts of a draft rule, per district, before saving it",
        description="How many active households in each district would be eligible under the draft, how many "
        "would need information, and how many would change outcome from the one stored now. Nothing is saved. "
        "A draft that does not compile is a 400 naming `eligibility_rule` or `benefit_formula`, each message "
        "starting with its line and column.",
        request=PreviewRequestSerializer,
        responses={
            200: PreviewSerializer,
            400: OpenApiResponse(ERROR_RESPONSE, description="The draft does not compile; `fields` says where."),
            403: OpenApiResponse(ERROR_RESPONSE, description="Only ministry staff preview drafts."),
            404: ERROR_RESPONSE,
        },
        filters=False,
    )
    @action(detail=True, methods=["post"], permission_classes=[IsMinistryStaff], filterset_class=None)
    def preview(self, request, code=None):
        programme = self.get_object()
        draft = PreviewRequestSerializer(data=request.data)
        draft.is_valid(raise_exception=True)
        # The service's ValidationError becomes the 400 with its field names.
        districts = rule_preview(
            programme=programme,
            eligibility_rule=draft.validated_data["eligibility_rule"],
            benefit_formula=draft.validated_data["benefit_formula"],
            reference_date=draft.validated_data.get("reference_date"),
        )
        return Response(PreviewSerializer({"programme": programme.code, "districts": districts}).data)


@extend_schema_view(
    list=extend_schema(summary="Agencies that run programmes"),
    retrieve=extend_schema(summary="One agency", responses={200: AgencySerializer, 404: ERROR_RESPONSE}),
)
class AgencyViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = AgencySerializer
    lookup_field = "code"
    lookup_value_converter = "str"
    queryset = Agency.objects.order_by("name")
    filterset_fields = ["kind", "active"]


class HouseholdEligibilityView(generics.GenericAPIView):
    serializer_class = HouseholdEligibilitySerializer
    queryset = Household.objects.none()  # for the schema; requests use households_for

    @extend_schema(
        summary="A household's eligibility for every programme, with reasons",
        description="The stored results: outcome, estimated amount, each clause of the rule with what it gave, "
        "and the information still to collect. Programmes not assessed yet are absent.",
        responses={200: HouseholdEligibilitySerializer, 404: ERROR_RESPONSE},
    )
    def get(self, request, pk: int):
        try:
            household = households_for(request.user).get(pk=pk)
        except Household.DoesNotExist:
            raise NotFound() from None
        body = {
            "household": household.pk,
            "number": household.number,
            "results": household_eligibility(household=household),
        }
        return Response(HouseholdEligibilitySerializer(body).data)
