"""Grievances over HTTP: the front desk's and the partners' road to the
grievance register.

Each user reads through `grievances.selectors.grievances_for`: their districts;
sensitive grievances only as a designated officer (or whoever recorded one);
for a programme's officers, only those about their agency's programmes,
assigned to their agency, or recorded by them. Outside that a grievance does
not exist: 404, the same answer as for an id nobody has, for reading and for
every step alike. Every write is one call of `grievances.services`, which
decides who may act (403 with its reason), the state machine and what an
upheld appeal changes (400 naming the field); an `Idempotency-Key` header is
passed on to it, so a retry records nothing twice.
"""

import mimetypes
from contextlib import contextmanager

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import FileResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import PermissionDenied as ApiPermissionDenied
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from payments.api.selectors import payments_for
from programmes.models import Agency
from registry.api.views import ERROR_RESPONSE
from registry.selectors import districts_for, households_for
from spf.models import ExportKind, User
from spf.services import personal_data_export_record

from ..models import Grievance, GrievanceAttachment, GrievanceEvent
from ..selectors import grievances_for
from ..services import (
    MemberCorrection,
    appeal_uphold,
    grievance_acknowledge,
    grievance_assign,
    grievance_attachment_add,
    grievance_close,
    grievance_escalate,
    grievance_investigated,
    grievance_moves_for,
    grievance_register,
    grievance_resolve,
)
from .filters import GrievanceFilter
from .serializers import (
    AcknowledgeSerializer,
    AssignSerializer,
    AttachmentUploadSerializer,
    CloseSerializer,
    EscalateSerializer,
    GrievanceAttachmentSerializer,
    GrievanceCreateSerializer,
    GrievanceDetailSerializer,
    GrievanceSerializer,
    InvestigatedSerializer,
    ResolveSerializer,
    UpholdSerializer,
)


