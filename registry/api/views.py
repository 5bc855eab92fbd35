"""The registry over HTTP: households and individuals.

Each view reads through `registry.selectors` (already scoped to the user's
districts) and writes through `registry.services`; outside the user's
districts a household or person does not exist, so the answer is 404.
"""

from contextlib import contextmanager

from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from registry.models import Household, Member
from registry.selectors import household_detail, household_history, households_for, members_for
from registry.services import (
    DuplicateSuspected,
    MemberInput,
    household_register,
    household_update,
    member_add,
    member_update,
)
from spf.api.exceptions import Conflict
from spf.api.permissions import CanEditRegistryOrReadOnly

from .filters import HouseholdFilter, MemberFilter
from .serializers import (
    ChangeEntrySerializer,
    HouseholdCreateSerializer,
    HouseholdSerializer,
    HouseholdUpdateSerializer,
    IndividualCreateSerializer,
    IndividualSerializer,
    MemberUpdateSerializer,
    member_service_arguments,
)


@contextmanager
def registry_service_errors():
    """Turn what a registry service refuses into API errors.

    A service raises PermissionDenied for a household outside the user's
    districts: to the API client it does not exist. (The role check is made
    before, by the permission class, and answers 403.) Django's
    ValidationError is left to the exception handler, which keeps its field
    names.
    """
    try:
        yield
    except PermissionDenied:
        raise NotFound() from None
    except DuplicateSuspected as suspected:
        raise Conflict(
            "These people may already be registered. Check the candidates; "
            "send the same request with confirm_duplicates: true to register anyway.",
            code="duplicate_suspected",
            extra={"candidates": [candidate.as_dict() for candidate in suspected.candidates]},
        ) from None


ERROR_RESPONSE = inline_serializer(
    "Error",
    {
        "error": inline_serializer(
            "ErrorBody",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
            },
        )
    },
)
DUPLICATE_RESPONSE = inline_serializer(
    "DuplicateError",
    {
        "error": inline_serializer(
            "DuplicateErrorBody",
            {
                "code": serializers.CharField(),
                "message": serializers.CharField(),
                "fields": serializers.DictField(child=serializers.ListField(child=serializers.CharField())),
                "candidates": inline_serializer(
                    "DuplicateCandidate",
                    {
                        "member_id": serializers.IntegerField(),
                        "household_id": serializers.IntegerField(),
                        "household_number": serializers.CharField(),
                        "name": serializers.CharField(),
                        "date_of_birth": serializers.DateField(allow_null=True),
                        "village": serializers.CharField(),
                        "score": serializers.FloatField(),
                        "reasons": serializers.ListField(child=serializers.CharField()),
                    },
                    many=True,
                ),
            },
        )
    },
)
WRITE_ERRORS = {
    400: OpenApiResponse(ERROR_RESPONSE, description="Not valid; `fields` names each problem."),
    403: OpenApiResponse(ERROR_RESPONSE, description="Your role cannot change the registry."),
    404: OpenApiResponse(ERROR_RESPONSE, description="Not found in your districts."),
}


class _RegistryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    permission_classes = [CanEditRegistryOrReadOnly]
    # Households and people are never deleted or replaced whole over the API:
    # a death or a move is a life event, an edit is a PATCH.
    http_method_names = ["get", "post", "patch", "head", "options"]
    lookup_value_converter = "int"


