"""The JSON of grievances: as listed, as read with their history and
attachments, and the writes (register one, and one serializer per step of the
state machine). Serializers parse and shape; who may do what, which steps are
legal and what an upheld appeal changes are `grievances.services`' business,
whose ValidationError names the same fields as these requests."""

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from payments.api.serializers import HouseholdRefSerializer, MemberRefSerializer, ProgrammeRefSerializer
from programmes.models import Programme
from referrals.api.serializers import ScopedMemberField
from registry.api.serializers import (
    HouseholdUpdateSerializer,
    MemberValuesSerializer,
    PlaceSerializer,
    RejectUnknownFieldsMixin,
)
from registry.services import MEMBER_FIELDS

from ..models import (
    AppealOutcome,
    EscalationLevel,
    Grievance,
    GrievanceAttachment,
    GrievanceCategory,
    GrievanceChannel,
    GrievanceEvent,
    GrievancePriority,
    GrievanceStatus,
)

# Choice fields are plain strings with the values in their help text, as in
# referrals.api: several models name a field `status` with different choices.


def _values(choices) -> str:
    return ", ".join(f"`{value}`" for value, _ in choices)


def _username(field: str, **kwargs) -> serializers.CharField:
    return serializers.CharField(source=f"{field}.username", read_only=True, allow_null=True, default=None, **kwargs)


class GrievanceSerializer(serializers.ModelSerializer):
    """A grievance as listed."""

    number = serializers.CharField(read_only=True, help_text="The reference on the slip the person keeps: G00000042.")
    status = serializers.CharField(read_only=True, help_text=_values(GrievanceStatus.choices))
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    category = serializers.CharField(read_only=True, help_text=_values(GrievanceCategory.choices))
    category_label = serializers.CharField(source="get_category_display", read_only=True)
    channel = serializers.CharField(read_only=True, help_text=_values(GrievanceChannel.choices))
    priority = serializers.CharField(read_only=True, help_text=_values(GrievancePriority.choices))
    sensitive = serializers.BooleanField(
        read_only=True, help_text="Seen and handled only by designated officers (and whoever recorded it)."
    )
    complainant = MemberRefSerializer(
        read_only=True, allow_null=True, help_text="The registered person who raised it; null otherwise."
    )
    household = HouseholdRefSerializer(read_only=True, allow_null=True)
    programme = ProgrammeRefSerializer(read_only=True, allow_null=True)
    district = PlaceSerializer(read_only=True, help_text="Where it is handled.")
    payment = serializers.CharField(
        source="payment.reference", read_only=True, allow_null=True, default=None, help_text="The payment concerned."
    )
    overdue = serializers.SerializerMethodField(help_text="Still open and past `due_date`.")
    assigned_to = _username("assigned_to")
    assigned_agency = serializers.CharField(
        source="assigned_agency.code", read_only=True, allow_null=True, default=None, help_text="The agency's code."
    )
    escalated_to = serializers.CharField(
        read_only=True, help_text=f"While escalated: {_values(EscalationLevel.choices)}; empty otherwise."
    )
    appealed_rule_version = serializers.IntegerField(
        source="appealed_rule_version.number",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="An eligibility appeal: the version of the programme's rule that gave the result appealed.",
    )
    appealed_outcome = serializers.CharField(
        read_only=True, help_text="An eligibility appeal: the outcome appealed, as it was when the appeal was made."
    )
    appeal_outcome = serializers.CharField(
        read_only=True, help_text=f"Once decided: {_values(AppealOutcome.choices)}; empty otherwise."
    )
    outcome_after = serializers.CharField(
        read_only=True, help_text="The eligibility outcome after an upheld appeal's corrections were applied."
    )
    resolution_accepted = serializers.BooleanField(
        read_only=True, allow_null=True, help_text="Did the person accept the resolution? Null until closed."
    )
    created_by = _username("created_by")

    class Meta:
        model = Grievance
        fields = [
            "id",
            "number",
            "status",
            "status_label",
            "category",
            "category_label",
            "channel",
            "priority",
            "sensitive",
            "anonymous",
            "complainant",
            "complainant_name",
            "complainant_contact",
            "household",
            "programme",
            "district",
            "payment",
            "description",
            "due_date",
            "overdue",
            "overdue_since",
            "assigned_to",
            "assigned_agency",
            "escalated_to",
            "appealed_rule_version",
            "appealed_outcome",
            "appeal_outcome",
            "outcome_after",
            "resolution",
            "resolution_accepted",
            "created_by",
            "created_at",
            "updated_at",
            "acknowledged_at",
            "resolved_at",
            "closed_at",
        ]
        read_only_fields = fields

    def get_overdue(self, grievance: Grievance) -> bool:
        today = self.context.get("today") or timezone.localdate()
        return grievance.is_open and grievance.due_date < today