class FieldNotFound(NotFound):
    """A 404 that names the field whose value is not found in the user's scope."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.extra = {"fields": {field: [message]}}


@contextmanager
def grievance_service_errors():
    """What a grievance service refuses, as API errors.

    PermissionDenied (a role that cannot record grievances, a step this person
    may not take) is a 403 carrying the service's reason; the project's handler
    would otherwise drop it. ValidationError is left to the handler, which
    keeps its field names.
    """
    try:
        yield
    except PermissionDenied as refused:
        raise ApiPermissionDenied(str(refused) or None) from None


def _idempotency_key(request) -> str:
    return request.headers.get("Idempotency-Key", "")


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Any string up to 100 characters, new for each request. The same key again answers with the "
    "grievance as it stands and records nothing more: a partner system may safely retry.",
)
WRITE_ERRORS = {
    400: OpenApiResponse(ERROR_RESPONSE, description="Not valid; `fields` names each problem."),
    403: OpenApiResponse(ERROR_RESPONSE, description="You cannot take this step; the message says why."),
    404: OpenApiResponse(ERROR_RESPONSE, description="Not found in your scope."),
}
STEP_RESPONSES = {200: GrievanceDetailSerializer, **WRITE_ERRORS}


@extend_schema_view(
    list=extend_schema(
        summary="Grievances in your scope",
        description="Your districts' grievances; sensitive ones only for designated officers; for a programme's "
        "officers, those about their agency's programmes, assigned to their agency or recorded by them. Filters "
        "combine; newest first.",
    ),
    retrieve=extend_schema(
        summary="One grievance with its history, its documents and the steps you may take",
        responses={200: GrievanceDetailSerializer, 404: ERROR_RESPONSE},
    ),
)
class GrievanceViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = GrievanceSerializer
    filterset_class = GrievanceFilter
    lookup_value_converter = "int"
    queryset = Grievance.objects.none()  # for the schema; requests use get_queryset

    def get_queryset(self):
        return grievances_for(self.request.user).select_related(
            "complainant",
            "household__head",
            "programme__agency",
            "district",
            "payment",
            "assigned_to",
            "assigned_agency",
            "appealed_rule_version",
            "created_by",
        )

    def get_serializer_context(self):
        # One "today" per request, so every row of a page agrees on what is overdue.
        return {**super().get_serializer_context(), "today": timezone.localdate()}

    def get_serializer_class(self):
        return GrievanceSerializer if self.action == "list" else GrievanceDetailSerializer

    def perform_content_negotiation(self, request, force=False):
        # A download answers the file's own type, whatever the client accepts;
        # its errors still come back in the JSON shape rather than as a 406.
        return super().perform_content_negotiation(request, force=force or self.action == "attachment_download")

    def _detail(self, pk: int) -> Grievance:
        queryset = self.get_queryset().prefetch_related(
            Prefetch("events", queryset=GrievanceEvent.objects.select_related("actor").order_by("at", "id")),
            Prefetch(
                "attachments",
                queryset=GrievanceAttachment.objects.select_related("uploaded_by").order_by("uploaded_at", "id"),
            ),
        )
        try:
            grievance = queryset.get(pk=pk)
        except Grievance.DoesNotExist:
            raise NotFound() from None
        grievance.moves = grievance_moves_for(grievance=grievance, user=self.request.user)
        return grievance

    def get_object(self) -> Grievance:
        grievance = self._detail(int(self.kwargs["pk"]))
        self.check_object_permissions(self.request, grievance)
        return grievance

    def _read(self, grievance: Grievance, *, status_code: int = status.HTTP_200_OK) -> Response:
        context = self.get_serializer_context()
        try:
            grievance = self._detail(grievance.pk)
        except NotFound:
            # The step itself took it out of the actor's sight (an agency's officer handing it to another
            # agency): confirm what was done, without the history they may no longer read.
            return Response(GrievanceSerializer(grievance, context=context).data, status_code)
        return Response(GrievanceDetailSerializer(grievance, context=context).data, status_code)

    def _step(self, serializer_class, request):
        serializer = serializer_class(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    # --- registering ---------------------------------------------------------------------------

    @extend_schema(
        summary="Register a grievance",
        description="Raised at the window, by phone, SMS, letter, a community worker or a partner agency. Name "
        "the household (its number) where known, else the `district` where it is handled; the person by "
        "`complainant` (a member id), or by `complainant_name`, or mark it `anonymous`. The deadline follows "
        "from the category. An eligibility appeal about a `programme` records the result and rule version it "
        "appeals; `payment_not_received` on a payment the provider marked paid raises it with the provider. "
        "A household outside your districts is a 404 naming `household`. Send an `Idempotency-Key` header to "
        "retry safely: the same key answers with the grievance already registered.",
        parameters=[IDEMPOTENCY_KEY],
        request=GrievanceCreateSerializer,
        responses={201: GrievanceDetailSerializer, **WRITE_ERRORS},
        examples=[
            OpenApiExample(
                "November's payment never arrived",
                request_only=True,
                value={
                    "category": "payment",
                    "household": "SAM-000123",
                    "complainant": 142,
                    "payment": "SCT-202611-17",
                    "payment_not_received": True,
                    "description": "The agent said the money was finished.",
                },
            ),
            OpenApiExample(
                "An anonymous report by phone",
                request_only=True,
                value={
                    "category": "fraud",
                    "district": "SAM",
                    "channel": "phone",
                    "anonymous": True,
                    "description": "The pay point agent keeps part of every payment.",
                },
            ),
        ],
    )
    def create(self, request, *args, **kwargs):
        data = self._step(GrievanceCreateSerializer, request)
        user = request.user
        household = district = payment = None
        if number := data["household"].strip().upper():
            household = households_for(user).filter(number=number).first()
            if household is None:
                raise FieldNotFound("household", f"No household {number} in your districts.")
        if code := data["district"].strip().upper():
            district = districts_for(user).filter(code__iexact=code).first()
            if district is None:
                raise ValidationError({"district": [f"No district {code} among your districts."]})
        if reference := data["payment"].strip():
            payment = payments_for(user).filter(reference__iexact=reference).first()
            if payment is None:
                raise ValidationError({"payment": [f"No payment {reference} that you can see."]})
        with grievance_service_errors():
            grievance = grievance_register(
                acting_user=user,
                category=data["category"],
                description=data["description"],
                channel=data["channel"],
                district=district,
                household=household,
                complainant=data["complainant"],
                complainant_name=data["complainant_name"],
                complainant_contact=data["complainant_contact"],
                anonymous=data["anonymous"],
                programme=data["programme"],
                payment=payment,
                payment_not_received=data["payment_not_received"],
                sensitive=data["sensitive"],
                priority=data["priority"],
                idempotency_key=_idempotency_key(request),
            )
        return self._read(grievance, status_code=status.HTTP_201_CREATED)

    # --- the steps -----------------------------------------------------------------------------

    @extend_schema(
        summary="Acknowledge: the person gets the reference to keep",
        description="From received. By the window of the grievance's district or ministry staff.",
        parameters=[IDEMPOTENCY_KEY],
        request=AcknowledgeSerializer,
        responses=STEP_RESPONSES,
        filters=False,
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def acknowledge(self, request, pk=None):
        grievance = self.get_object()
        data = self._step(AcknowledgeSerializer, request)
        with grievance_service_errors():
            grievance = grievance_acknowledge(
                acting_user=request.user,
                grievance=grievance,
                note=data["note"],
                idempotency_key=_idempotency_key(request),
            )
        return self._read(grievance)

    @extend_schema(
        summary="Assign to an officer or an agency",
        description="Give exactly one: `assigned_to` (an officer's username; one who works in the grievance's "
        "district) or `assigned_agency` (an agency's code). A sensitive grievance goes only to a designated "
        "officer, never to an agency. Also reassigns, and takes an escalated grievance back.",
        parameters=[IDEMPOTENCY_KEY],
        request=AssignSerializer,
        responses=STEP_RESPONSES,
        filters=False,
        examples=[
            OpenApiExample("To an officer", request_only=True, value={"assigned_to": "frontdesk_samfya"}),
            OpenApiExample("To an agency", request_only=True, value={"assigned_agency": "MCDSS", "note": "Pay point"}),
        ],
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def assign(self, request, pk=None):
        grievance = self.get_object()
        data = self._step(AssignSerializer, request)
        to_user = to_agency = None
        if username := data["assigned_to"].strip():
            to_user = User.objects.filter(username=username).first()
            if to_user is None:
                raise ValidationError({"assigned_to": [f"No officer with the username {username}."]})
        if code := data["assigned_agency"].strip().upper():
            to_agency = Agency.objects.filter(code__iexact=code, active=True).first()
            if to_agency is None:
                raise ValidationError({"assigned_agency": [f"No active agency with the code {code}."]})
        with grievance_service_errors():
            grievance = grievance_assign(
                acting_user=request.user,
                grievance=grievance,
                to_user=to_user,
                to_agency=to_agency,
                note=data["note"],
                idempotency_key=_idempotency_key(request),
            )
        return self._read(grievance)

    @extend_schema(
        summary="Record the investigation's findings",
        description="From assigned or escalated, by whoever works it.",
        parameters=[IDEMPOTENCY_KEY],
        request=InvestigatedSerializer,
        responses=STEP_RESPONSES,
        filters=False,
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def investigated(self, request, pk=None):
        grievance = self.get_object()
        data = self._step(InvestigatedSerializer, request)
        with grievance_service_errors():
            grievance = grievance_investigated(
                acting_user=request.user,
                grievance=grievance,
                findings=data["findings"],
                idempotency_key=_idempotency_key(request),
            )
        return self._read(grievance)

    @extend_schema(
        summary="Escalate to the district committee or the ministry",
        description="With the reason. A resolved grievance whose resolution the person does not accept is "
        "escalated (not closed): it records that the resolution was not accepted.",
        parameters=[IDEMPOTENCY_KEY],
        request=EscalateSerializer,
        responses=STEP_RESPONSES,
        filters=False,
        examples=[
            OpenApiExample(
                "Not accepted", request_only=True, value={"escalated_to": "committee", "reason": "Does not accept."}
            )
        ],
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def escalate(self, request, pk=None):
        grievance = self.get_object()
        data = self._step(EscalateSerializer, request)
        with grievance_service_errors():
            grievance = grievance_escalate(
                acting_user=request.user,
                grievance=grievance,
                to=data["escalated_to"],
                reason=data["reason"],
                idempotency_key=_idempotency_key(request),
            )
        return self._read(grievance)

    @extend_schema(
        summary="Resolve, with the resolution the person is told",
        description="An eligibility appeal that is not upheld says so with `appeal_outcome: not_upheld`; an "
        "upheld one goes through `uphold/`, which applies its corrections.",
        parameters=[IDEMPOTENCY_KEY],
        request=ResolveSerializer,
        responses=STEP_RESPONSES,
        filters=False,
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def resolve(self, request, pk=None):
        grievance = self.get_object()
        data = self._step(ResolveSerializer, request)
        with grievance_service_errors():
            grievance = grievance_resolve(
                acting_user=request.user,
                grievance=grievance,
                resolution=data["resolution"],
                appeal_outcome=data["appeal_outcome"],
                idempotency_key=_idempotency_key(request),
            )
        return self._read(grievance)

    @extend_schema(
        summary="Uphold an eligibility appeal: correct the record and re-assess the household",
        description="The corrections go through the registry (each in the household's history, citing the "
        "appeal): `household_values` for the household's own fields, `member_corrections` for its members. The "
        "household is re-assessed at once; `outcome_after` is the outcome it now has for the programme "
        "appealed, and the history records the change (`eligibility: [before, after]`).",
        parameters=[IDEMPOTENCY_KEY],
        request=UpholdSerializer,
        responses=STEP_RESPONSES,
        filters=False,
        examples=[
            OpenApiExample(
                "Her date of birth was wrong",
                request_only=True,
                value={
                    "resolution": "Date of birth corrected from her NRC.",
                    "member_corrections": [{"member": 142, "values": {"date_of_birth": "1955-01-01"}}],
                },
            )
        ],
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def uphold(self, request, pk=None):
        grievance = self.get_object()
        data = self._step(UpholdSerializer, request)
        corrections = [MemberCorrection(member=c["member"], values=c["values"]) for c in data["member_corrections"]]
        with grievance_service_errors():
            grievance = appeal_uphold(
                acting_user=request.user,
                grievance=grievance,
                resolution=data["resolution"],
                household_values=data["household_values"],
                member_corrections=corrections,
                idempotency_key=_idempotency_key(request),
            )
        return self._read(grievance)

    @extend_schema(
        summary="Close, recording whether the person accepted the resolution",
        description="From resolved. One who does not accept it and wants to go further is escalated instead.",
        parameters=[IDEMPOTENCY_KEY],
        request=CloseSerializer,
        responses=STEP_RESPONSES,
        filters=False,
    )
    @action(detail=True, methods=["post"], filterset_class=None)
    def close(self, request, pk=None):
        grievance = self.get_object()
        data = self._step(CloseSerializer, request)
        with grievance_service_errors():
            grievance = grievance_close(
                acting_user=request.user,
                grievance=grievance,
                accepted=data["accepted"],
                note=data["note"],
                idempotency_key=_idempotency_key(request),
            )
        return self._read(grievance)

    # --- documents -----------------------------------------------------------------------------

    @extend_schema(
        summary="Attach a document (multipart)",
        description="The file in `attachment` (PDF, JPG or PNG, at most 5 MB), with an optional `description`. "
        "By whoever works the grievance or recorded it.",
        request={"multipart/form-data": AttachmentUploadSerializer},
        responses={201: GrievanceAttachmentSerializer, **WRITE_ERRORS},
        filters=False,
    )
    @action(
        detail=True,
        methods=["post"],
        filterset_class=None,
        parser_classes=[MultiPartParser, FormParser],
    )
    def attachments(self, request, pk=None):
        grievance = self.get_object()
        data = self._step(AttachmentUploadSerializer, request)
        with grievance_service_errors():
            attachment = grievance_attachment_add(
                acting_user=request.user,
                grievance=grievance,
                file=data["attachment"],
                description=data["description"],
            )
        return Response(
            GrievanceAttachmentSerializer(attachment, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(
        summary="Download an attached document",
        description="The file as uploaded, for whoever may read the grievance.",
        request=None,
        responses={
            # The documents a grievance takes (PDF, JPG, PNG), each as its own type.
            **{
                (200, media_type): OpenApiResponse(OpenApiTypes.BINARY, description="The file.")
                for media_type in ("application/pdf", "image/jpeg", "image/png", "application/octet-stream")
            },
            404: WRITE_ERRORS[404],
        },
        filters=False,
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="attachments/<int:attachment_id>",
        filterset_class=None,
        pagination_class=None,
    )
    def attachment_download(self, request, pk=None, attachment_id=None):
        try:
            grievance = self.get_queryset().get(pk=int(pk))
            attachment = grievance.attachments.get(pk=int(attachment_id))
            handle = attachment.file.open("rb")
        except (Grievance.DoesNotExist, GrievanceAttachment.DoesNotExist, FileNotFoundError):
            raise NotFound() from None
        name = attachment.file.name.rsplit("/", 1)[-1]
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        personal_data_export_record(
            user=request.user,
            kind=ExportKind.ATTACHMENT,
            what=f"A document of grievance {grievance.number}",
            file_name=name,
            address=request.get_full_path(),
        )
        return FileResponse(handle, as_attachment=True, filename=name, content_type=content_type)
