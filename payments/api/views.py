"""Enrolments, payment cycles and payments over HTTP.

Each user reads through `payments.api.selectors` (districts for the window,
the agency for its officers, everything for the ministry); outside that scope
an enrolment, payment or cycle does not exist: 404, the same answer as for an
id nobody has. Every write is one call of `payments.services`,
`payments.payroll` or `payments.reconciliation`, which decide who may do what
(403 with their reason), the state machine and maker-checker (400 naming the
field).
"""

from contextlib import contextmanager

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from referrals.models import Referral
from referrals.selectors import referral_for_number
from registry.api.views import ERROR_RESPONSE
from registry.selectors import households_for
from registry.uploads import UploadRefused, check_request_size
from spf.models import ExportKind, Role
from spf.services import personal_data_export_record

from ..models import (
    CycleEvent,
    Enrolment,
    EnrolmentEvent,
    EnrolmentSource,
    Payment,
    PaymentCycle,
    PaymentEvent,
    Reconciliation,
)
from ..payroll import (
    cycle_totals_by_district,
    may_run_payroll,
    payment_cycle_create,
    payments_reissue,
    payroll_approve,
    payroll_export,
    payroll_generate,
)
from ..services import (
    enrolment_apply,
    enrolment_moves_for,
    enrolment_review_close,
    enrolment_set_payment_details,
    enrolment_transition,
)
from .filters import EnrolmentFilter, PaymentCycleFilter, PaymentFilter
from .selectors import (
    cycle_district_ids_for,
    enrolments_for,
    payment_cycles_for,
    payments_for,
    reconciliations_for,
)
from .serializers import (
    ROW_OUTCOMES,
    EnrolmentCreateSerializer,
    EnrolmentDetailSerializer,
    EnrolmentReviewSerializer,
    EnrolmentSerializer,
    EnrolmentTransitionSerializer,
    PaymentCycleCreateSerializer,
    PaymentCycleDetailSerializer,
    PaymentCycleSerializer,
    PaymentDetailsSerializer,
    PaymentSerializer,
    PayrollGenerateSerializer,
    PayrollReportSerializer,
    ReconcileSerializer,
    ReconciliationSerializer,
    ReissueResultSerializer,
    ReissueSerializer,
)