class GrievanceEventSerializer(serializers.ModelSerializer):
    """One step of a grievance: who, when, from what to what, and why."""

    from_status = serializers.CharField(read_only=True, help_text="Empty for the grievance's registration.")
    to_status = serializers.CharField(read_only=True, help_text=_values(GrievanceStatus.choices))
    actor = _username("actor", help_text="Null: the system.")
    note = serializers.CharField(read_only=True, help_text="The findings, the reason, the resolution.")
    changes = serializers.DictField(read_only=True, help_text="Other fields changed: field: [old, new].")

    class Meta:
        model = GrievanceEvent
        fields = ["at", "from_status", "to_status", "actor", "note", "changes"]
        read_only_fields = fields


class GrievanceAttachmentSerializer(serializers.ModelSerializer):
    """A document attached to a grievance: what it is, not its content (that is at `download`)."""

    file_name = serializers.SerializerMethodField(help_text="The file's name, without its folder.")
    size = serializers.SerializerMethodField(help_text="In bytes; null if the file is missing from storage.")
    uploaded_by = _username("uploaded_by")
    download = serializers.SerializerMethodField(help_text="Where to download the file (GET).")

    class Meta:
        model = GrievanceAttachment
        fields = ["id", "file_name", "description", "size", "uploaded_by", "uploaded_at", "download"]
        read_only_fields = fields

    def get_file_name(self, attachment: GrievanceAttachment) -> str:
        return attachment.file.name.rsplit("/", 1)[-1]

    def get_size(self, attachment: GrievanceAttachment) -> int | None:
        try:
            return attachment.file.size
        except (FileNotFoundError, ValueError):
            return None

    def get_download(self, attachment: GrievanceAttachment) -> str:
        return f"/api/v1/grievances/{attachment.grievance_id}/attachments/{attachment.pk}/"


class GrievanceDetailSerializer(GrievanceSerializer):
    """A grievance as read: with its history, its documents and the steps you may take now."""

    events = GrievanceEventSerializer(many=True, read_only=True)
    attachments = GrievanceAttachmentSerializer(many=True, read_only=True)
    moves = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The statuses you may move it to now; empty when you may only read it.",
    )

    class Meta(GrievanceSerializer.Meta):
        fields = [*GrievanceSerializer.Meta.fields, "events", "attachments", "moves"]
        read_only_fields = fields


# --- registering -------------------------------------------------------------------------------


class GrievanceCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """A grievance to register: about what, from whom, concerning which household, programme or payment."""

    category = serializers.CharField(help_text=_values(GrievanceCategory.choices))
    description = serializers.CharField(allow_blank=True, help_text="What the person says happened, in their words.")
    channel = serializers.CharField(
        required=False, default=GrievanceChannel.WALK_IN, help_text=_values(GrievanceChannel.choices)
    )
    priority = serializers.CharField(
        required=False, default=GrievancePriority.NORMAL, help_text=_values(GrievancePriority.choices)
    )
    sensitive = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Abuse, corruption and the like: only designated officers will see it. Fraud always is.",
    )
    household = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Household number, e.g. SAM-000123, where known."
    )
    district = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="District code where no household is named: where the grievance is handled.",
    )
    complainant = ScopedMemberField(
        required=False, allow_null=True, default=None, help_text="The registered person who raises it: member id."
    )
    complainant_name = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=160, help_text="Someone not registered: their name."
    )
    complainant_contact = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=120, help_text="A phone, an address: how to reply."
    )
    anonymous = serializers.BooleanField(
        required=False, default=False, help_text="The person gives no name (a contact is optional)."
    )
    programme = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Programme.objects.select_related("agency"),
        required=False,
        allow_null=True,
        default=None,
        help_text="Programme code, e.g. SCT. An eligibility appeal about a programme records the result appealed.",
    )
    payment = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="The payment's reference, e.g. SCT-202611-1."
    )
    payment_not_received = serializers.BooleanField(
        required=False,
        default=False,
        help_text="The household says this payment never arrived; if the provider marked it paid, it is raised "
        "with the provider for reconciliation.",
    )