@extend_schema_view(
    list=extend_schema(summary="Households in your districts", description="Filters combine; see each parameter."),
    retrieve=extend_schema(
        summary="One household with its members", responses={200: HouseholdSerializer, 404: ERROR_RESPONSE}
    ),
)
class HouseholdViewSet(_RegistryViewSet):
    serializer_class = HouseholdSerializer
    filterset_class = HouseholdFilter
    queryset = Household.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return (
            households_for(self.request.user)
            .select_related("district", "village", "village__parent", "head")
            .prefetch_related(Prefetch("members", queryset=Member.objects.order_by("id")))
        )

    def get_object(self) -> Household:
        try:
            household = household_detail(user=self.request.user, household_id=int(self.kwargs["pk"]))
        except Household.DoesNotExist:
            raise NotFound() from None
        self.check_object_permissions(self.request, household)
        return household

    @extend_schema(
        summary="Register a household with its members",
        request=HouseholdCreateSerializer,
        responses={
            201: HouseholdSerializer,
            **WRITE_ERRORS,
            409: OpenApiResponse(DUPLICATE_RESPONSE, description="Likely duplicates; confirm to register anyway."),
        },
        examples=[
            OpenApiExample(
                "A household of two",
                request_only=True,
                value={
                    "village": "SAM-W1-V1",
                    "phone": "0977123456",
                    "members": [
                        {
                            "first_name": "Mary",
                            "last_name": "Mwansa",
                            "sex": "F",
                            "date_of_birth": "1980-05-17",
                            "relationship": "head",
                            "national_id": "123456/10/1",
                        },
                        {
                            "first_name": "Joseph",
                            "last_name": "Mwansa",
                            "sex": "M",
                            "date_of_birth": "2012-03-02",
                            "relationship": "child",
                        },
                    ],
                },
            )
        ],
    )
    def create(self, request, *args, **kwargs):
        serializer = HouseholdCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        members = [MemberInput(**member_service_arguments(member)) for member in data["members"]]
        with registry_service_errors():
            household = household_register(
                acting_user=request.user,
                village=data["village"],
                members=members,
                address=data.get("address", ""),
                phone=data.get("phone", ""),
                gps_latitude=data.get("gps_latitude"),
                gps_longitude=data.get("gps_longitude"),
                registration_date=data.get("registration_date"),
                attributes=data.get("attributes"),
                duplicates_confirmed=data["confirm_duplicates"],
            )
        household = household_detail(user=request.user, household_id=household.pk)
        return Response(
            HouseholdSerializer(household, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Edit a household's own fields",
        description="Members are edited at /individuals/; moving village is a life event, not an edit.",
        request=HouseholdUpdateSerializer,
        responses={200: HouseholdSerializer, **WRITE_ERRORS},
    )
    def partial_update(self, request, *args, **kwargs):
        household = self.get_object()
        serializer = HouseholdUpdateSerializer(data=request.data, partial=True, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        with registry_service_errors():
            household_update(acting_user=request.user, household=household, **serializer.service_arguments())
        household = household_detail(user=request.user, household_id=household.pk)
        return Response(HouseholdSerializer(household, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="The household's change history, newest first",
        filters=False,
        responses={200: ChangeEntrySerializer(many=True), 404: ERROR_RESPONSE},
    )
    @action(detail=True, methods=["get"], filterset_class=None, serializer_class=ChangeEntrySerializer)
    def history(self, request, pk=None):
        try:
            household = households_for(request.user).get(pk=int(pk))
        except Household.DoesNotExist:
            raise NotFound() from None
        page = self.paginate_queryset(household_history(household=household))
        return self.get_paginated_response(ChangeEntrySerializer(page, many=True).data)


@extend_schema_view(
    list=extend_schema(summary="People in your districts", description="Filters combine; see each parameter."),
    retrieve=extend_schema(summary="One person", responses={200: IndividualSerializer, 404: ERROR_RESPONSE}),
)
class IndividualViewSet(_RegistryViewSet):
    serializer_class = IndividualSerializer
    filterset_class = MemberFilter
    queryset = Member.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return members_for(self.request.user).select_related(
            "household", "household__district", "household__village", "household__village__parent"
        )

    @extend_schema(
        summary="Add a person to a household",
        description="A birth, a person moving in, or one missed at registration (`event`).",
        request=IndividualCreateSerializer,
        responses={201: IndividualSerializer, **WRITE_ERRORS},
    )
    def create(self, request, *args, **kwargs):
        serializer = IndividualCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        with registry_service_errors():
            member = member_add(
                acting_user=request.user,
                household=serializer.validated_data["household"],
                event=serializer.validated_data["event"],
                note=serializer.validated_data.get("note", ""),
                **serializer.service_arguments(),
            )
        member = self.get_queryset().get(pk=member.pk)
        return Response(
            IndividualSerializer(member, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Edit a person",
        description="Death, moving out and changing the head are life events, not edits.",
        request=MemberUpdateSerializer,
        responses={200: IndividualSerializer, **WRITE_ERRORS},
    )
    def partial_update(self, request, *args, **kwargs):
        member = self.get_object()
        serializer = MemberUpdateSerializer(data=request.data, partial=True, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        with registry_service_errors():
            member_update(
                acting_user=request.user,
                member=member,
                note=serializer.validated_data.get("note", ""),
                **serializer.service_arguments(),
            )
        member = self.get_queryset().get(pk=member.pk)
        return Response(IndividualSerializer(member, context=self.get_serializer_context()).data)
