"""Referrals over HTTP: the window's worklist and a partner agency's queue.

Each user sees the referrals in their scope (districts for the window and the
committee; their agency's, in their districts, for its officers and its
system; everything for the ministry). Outside it a referral or a household
does not exist: 404. Writes go through `referrals.services`: creation is
`referral_create`, every move is `referral_transition`, which enforces who may
move a referral where and makes a repeated `Idempotency-Key` a no-op.
"""

from contextlib import contextmanager

from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.response import Response

from registry.api.views import ERROR_RESPONSE
from registry.selectors import households_for

from ..models import Delivery, Referral, ReferralEvent
from ..selectors import referrals_for
from ..services import referral_create, referral_transition
from .filters import ReferralFilter
from .permissions import CanReferOrReadOnly
from .serializers import (
    ReferralCreateSerializer,
    ReferralDetailSerializer,
    ReferralSerializer,
    ReferralTransitionSerializer,
)


@contextmanager
def referral_service_errors(*, refused_is_not_found: bool):
    """What a referral service refuses, as API errors.

    Making a referral for a household outside the user's districts: the
    household does not exist for them (404). Moving a referral they can see
    but may not move (the window accepting for the agency): 403 with the
    service's reason. ValidationError is left to the exception handler, which
    keeps its field names.
    """
    try:
        yield
    except PermissionDenied as refused:
        if refused_is_not_found:
            raise NotFound() from None
        raise ApiPermissionDenied(str(refused) or None) from None


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Any string up to 100 characters. The same key twice for one referral answers 200 with the "
    "referral as it stands and records nothing more: an agency's system may safely retry.",
)
WRITE_ERRORS = {
    400: OpenApiResponse(ERROR_RESPONSE, description="Not valid; `fields` names each problem."),
    403: OpenApiResponse(ERROR_RESPONSE, description="Your role cannot make this change; the message says why."),
    404: OpenApiResponse(ERROR_RESPONSE, description="Not found in your scope."),
}


@extend_schema_view(
    list=extend_schema(
        summary="Referrals in your scope",
        description="The window sees its districts' referrals; an agency's officers and its system see only the "
        "agency's. Filters combine; newest first.",
    ),
    retrieve=extend_schema(
        summary="One referral with its timeline and deliveries",
        responses={200: ReferralDetailSerializer, 404: ERROR_RESPONSE},
    ),
)
class ReferralViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ReferralSerializer
    filterset_class = ReferralFilter
    permission_classes = [CanReferOrReadOnly]
    lookup_value_converter = "int"
    queryset = Referral.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return referrals_for(self.request.user).select_related(
            "household__head",
            "household__village__parent",
            "member",
            "programme",
            "agency",
            "district",
            "created_by",
        )

    def get_serializer_context(self):
        # One "today" per request, so every row of a page agrees on what is overdue.
        return {**super().get_serializer_context(), "today": timezone.localdate()}

    def get_serializer_class(self):
        return ReferralDetailSerializer if self.action != "list" else ReferralSerializer

    def _detail(self, pk: int) -> Referral:
        queryset = self.get_queryset().prefetch_related(
            Prefetch("events", queryset=ReferralEvent.objects.select_related("actor", "agency").order_by("at", "id")),
            Prefetch("deliveries", queryset=Delivery.objects.select_related("event").order_by("created_at", "id")),
        )
        try:
            return queryset.get(pk=pk)
        except Referral.DoesNotExist:
            raise NotFound() from None

    def get_object(self) -> Referral:
        referral = self._detail(int(self.kwargs["pk"]))
        self.check_object_permissions(self.request, referral)
        return referral

    def _read(self, referral: Referral, *, status_code: int = status.HTTP_200_OK) -> Response:
        referral = self._detail(referral.pk)
        return Response(ReferralDetailSerializer(referral, context=self.get_serializer_context()).data, status_code)

    @extend_schema(
        summary="Refer a household to a programme",
        description="Made by the window and sent at once (due date from the programme's service level), or kept "
        "as a draft with `send: false`. A household outside your districts is a 404.",
        request=ReferralCreateSerializer,
        responses={201: ReferralDetailSerializer, **WRITE_ERRORS},
        examples=[
            OpenApiExample(
                "Refer to the cash transfer",
                request_only=True,
                value={"household": "SAM-000123", "programme": "SCT", "reason": "Elderly head, no income"},
            )
        ],
    )
    def create(self, request, *args, **kwargs):
        serializer = ReferralCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        household = households_for(request.user).filter(number=data["household"].strip().upper()).first()
        if household is None:
            raise NotFound(f"No household {data['household'].strip().upper()} in your districts.")
        with referral_service_errors(refused_is_not_found=True):
            referral = referral_create(
                acting_user=request.user,
                household=household,
                programme=data["programme"],
                member=data.get("member"),
                source=data["source"],
                source_detail=data["source_detail"],
                reason=data["reason"],
                priority=data["priority"],
                notes=data["notes"],
                send=data["send"],
            )
        return self._read(referral, status_code=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Move a referral: send, receive, accept, reject, complete or cancel",
        description="The window sends and cancels; the agency (its officers or its system) receives, accepts, "
        "rejects (with `rejection_reason`) and completes. An illegal move is a 400 saying where the referral can "
        "go. Send an `Idempotency-Key` header to retry safely.",
        parameters=[IDEMPOTENCY_KEY],
        request=ReferralTransitionSerializer,
        responses={200: ReferralDetailSerializer, **WRITE_ERRORS},
        filters=False,
        examples=[
            OpenApiExample("Accept", request_only=True, value={"status": "accepted"}),
            OpenApiExample(
                "Reject",
                request_only=True,
                value={"status": "rejected", "rejection_reason": "capacity_full", "reason": "Ward quota reached"},
            ),
        ],
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def transition(self, request, pk=None):
        referral = self.get_object()
        serializer = ReferralTransitionSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with referral_service_errors(refused_is_not_found=False):
            referral = referral_transition(
                referral=referral,
                to_status=data["status"],
                acting_user=request.user,
                reason=data["reason"],
                rejection_reason=data["rejection_reason"],
                idempotency_key=request.headers.get("Idempotency-Key", ""),
            )
        return self._read(referral)
