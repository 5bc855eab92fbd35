"""The JSON of households, members and their history.

Serializers here read and parse; the rules (who may register, what counts as
a duplicate, which fields an edit may change) live in `registry.services`,
whose ValidationError names the same fields.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from registry.models import ChangeAction, ChangeEntry, Household, Location, Member
from registry.selectors import households_for, villages_for
from registry.services import HOUSEHOLD_FIELDS, MEMBER_FIELDS


class RejectUnknownFieldsMixin:
    """Refuse fields a write cannot set, rather than drop them without a word.

    A partner system that sends `status` or `village` in an edit must learn
    that it changed nothing; those change through a life event.
    """

    def to_internal_value(self, data):
        refused = {}
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            refused = {name: ["This field cannot be set here."] for name in sorted(set(data) - writable)}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as problem:
            # Every problem at once, the refused fields among them.
            if refused and isinstance(problem.detail, dict):
                raise serializers.ValidationError({**problem.detail, **refused}) from None
            raise
        if refused:
            raise serializers.ValidationError(refused)
        return value


class PlaceSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)


class _ScopedSlugField(serializers.SlugRelatedField):
    """A household or village named by its code, looked up only in the user's districts.

    Outside them it does not exist, with the same message as a code nobody has.
    """

    scoped = None

    def get_queryset(self):
        return type(self).scoped(self.context["request"].user)


class VillageCodeField(_ScopedSlugField):
    scoped = staticmethod(villages_for)

    def __init__(self, **kwargs):
        super().__init__(slug_field="code", queryset=Location.objects.all(), **kwargs)


class HouseholdNumberField(_ScopedSlugField):
    scoped = staticmethod(households_for)

    def __init__(self, **kwargs):
        super().__init__(slug_field="number", queryset=Household.objects.all(), **kwargs)


# --- members ---------------------------------------------------------------------------


class MemberSerializer(serializers.ModelSerializer):
    """A member as read, inside its household."""

    full_name = serializers.CharField(read_only=True)
    age = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="Whole years today, from the date of birth."
    )
    has_disability = serializers.BooleanField(
        read_only=True, help_text="A lot of difficulty, or cannot do at all, in at least one Washington Group domain."
    )
    attributes = serializers.DictField(read_only=True)

    class Meta:
        model = Member
        fields = (
            "id",
            "full_name",
            *MEMBER_FIELDS,
            "age",
            "has_disability",
            "status",
            "status_date",
            "attributes",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class IndividualSerializer(MemberSerializer):
    """A member as read on its own: with the household and where it lives."""

    household = serializers.CharField(source="household.number", read_only=True, help_text="Household number.")
    household_id = serializers.IntegerField(read_only=True)
    district = PlaceSerializer(source="household.district", read_only=True)
    ward = PlaceSerializer(source="household.village.parent", read_only=True)
    village = PlaceSerializer(source="household.village", read_only=True)

    class Meta(MemberSerializer.Meta):
        fields = ("id", "household", "household_id", "district", "ward", "village", *MemberSerializer.Meta.fields[1:])
        read_only_fields = fields


class MemberValuesSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    """The fields a person gives about a member; parsed here, validated by the service."""

    attributes = serializers.DictField(required=False, help_text="Extra member fields defined by the ministry.")

    class Meta:
        model = Member
        fields = (*MEMBER_FIELDS, "attributes")
        extra_kwargs = {"national_id": {"allow_blank": True}}

    def service_arguments(self) -> dict:
        return member_service_arguments(self.validated_data)


def member_service_arguments(validated: dict) -> dict:
    """A member's parsed fields as the registry services take them: `values` and `attributes`."""
    return {
        "values": {field: validated[field] for field in MEMBER_FIELDS if field in validated},
        "attributes": validated.get("attributes"),
    }


class IndividualCreateSerializer(MemberValuesSerializer):
    household = HouseholdNumberField(help_text="Number of the household the person joins, e.g. SAM-000123.")
    event = serializers.ChoiceField(
        choices=[ChangeAction.CREATE, ChangeAction.BIRTH, ChangeAction.MOVE_IN],
        default=ChangeAction.CREATE,
        help_text="create: missed at registration; birth: born into the household; move_in: came to live in it.",
    )
    note = serializers.CharField(required=False, allow_blank=True, max_length=255, write_only=True)

    class Meta(MemberValuesSerializer.Meta):
        fields = ("household", "event", "note", *MemberValuesSerializer.Meta.fields)


class MemberUpdateSerializer(MemberValuesSerializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=255, help_text="Why it changed.")

    class Meta(MemberValuesSerializer.Meta):
        fields = (*MemberValuesSerializer.Meta.fields, "note")


# --- households --------------------------------------------------------------------------


class HeadSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    full_name = serializers.CharField(read_only=True)


class HouseholdSerializer(serializers.ModelSerializer):
    """A household as read: its place, its head, its members and its extra fields."""

    district = PlaceSerializer(read_only=True)
    ward = PlaceSerializer(source="village.parent", read_only=True)
    village = PlaceSerializer(read_only=True)
    head = HeadSerializer(read_only=True, allow_null=True)
    members = MemberSerializer(many=True, read_only=True)
    attributes = serializers.DictField(read_only=True)

    class Meta:
        model = Household
        fields = (
            "id",
            "number",
            "status",
            "district",
            "ward",
            "village",
            "address",
            "gps_latitude",
            "gps_longitude",
            "phone",
            "registration_date",
            "head",
            "members",
            "attributes",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class HouseholdCreateSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    village = VillageCodeField(help_text="Code of the village the household lives in.")
    members = MemberValuesSerializer(
        many=True, allow_empty=True, help_text="The head first or marked relationship=head; at least one."
    )
    attributes = serializers.DictField(required=False, help_text="Extra household fields defined by the ministry.")
    confirm_duplicates = serializers.BooleanField(
        default=False,
        write_only=True,
        help_text="Register even though the previous attempt answered 409 with likely duplicates.",
    )

    class Meta:
        model = Household
        fields = (
            "village",
            "address",
            "phone",
            "gps_latitude",
            "gps_longitude",
            "registration_date",
            "attributes",
            "members",
            "confirm_duplicates",
        )
        extra_kwargs = {"registration_date": {"required": False}}


class HouseholdUpdateSerializer(RejectUnknownFieldsMixin, serializers.ModelSerializer):
    attributes = serializers.DictField(required=False, help_text="Extra fields to set; null removes one.")
    note = serializers.CharField(required=False, allow_blank=True, max_length=255, help_text="Why it changed.")

    class Meta:
        model = Household
        # The village changes when the household moves, a life event of its own.
        fields = (*(field for field in HOUSEHOLD_FIELDS if field != "village"), "attributes", "note")

    def service_arguments(self) -> dict:
        data = dict(self.validated_data)
        return {
            "values": {field: data[field] for field in HOUSEHOLD_FIELDS if field in data},
            "attributes": data.get("attributes"),
            "note": data.get("note", ""),
        }


# --- history -----------------------------------------------------------------------------


class ChangeEntrySerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField(help_text="Username of who made the change.")
    member_name = serializers.SerializerMethodField()
    changes = serializers.DictField(read_only=True, help_text="field: [old, new]")

    class Meta:
        model = ChangeEntry
        fields = ("id", "at", "action", "entity", "entity_id", "member", "member_name", "changes", "note", "actor")
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_actor(self, entry: ChangeEntry) -> str | None:
        return entry.actor.username if entry.actor else None

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_member_name(self, entry: ChangeEntry) -> str | None:
        return entry.member.full_name if entry.member else None