class FieldNotFound(NotFound):
    """A 404 that names the field whose value is not found in the user's scope."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.extra = {"fields": {field: [message]}}


@contextmanager
def payment_service_errors():
    """What a payments service refuses, as API errors.

    PermissionDenied (the role, the agency, maker-checker's cousin "only the
    agency can approve") is a 403 carrying the service's reason; the project's
    handler would otherwise drop it. ValidationError is left to the handler,
    which keeps its field names.
    """
    try:
        yield
    except PermissionDenied as refused:
        raise ApiPermissionDenied(str(refused) or None) from None


def _idempotency_key(request) -> str:
    return request.headers.get("Idempotency-Key", "")


def _csv_attachment(name: str, content: bytes) -> HttpResponse:
    response = HttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


# The actions whose answer is a CSV file.
CSV_ACTIONS = ("export", "reconciliation_report")

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Any string up to 100 characters. The same key twice for one enrolment answers with the enrolment "
    "as it stands and records nothing more: a partner system may safely retry.",
)
WRITE_ERRORS = {
    400: OpenApiResponse(ERROR_RESPONSE, description="Not valid; `fields` names each problem."),
    403: OpenApiResponse(ERROR_RESPONSE, description="Your role or agency cannot do this; the message says why."),
    404: OpenApiResponse(ERROR_RESPONSE, description="Not found in your scope."),
}
CSV_FILE = {
    (200, "text/csv"): OpenApiResponse(OpenApiTypes.BINARY, description="The CSV file, as an attachment."),
}


# --- enrolments --------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Enrolments in your scope",
        description="The window sees its districts' enrolments; a programme's officers their agency's, in their "
        "districts; the ministry all. Filters combine; newest first.",
    ),
    retrieve=extend_schema(
        summary="One enrolment with its history and the moves you may make",
        responses={200: EnrolmentDetailSerializer, 404: ERROR_RESPONSE},
    ),
)
class EnrolmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = EnrolmentSerializer
    filterset_class = EnrolmentFilter
    lookup_value_converter = "int"
    queryset = Enrolment.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return enrolments_for(self.request.user).select_related(
            "household__head",
            "member",
            "programme__agency",
            "district",
            "referral",
            "applied_by",
            "verified_by",
            "approved_by",
        )

    def get_serializer_class(self):
        return EnrolmentSerializer if self.action == "list" else EnrolmentDetailSerializer

    def _detail(self, pk: int) -> Enrolment:
        queryset = self.get_queryset().prefetch_related(
            Prefetch("events", queryset=EnrolmentEvent.objects.select_related("actor").order_by("at", "id"))
        )
        try:
            enrolment = queryset.get(pk=pk)
        except Enrolment.DoesNotExist:
            raise NotFound() from None
        enrolment.moves = enrolment_moves_for(enrolment=enrolment, user=self.request.user)
        return enrolment

    def get_object(self) -> Enrolment:
        enrolment = self._detail(int(self.kwargs["pk"]))
        self.check_object_permissions(self.request, enrolment)
        return enrolment

    def _read(self, enrolment: Enrolment, *, status_code: int = status.HTTP_200_OK) -> Response:
        enrolment = self._detail(enrolment.pk)
        return Response(EnrolmentDetailSerializer(enrolment, context=self.get_serializer_context()).data, status_code)

    @extend_schema(
        summary="Apply for a household (or a member) to join a programme",
        description="From an accepted referral (give `referral`), directly at the window for programmes that "
        "enrol directly, or by the programme's agency. A household outside your districts is a 404. Send an "
        "`Idempotency-Key` header to retry safely: the same key answers with the enrolment already made.",
        parameters=[IDEMPOTENCY_KEY],
        request=EnrolmentCreateSerializer,
        responses={201: EnrolmentDetailSerializer, **WRITE_ERRORS},
        examples=[
            OpenApiExample(
                "Enrol from a referral, paid by mobile money",
                request_only=True,
                value={
                    "household": "SAM-000123",
                    "programme": "SCT",
                    "referral": "R00000042",
                    "channel": "mobile_money",
                    "account_number": "0977123456",
                },
            )
        ],
    )
    def create(self, request, *args, **kwargs):
        serializer = EnrolmentCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        number = data["household"].strip().upper()
        household = households_for(request.user).filter(number=number).first()
        if household is None:
            raise FieldNotFound("household", f"No household {number} in your districts.")
        referral, source = None, EnrolmentSource.WINDOW
        if data["referral"].strip():
            try:
                referral = referral_for_number(user=request.user, number=data["referral"])
            except Referral.DoesNotExist:
                raise ValidationError(
                    {"referral": [f"No referral {data['referral'].strip().upper()} that you can see."]}
                ) from None
            source = EnrolmentSource.REFERRAL
        elif request.user.role == Role.PROGRAMME_OFFICER:
            source = EnrolmentSource.AGENCY
        with payment_service_errors():
            enrolment = enrolment_apply(
                acting_user=request.user,
                household=household,
                programme=data["programme"],
                member=data.get("member"),
                referral=referral,
                source=source,
                external_reference=data["external_reference"],
                channel=data["channel"],
                account_number=data["account_number"],
                account_name=data["account_name"],
                pay_point=data["pay_point"],
                reason=data["reason"],
                idempotency_key=_idempotency_key(request),
            )
        return self._read(enrolment, status_code=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Move an enrolment: verify, approve, activate, suspend, reinstate or exit",
        description="Verify: the window or the agency. Approve, activate, suspend (with `reason`), reinstate "
        "(`active` from suspended) and exit (with `exit_reason`): the agency or ministry staff. Maker-checker: "
        "whoever applied for or verified an enrolment cannot approve it (400 on `approved_by`). Approval sets the "
        "amount from the formula and is refused when the district's capacity (`capacity`) or budget (`budget`) "
        "would be exceeded. Send an `Idempotency-Key` header to retry safely.",
        parameters=[IDEMPOTENCY_KEY],
        request=EnrolmentTransitionSerializer,
        responses={200: EnrolmentDetailSerializer, **WRITE_ERRORS},
        filters=False,
        examples=[
            OpenApiExample("Approve", request_only=True, value={"status": "approved"}),
            OpenApiExample(
                "Exit", request_only=True, value={"status": "exited", "exit_reason": "moved", "reason": "To Lusaka"}
            ),
        ],
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def transition(self, request, pk=None):
        enrolment = self.get_object()
        serializer = EnrolmentTransitionSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with payment_service_errors():
            enrolment = enrolment_transition(
                enrolment=enrolment,
                to_status=data["status"],
                acting_user=request.user,
                reason=data["reason"],
                exit_reason=data["exit_reason"],
                idempotency_key=_idempotency_key(request),
            )
        return self._read(enrolment)

    @extend_schema(
        summary="Change how the household is paid",
        description="The window or the agency. Bank and mobile money need `account_number`; cash needs "
        "`pay_point`. Recorded in the history with the old and new values.",
        request=PaymentDetailsSerializer,
        responses={200: EnrolmentDetailSerializer, **WRITE_ERRORS},
        filters=False,
    )
    @action(detail=True, methods=["post"], url_path="payment-details", filterset_class=None)
    def payment_details(self, request, pk=None):
        enrolment = self.get_object()
        serializer = PaymentDetailsSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with payment_service_errors():
            enrolment = enrolment_set_payment_details(
                acting_user=request.user,
                enrolment=enrolment,
                channel=data["channel"],
                account_number=data["account_number"],
                account_name=data["account_name"],
                pay_point=data["pay_point"],
                reason=data["reason"],
            )
        return self._read(enrolment)

    @extend_schema(
        summary="Decide a review: keep the enrolment, or exit it",
        description="For an enrolment flagged because the household lost eligibility (`under_review`): the "
        "agency or ministry staff decide, with a reason. Nothing exits by itself.",
        request=EnrolmentReviewSerializer,
        responses={200: EnrolmentDetailSerializer, **WRITE_ERRORS},
        filters=False,
        examples=[
            OpenApiExample("Keep", request_only=True, value={"keep": True, "reason": "Income checked at home visit"}),
        ],
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def review(self, request, pk=None):
        enrolment = self.get_object()
        serializer = EnrolmentReviewSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with payment_service_errors():
            enrolment = enrolment_review_close(
                acting_user=request.user,
                enrolment=enrolment,
                keep=data["keep"],
                reason=data["reason"],
                exit_reason=data["exit_reason"],
            )
        return self._read(enrolment)


# --- payment cycles --------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Payment cycles in your scope",
        description="A programme's officers see their agency's cycles and the ministry every cycle; the window "
        "and the committee read the cycles of the programmes that run in their districts. Newest period first.",
    ),
    retrieve=extend_schema(
        summary="One payment cycle with its totals by district, its steps and its reconciliations",
        responses={200: PaymentCycleDetailSerializer, 404: ERROR_RESPONSE},
    ),
)
class PaymentCycleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PaymentCycleSerializer
    filterset_class = PaymentCycleFilter
    lookup_value_converter = "int"
    queryset = PaymentCycle.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return payment_cycles_for(self.request.user).select_related(
            "programme__agency", "created_by", "generated_by", "approved_by", "exported_by"
        )

    def get_serializer_class(self):
        return PaymentCycleSerializer if self.action == "list" else PaymentCycleDetailSerializer

    def perform_content_negotiation(self, request, force=False):
        # The downloads answer text/csv, which Swagger UI and spreadsheets ask for by
        # name: rather than a 406, their errors come back in the JSON shape.
        return super().perform_content_negotiation(request, force=force or self.action in CSV_ACTIONS)

    def _detail(self, pk: int) -> PaymentCycle:
        queryset = self.get_queryset().prefetch_related(
            Prefetch("events", queryset=CycleEvent.objects.select_related("actor").order_by("at", "id"))
        )
        try:
            cycle = queryset.get(pk=pk)
        except PaymentCycle.DoesNotExist:
            raise NotFound() from None
        user = self.request.user
        totals = cycle_totals_by_district(cycle=cycle)
        districts = cycle_district_ids_for(user)
        cycle.totals_by_district = (
            totals if districts is None else [row for row in totals if row["district_id"] in districts]
        )
        cycle.visible_reconciliations = list(
            reconciliations_for(user).filter(cycle=cycle).select_related("uploaded_by").order_by("-uploaded_at", "-id")
        )
        return cycle

    def get_object(self) -> PaymentCycle:
        cycle = self._detail(int(self.kwargs["pk"]))
        self.check_object_permissions(self.request, cycle)
        return cycle

    def _read(self, cycle: PaymentCycle, *, status_code: int = status.HTTP_200_OK) -> Response:
        cycle = self._detail(cycle.pk)
        return Response(PaymentCycleDetailSerializer(cycle, context=self.get_serializer_context()).data, status_code)

    @extend_schema(
        summary="Create a payment cycle for a period",
        description="The programme's agency or ministry staff. The period starts on the first of a month and is "
        "as long as the programme's schedule (a month, two, a quarter...); it may not overlap another cycle.",
        request=PaymentCycleCreateSerializer,
        responses={201: PaymentCycleDetailSerializer, **WRITE_ERRORS},
        examples=[
            OpenApiExample("November", request_only=True, value={"programme": "SCT", "period_start": "2026-11-01"})
        ],
    )
    def create(self, request, *args, **kwargs):
        serializer = PaymentCycleCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        with payment_service_errors():
            cycle = payment_cycle_create(
                acting_user=request.user, programme=data["programme"], period_start=data["period_start"]
            )
        return self._read(cycle, status_code=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Generate (or top up) the payroll",
        description="One payment per active enrolment, its amount from the formula on current data. Safe to run "
        "again until approved: it adds the enrolments activated since, nothing twice.",
        request=PayrollGenerateSerializer,
        responses={200: PayrollReportSerializer, **WRITE_ERRORS},
        filters=False,
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def generate(self, request, pk=None):
        cycle = self.get_object()
        serializer = PayrollGenerateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        with payment_service_errors():
            report = payroll_generate(
                acting_user=request.user, cycle=cycle, reference_date=serializer.validated_data["reference_date"]
            )
        body = {
            "created": report.created,
            "amounts_changed": report.amounts_changed,
            "without_amount": report.without_amount,
            "payment_count": report.payment_count,
            "total_amount": report.total_amount,
            "cycle": self._detail(cycle.pk),
        }
        return Response(PayrollReportSerializer(body, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Approve the payroll (maker-checker)",
        description="Someone other than whoever generated it (400 on `approved_by`), within every district's "
        "yearly budget (400 on `budget`, naming the districts). The same approval sent twice is answered once.",
        request=None,
        responses={200: PaymentCycleDetailSerializer, **WRITE_ERRORS},
        filters=False,
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def approve(self, request, pk=None):
        cycle = self.get_object()
        with payment_service_errors():
            cycle = payroll_approve(acting_user=request.user, cycle=cycle, idempotency_key=_idempotency_key(request))
        return self._read(cycle)

    @extend_schema(
        summary="Reissue failed and unclaimed payments of earlier cycles into this one",
        description="Before approval. Each failed or unclaimed payment is paid again at most once, with the "
        "enrolment's current payment details.",
        request=ReissueSerializer,
        responses={200: ReissueResultSerializer, **WRITE_ERRORS},
        filters=False,
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def reissue(self, request, pk=None):
        cycle = self.get_object()
        serializer = ReissueSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        with payment_service_errors():
            reissued = payments_reissue(
                acting_user=request.user, cycle=cycle, payment_ids=serializer.validated_data["payment_ids"]
            )
        body = {"reissued": reissued, "cycle": self._detail(cycle.pk)}
        return Response(ReissueResultSerializer(body, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Download the payment file of one channel",
        description="An approved payroll's pending payments for the channel, in the provider's layout, with a "
        "control line (TOTAL, rows, sum, SHA-256). The first export marks the cycle sent to the provider; each "
        "export is recorded. A POST because it changes the cycle.",
        parameters=[
            OpenApiParameter(
                "channel", str, OpenApiParameter.QUERY, required=True, enum=["bank", "mobile_money", "cash"]
            )
        ],
        request=None,
        responses={**CSV_FILE, **WRITE_ERRORS},
        filters=False,
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def export(self, request, pk=None):
        cycle = self.get_object()
        channel = (request.query_params.get("channel") or "").strip()
        if not channel:
            raise ValidationError({"channel": ["Choose the channel of the file: bank, mobile_money or cash."]})
        with payment_service_errors():
            name, content = payroll_export(acting_user=request.user, cycle=cycle, channel=channel)
        return _csv_attachment(name, content)

    @extend_schema(
        summary="Upload the provider's reconciliation file",
        description="Multipart, the file in `file` (CSV or Excel). Every row ends with one outcome "
        f"({ROW_OUTCOMES}); the answer is the summary, the row-by-row report is at `report`. The same file "
        "twice changes nothing.",
        request={"multipart/form-data": ReconcileSerializer},
        responses={201: ReconciliationSerializer, **WRITE_ERRORS},
        filters=False,
    )
    @action(
        detail=True,
        methods=["post"],
        filterset_class=None,
        parser_classes=[MultiPartParser, FormParser],
    )
    def reconcile(self, request, pk=None):
        from ..reconciliation import reconciliation_import, reconciliation_upload_content

        cycle = self.get_object()
        try:
            check_request_size(request)  # before the body is read
        except UploadRefused as refusal:
            raise ValidationError({"file": [str(refusal)]}) from refusal
        serializer = ReconcileSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        upload = serializer.validated_data["file"]
        with payment_service_errors():
            reconciliation = reconciliation_import(
                acting_user=request.user,
                cycle=cycle,
                file_name=upload.name,
                content=reconciliation_upload_content(upload),
            )
        reconciliation = reconciliations_for(request.user).select_related("uploaded_by").get(pk=reconciliation.pk)
        return Response(
            ReconciliationSerializer(reconciliation, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Download a reconciliation's row-by-row report",
        description="One line per row of the provider's file with its outcome and message. For the programme's "
        "agency and ministry staff.",
        request=None,
        responses={**CSV_FILE, 403: WRITE_ERRORS[403], 404: WRITE_ERRORS[404]},
        filters=False,
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="reconciliations/<int:reconciliation_id>/report",
        filterset_class=None,
        pagination_class=None,
    )
    def reconciliation_report(self, request, pk=None, reconciliation_id=None):
        from ..reconciliation import reconciliation_report_csv

        try:
            cycle = self.get_queryset().get(pk=int(pk))
            reconciliation = reconciliations_for(request.user).get(pk=int(reconciliation_id), cycle=cycle)
        except (PaymentCycle.DoesNotExist, Reconciliation.DoesNotExist):
            raise NotFound() from None
        if not may_run_payroll(request.user, cycle.programme):
            raise ApiPermissionDenied(f"Only {cycle.programme.agency.name} or ministry staff can read this report.")
        content = reconciliation_report_csv(reconciliation=reconciliation)
        name = f"{cycle.programme.code}-{cycle.period_start:%Y%m}-reconciliation-{reconciliation.pk}.csv"
        personal_data_export_record(
            user=request.user,
            kind=ExportKind.RECONCILIATION_REPORT,
            what=f"{cycle}: rows of the provider's file {reconciliation.file_name}",
            file_name=name,
            rows=reconciliation.rows_total,
            address=request.get_full_path(),
        )
        return _csv_attachment(name, content)


# --- payments ----------------------------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(
        summary="Payments in your scope, each with its history",
        description="Scoped like the households: your districts (and for a programme's officers, their "
        "agency's programmes). Filters combine.",
    ),
    retrieve=extend_schema(
        summary="One payment with its history", responses={200: PaymentSerializer, 404: ERROR_RESPONSE}
    ),
)
class PaymentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = PaymentSerializer
    filterset_class = PaymentFilter
    lookup_value_converter = "int"
    queryset = Payment.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return (
            payments_for(self.request.user)
            .select_related(
                "cycle", "programme__agency", "enrolment", "household__head", "district", "reissue_of", "reissued_as"
            )
            .prefetch_related(
                Prefetch("events", queryset=PaymentEvent.objects.select_related("actor").order_by("at", "id"))
            )
        )
