"""The JSON of referrals: as listed, as read with their timeline, and the two
writes (make one, move one). Serializers parse and shape; who may do what and
which moves are legal is `referrals.services`' business, whose ValidationError
names the same fields."""

from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from programmes.models import Programme
from registry.api.serializers import PlaceSerializer, RejectUnknownFieldsMixin
from registry.selectors import members_for

from ..models import Referral, ReferralEvent, ReferralPriority, ReferralSource, ReferralStatus, RejectionReason
from ..selectors import referral_is_overdue

# Choice fields are plain strings with the values in their help text: several
# models name a field `status` with different choices (see programmes.api).


def _values(choices) -> str:
    return ", ".join(f"`{value}`" for value, _ in choices)


class CodeNameSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)


class ReferralHouseholdSerializer(serializers.Serializer):
    """What the agency needs to find the household: its number, its head and a phone."""

    id = serializers.IntegerField(read_only=True)
    number = serializers.CharField(read_only=True)
    head = serializers.CharField(source="head.full_name", read_only=True, allow_null=True, default=None)
    phone = serializers.CharField(read_only=True)


class ReferralMemberSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    full_name = serializers.CharField(read_only=True)


class ReferralSerializer(serializers.ModelSerializer):
    """A referral as listed."""

    number = serializers.CharField(read_only=True, help_text="What the slip and its QR code carry, e.g. R00000123.")
    status = serializers.CharField(read_only=True, help_text=_values(ReferralStatus.choices))
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    household = ReferralHouseholdSerializer(read_only=True)
    member = ReferralMemberSerializer(read_only=True, allow_null=True)
    programme = CodeNameSerializer(read_only=True)
    agency = CodeNameSerializer(read_only=True)
    district = PlaceSerializer(read_only=True)
    ward = PlaceSerializer(source="household.village.parent", read_only=True)
    village = PlaceSerializer(source="household.village", read_only=True)
    source = serializers.CharField(read_only=True, help_text=_values(ReferralSource.choices))
    priority = serializers.CharField(read_only=True, help_text=_values(ReferralPriority.choices))
    rejection_reason = serializers.CharField(
        read_only=True, help_text=f"Set when rejected: {_values(RejectionReason.choices)}."
    )
    overdue = serializers.SerializerMethodField(
        help_text="Waiting on the agency past its due date, or marked overdue and not yet closed."
    )
    created_by = serializers.CharField(source="created_by.username", read_only=True, allow_null=True, default=None)

    class Meta:
        model = Referral
        fields = [
            "id",
            "number",
            "status",
            "status_label",
            "household",
            "member",
            "programme",
            "agency",
            "district",
            "ward",
            "village",
            "source",
            "source_detail",
            "reason",
            "priority",
            "notes",
            "rejection_reason",
            "status_note",
            "due_date",
            "overdue",
            "overdue_since",
            "created_by",
            "created_at",
            "updated_at",
            "sent_at",
            "closed_at",
        ]
        read_only_fields = fields

    def get_overdue(self, referral: Referral) -> bool:
        return referral_is_overdue(referral, today=self.context.get("today") or timezone.localdate())


class ReferralEventSerializer(serializers.ModelSerializer):
    from_status = serializers.CharField(read_only=True, help_text="Empty for the referral's creation.")
    to_status = serializers.CharField(read_only=True)
    actor = serializers.CharField(
        source="actor.username", read_only=True, allow_null=True, default=None, help_text="Null: the system."
    )
    agency = serializers.CharField(
        source="agency.code", read_only=True, allow_null=True, default=None, help_text="Set when the agency acted."
    )
    # Empty unless the event is a rejection: a choice field here would leave "" out of the schema's enum.
    rejection_reason = serializers.CharField(
        read_only=True, help_text=f"Set when rejected: {_values(RejectionReason.choices)}."
    )

    class Meta:
        model = ReferralEvent
        fields = ["at", "from_status", "to_status", "actor", "agency", "reason", "rejection_reason", "changes"]
        read_only_fields = fields


class ReferralDeliverySerializer(serializers.Serializer):
    """One message pushed to the agency's system, and how it went."""

    idempotency_key = serializers.CharField(read_only=True)
    event = serializers.CharField(source="event.to_status", read_only=True, help_text="The change it reports.")
    status = serializers.CharField(read_only=True, help_text="`pending`, `delivered` or `failed`.")
    attempts = serializers.IntegerField(read_only=True)
    next_attempt_at = serializers.DateTimeField(read_only=True)
    delivered_at = serializers.DateTimeField(read_only=True, allow_null=True)
    last_error = serializers.CharField(read_only=True)


class ReferralDetailSerializer(ReferralSerializer):
    """A referral as read: with its timeline and its deliveries to the agency's system."""

    events = ReferralEventSerializer(many=True, read_only=True)
    deliveries = ReferralDeliverySerializer(many=True, read_only=True)

    class Meta(ReferralSerializer.Meta):
        fields = [*ReferralSerializer.Meta.fields, "events", "deliveries"]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.INT)
class ScopedMemberField(serializers.PrimaryKeyRelatedField):
    """A member by id, looked up only in the user's districts."""

    def get_queryset(self):
        return members_for(self.context["request"].user)


class ReferralCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    household = serializers.CharField(help_text="Household number, e.g. SAM-000123.")
    programme = serializers.SlugRelatedField(
        slug_field="code", queryset=Programme.objects.select_related("agency"), help_text="Programme code, e.g. SCT."
    )
    member = ScopedMemberField(
        required=False, allow_null=True, help_text="For programmes that serve individuals: the member's id."
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="")
    priority = serializers.CharField(
        required=False, default=ReferralPriority.NORMAL, help_text=_values(ReferralPriority.choices)
    )
    source = serializers.CharField(
        required=False, default=ReferralSource.WINDOW, help_text=_values(ReferralSource.choices)
    )
    source_detail = serializers.CharField(required=False, allow_blank=True, default="", max_length=160)
    notes = serializers.CharField(required=False, allow_blank=True, default="")
    send = serializers.BooleanField(required=False, default=True, help_text="false: keep it as a draft to send later.")


class ReferralTransitionSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    status = serializers.CharField(help_text=f"Where the referral goes: {_values(ReferralStatus.choices)}.")
    reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text="Why; required to cancel or to reject as `other`."
    )
    rejection_reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text=f"To reject: {_values(RejectionReason.choices)}."
    )