# --- the steps ---------------------------------------------------------------------------------


class AcknowledgeSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """Acknowledge a grievance received."""

    note = serializers.CharField(required=False, allow_blank=True, default="")


class AssignSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """Who works it: one officer or one agency."""

    assigned_to = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="The officer's username; or give `assigned_agency`."
    )
    assigned_agency = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="The agency's code, e.g. MCDSS; or `assigned_to`."
    )
    note = serializers.CharField(required=False, allow_blank=True, default="")


class InvestigatedSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """What the investigation found."""

    findings = serializers.CharField(allow_blank=True, help_text="What the investigation found (required).")


class EscalateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """Where it goes up to, and why."""

    escalated_to = serializers.CharField(help_text=_values(EscalationLevel.choices))
    reason = serializers.CharField(allow_blank=True, help_text="Why (required); also: the person did not accept.")


class ResolveSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """The resolution the person is told."""

    resolution = serializers.CharField(allow_blank=True, help_text="The resolution the person is told (required).")
    appeal_outcome = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="An eligibility appeal not upheld: `not_upheld`. An upheld one goes through `uphold/`.",
    )


class CloseSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """Close a resolved grievance."""

    accepted = serializers.BooleanField(help_text="Did the person accept the resolution?")
    note = serializers.CharField(required=False, allow_blank=True, default="")


class AttachmentUploadSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """A document to attach."""

    attachment = serializers.FileField(help_text="A PDF, JPG or PNG file of at most 5 MB: a letter, a receipt.")
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=200)


# --- an upheld appeal --------------------------------------------------------------------------


class MemberCorrectionValuesSerializer(MemberValuesSerializer):
    """A member's fields as an appeal may correct them (the registry's edit, without extra attributes)."""

    class Meta(MemberValuesSerializer.Meta):
        fields = MEMBER_FIELDS


class HouseholdCorrectionValuesSerializer(HouseholdUpdateSerializer):
    """A household's own fields as an appeal may correct them (the registry's edit, without attributes)."""

    class Meta(HouseholdUpdateSerializer.Meta):
        fields = tuple(field for field in HouseholdUpdateSerializer.Meta.fields if field not in ("attributes", "note"))


@extend_schema_field(
    {
        "type": "object",
        "additionalProperties": True,
        "description": f"Fields of the member to correct: {', '.join(MEMBER_FIELDS)}.",
    }
)
class _MemberValuesField(serializers.DictField):
    pass


class MemberCorrectionSerializer(serializers.Serializer):
    """One member's corrected fields."""

    member = ScopedMemberField(help_text="The member's id; a member of the appeal's household.")
    values = _MemberValuesField(help_text='The corrected fields, e.g. {"date_of_birth": "1955-01-01"}.')


class UpholdSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """An upheld eligibility appeal: the resolution and the corrections to the record."""

    resolution = serializers.CharField(allow_blank=True, help_text="The resolution the person is told (required).")
    household_values = serializers.DictField(
        required=False,
        default=dict,
        help_text="The household's own fields to correct: address, phone, gps_latitude, gps_longitude, "
        "registration_date, status.",
    )
    member_corrections = MemberCorrectionSerializer(many=True, required=False, default=list)

    def validate_household_values(self, values: dict) -> dict:
        if not values:
            return {}
        parsed = HouseholdCorrectionValuesSerializer(data=values, partial=True)
        parsed.is_valid(raise_exception=True)
        return dict(parsed.validated_data)

    def validate_member_corrections(self, corrections: list[dict]) -> list[dict]:
        parsed, errors = [], []
        for correction in corrections:
            values = MemberCorrectionValuesSerializer(
                instance=correction["member"], data=correction["values"], partial=True
            )
            if values.is_valid():
                parsed.append({"member": correction["member"], "values": dict(values.validated_data)})
                errors.append({})
            else:
                errors.append({"values": values.errors})
        if any(errors):
            raise serializers.ValidationError(errors)
        return parsed
