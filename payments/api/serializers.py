"""The JSON of enrolments, payment cycles and payments: as listed, as read with
their history, and the writes. Serializers parse and shape; who may do what,
the state machine and maker-checker are `payments.services` and
`payments.payroll`, whose ValidationError names the same fields.

Money is a decimal string (`"150.00"`) with its `currency` beside it, never a float.
"""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from programmes.models import Programme
from referrals.api.serializers import ScopedMemberField
from registry.api.serializers import PlaceSerializer, RejectUnknownFieldsMixin

from ..models import (
    CycleEvent,
    CycleStatus,
    Enrolment,
    EnrolmentEvent,
    EnrolmentEventKind,
    EnrolmentSource,
    EnrolmentStatus,
    ExitReason,
    Payment,
    PaymentChannel,
    PaymentCycle,
    PaymentEvent,
    PaymentStatus,
    Reconciliation,
    RowOutcome,
)

# Choice fields are plain strings with the values in their help text, as in
# referrals.api: several models name a field `status` with different choices.


def _values(choices) -> str:
    return ", ".join(f"`{value}`" for value, _ in choices)


def _username(field: str, **kwargs) -> serializers.CharField:
    return serializers.CharField(source=f"{field}.username", read_only=True, allow_null=True, default=None, **kwargs)


class HouseholdRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    number = serializers.CharField(read_only=True)
    head = serializers.CharField(source="head.full_name", read_only=True, allow_null=True, default=None)


class MemberRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    full_name = serializers.CharField(read_only=True)


class ProgrammeRefSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    agency = serializers.CharField(source="agency.code", read_only=True, help_text="The agency's code.")


# --- enrolments ------------------------------------------------------------------------------


class EnrolmentSerializer(serializers.ModelSerializer):
    """An enrolment as listed."""

    number = serializers.CharField(read_only=True, help_text="E followed by eight digits, e.g. E00000042.")
    status = serializers.CharField(read_only=True, help_text=_values(EnrolmentStatus.choices))
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    household = HouseholdRefSerializer(read_only=True)
    member = MemberRefSerializer(read_only=True, allow_null=True, help_text="For programmes that serve individuals.")
    programme = ProgrammeRefSerializer(read_only=True)
    district = PlaceSerializer(read_only=True)
    source = serializers.CharField(read_only=True, help_text=_values(EnrolmentSource.choices))
    referral = serializers.CharField(
        source="referral.number", read_only=True, allow_null=True, default=None, help_text="The referral it came from."
    )
    amount = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        read_only=True,
        allow_null=True,
        help_text="The benefit per payment in `currency`, from the programme's formula; null until approved.",
    )
    channel = serializers.CharField(read_only=True, help_text=_values(PaymentChannel.choices))
    exit_reason = serializers.CharField(read_only=True, help_text=f"Set when exited: {_values(ExitReason.choices)}.")
    under_review = serializers.SerializerMethodField(
        help_text="The household lost eligibility: an officer must decide to keep or exit it (`review/`)."
    )
    applied_by = _username("applied_by")
    verified_by = _username("verified_by")
    approved_by = _username("approved_by")

    class Meta:
        model = Enrolment
        fields = [
            "id",
            "number",
            "status",
            "status_label",
            "household",
            "member",
            "programme",
            "district",
            "source",
            "referral",
            "external_reference",
            "amount",
            "currency",
            "channel",
            "account_number",
            "account_name",
            "pay_point",
            "applied_at",
            "applied_by",
            "verified_at",
            "verified_by",
            "approved_at",
            "approved_by",
            "activated_at",
            "suspended_at",
            "suspension_reason",
            "exited_at",
            "exit_reason",
            "exit_note",
            "under_review",
            "review_since",
            "review_reason",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_under_review(self, enrolment: Enrolment) -> bool:
        return enrolment.review_since is not None


class EnrolmentEventSerializer(serializers.ModelSerializer):
    """One line of an enrolment's history: who, when, what and why."""

    kind = serializers.CharField(read_only=True, help_text=_values(EnrolmentEventKind.choices))
    from_status = serializers.CharField(read_only=True, help_text="For status changes; empty for the application.")
    to_status = serializers.CharField(read_only=True)
    actor = _username("actor", help_text="Null: the system (a payroll or the eligibility review).")
    changes = serializers.DictField(read_only=True, help_text="field: [old, new]")
    cycle = serializers.IntegerField(
        source="cycle_id", read_only=True, allow_null=True, help_text="The payment cycle that recalculated the amount."
    )

    class Meta:
        model = EnrolmentEvent
        fields = ["at", "kind", "from_status", "to_status", "actor", "reason", "changes", "cycle"]
        read_only_fields = fields


class EnrolmentDetailSerializer(EnrolmentSerializer):
    """An enrolment as read: with its history and the moves you may make now."""

    events = EnrolmentEventSerializer(many=True, read_only=True)
    moves = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="The statuses you may move it to now (your role, maker-checker); what `transition/` accepts.",
    )

    class Meta(EnrolmentSerializer.Meta):
        fields = [*EnrolmentSerializer.Meta.fields, "events", "moves"]
        read_only_fields = fields


class PaymentDetailsFields(serializers.Serializer):
    channel = serializers.CharField(
        required=False,
        default=PaymentChannel.CASH,
        help_text=f"How the household is paid: {_values(PaymentChannel.choices)}.",
    )
    account_number = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=64, help_text="Bank account or wallet number."
    )
    account_name = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=160, help_text="Empty: the person enrolled."
    )
    pay_point = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=120, help_text="For cash: where they collect."
    )


class EnrolmentCreateSerializer(RejectUnknownFieldsMixin, PaymentDetailsFields):
    household = serializers.CharField(help_text="Household number, e.g. SAM-000123.")
    programme = serializers.SlugRelatedField(
        slug_field="code", queryset=Programme.objects.select_related("agency"), help_text="Programme code, e.g. SCT."
    )
    member = ScopedMemberField(
        required=False, allow_null=True, help_text="For programmes that serve individuals: the member's id."
    )
    referral = serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="The accepted referral it comes from (R00000123). Given: the source is `referral`; otherwise "
        "`agency` for the programme's officers and `window` for the front desk and ministry staff.",
    )
    external_reference = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=64, help_text="The programme's own number."
    )
    reason = serializers.CharField(required=False, allow_blank=True, default="", help_text="A note for the history.")


class EnrolmentTransitionSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    status = serializers.CharField(help_text=f"Where the enrolment goes: {_values(EnrolmentStatus.choices)}.")
    reason = serializers.CharField(required=False, allow_blank=True, default="", help_text="Why; required to suspend.")
    exit_reason = serializers.CharField(
        required=False, allow_blank=True, default="", help_text=f"To exit: {_values(ExitReason.choices)}."
    )


class PaymentDetailsSerializer(RejectUnknownFieldsMixin, PaymentDetailsFields):
    channel = serializers.CharField(help_text=f"How the household is paid: {_values(PaymentChannel.choices)}.")
    reason = serializers.CharField(required=False, allow_blank=True, default="", help_text="Why it changed.")


class EnrolmentReviewSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    keep = serializers.BooleanField(help_text="true: the household stays enrolled; false: the enrolment exits.")
    reason = serializers.CharField(allow_blank=True, help_text="Why you decided so (required).")
    exit_reason = serializers.CharField(
        required=False,
        default=ExitReason.NOT_ELIGIBLE,
        help_text=f"When not kept: {_values(ExitReason.choices)}; default `not_eligible`.",
    )


# --- payments ----------------------------------------------------------------------------------


class CycleRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    label = serializers.CharField(read_only=True, help_text="The period, e.g. 2026-11.")
    status = serializers.CharField(read_only=True, help_text=_values(CycleStatus.choices))


class EnrolmentRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    number = serializers.CharField(read_only=True)


class PaymentEventSerializer(serializers.ModelSerializer):
    from_status = serializers.CharField(read_only=True, help_text="Empty when the payment was made.")
    to_status = serializers.CharField(read_only=True)
    actor = _username("actor", help_text="Who generated it or uploaded the provider's file.")
    reconciliation = serializers.IntegerField(
        source="reconciliation_id", read_only=True, allow_null=True, help_text="The provider's file that said so."
    )

    class Meta:
        model = PaymentEvent
        fields = ["at", "from_status", "to_status", "actor", "reconciliation", "reason"]
        read_only_fields = fields


@extend_schema_field(serializers.CharField(allow_null=True, help_text="Its reference."))
class _PaymentReferenceField(serializers.Field):
    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def get_attribute(self, instance):
        try:
            return super().get_attribute(instance)
        except Payment.DoesNotExist:  # no reissue yet (a reverse one-to-one raises)
            return None

    def to_representation(self, value):
        return value.reference if value is not None else None


class PaymentSerializer(serializers.ModelSerializer):
    """A payment with its history."""

    status = serializers.CharField(read_only=True, help_text=_values(PaymentStatus.choices))
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    cycle = CycleRefSerializer(read_only=True)
    programme = ProgrammeRefSerializer(read_only=True)
    enrolment = EnrolmentRefSerializer(read_only=True)
    household = HouseholdRefSerializer(read_only=True)
    district = PlaceSerializer(read_only=True)
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True, help_text="In `currency`.")
    paid_amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, read_only=True, allow_null=True, help_text="What the provider paid."
    )
    channel = serializers.CharField(read_only=True, help_text=_values(PaymentChannel.choices))
    reissue_of = _PaymentReferenceField(help_text="The failed or unclaimed payment this one pays again.")
    reissued_as = _PaymentReferenceField(help_text="The payment that pays this one again.")
    events = PaymentEventSerializer(many=True, read_only=True)

    class Meta:
        model = Payment
        fields = [
            "id",
            "reference",
            "status",
            "status_label",
            "cycle",
            "programme",
            "enrolment",
            "household",
            "district",
            "amount",
            "currency",
            "amount_note",
            "channel",
            "account_number",
            "account_name",
            "pay_point",
            "reissue_of",
            "reissued_as",
            "paid_amount",
            "paid_at",
            "provider_transaction_id",
            "status_note",
            "reconciled_at",
            "created_at",
            "events",
        ]
        read_only_fields = fields


# --- payment cycles ----------------------------------------------------------------------------


class DistrictTotalsSerializer(serializers.Serializer):
    district_id = serializers.IntegerField(read_only=True)
    district = serializers.CharField(read_only=True, help_text="The district's name.")
    count = serializers.IntegerField(read_only=True, help_text="Payments.")
    total = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)
    paid = serializers.IntegerField(read_only=True)
    paid_total = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)
    failed = serializers.IntegerField(read_only=True)
    unclaimed = serializers.IntegerField(read_only=True)
    pending = serializers.IntegerField(read_only=True)


class CycleEventSerializer(serializers.ModelSerializer):
    action = serializers.CharField(
        read_only=True,
        help_text="created, generation_queued, generated, regenerated, generation_refused, reissued, approved, "
        "exported, reconciled, closed.",
    )
    actor = _username("actor")
    detail = serializers.DictField(read_only=True, help_text="What it came to: counts, totals, the file's SHA-256.")

    class Meta:
        model = CycleEvent
        fields = ["at", "action", "actor", "detail"]
        read_only_fields = fields


class ReconciliationSerializer(serializers.ModelSerializer):
    """One provider's file and what became of its rows."""

    cycle = serializers.IntegerField(source="cycle_id", read_only=True)
    uploaded_by = _username("uploaded_by")
    summary = serializers.DictField(read_only=True, help_text="Counts by outcome, and the totals paid.")
    report = serializers.SerializerMethodField(help_text="Where to download the row-by-row report (CSV).")

    class Meta:
        model = Reconciliation
        fields = [
            "id",
            "cycle",
            "file_name",
            "file_sha256",
            "uploaded_by",
            "uploaded_at",
            "rows_total",
            "rows_applied",
            "rows_unchanged",
            "rows_rejected",
            "summary",
            "report",
        ]
        read_only_fields = fields

    def get_report(self, reconciliation: Reconciliation) -> str:
        return f"/api/v1/payment-cycles/{reconciliation.cycle_id}/reconciliations/{reconciliation.pk}/report/"


class PaymentCycleSerializer(serializers.ModelSerializer):
    """A payment cycle as listed."""

    programme = ProgrammeRefSerializer(read_only=True)
    label = serializers.CharField(read_only=True, help_text="The period, e.g. 2026-11.")
    status = serializers.CharField(read_only=True, help_text=_values(CycleStatus.choices))
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    total_amount = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True, help_text="In `currency`.")
    created_by = _username("created_by")
    generated_by = _username("generated_by")
    approved_by = _username("approved_by")
    exported_by = _username("exported_by")

    class Meta:
        model = PaymentCycle
        fields = [
            "id",
            "programme",
            "label",
            "period_start",
            "period_end",
            "status",
            "status_label",
            "currency",
            "payment_count",
            "total_amount",
            "created_by",
            "created_at",
            "generated_by",
            "generated_at",
            "approved_by",
            "approved_at",
            "exported_by",
            "exported_at",
            "closed_at",
        ]
        read_only_fields = fields


class PaymentCycleDetailSerializer(PaymentCycleSerializer):
    """A payment cycle as read: its totals by district, its steps and its reconciliations."""

    totals_by_district = DistrictTotalsSerializer(
        many=True, read_only=True, help_text="Per district (only your districts, unless you run the payroll)."
    )
    events = CycleEventSerializer(many=True, read_only=True)
    reconciliations = ReconciliationSerializer(
        source="visible_reconciliations",
        many=True,
        read_only=True,
        help_text="The provider's files, newest first (for the programme's agency and ministry staff).",
    )

    class Meta(PaymentCycleSerializer.Meta):
        fields = [*PaymentCycleSerializer.Meta.fields, "totals_by_district", "events", "reconciliations"]
        read_only_fields = fields


class PaymentCycleCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    programme = serializers.SlugRelatedField(
        slug_field="code", queryset=Programme.objects.select_related("agency"), help_text="Programme code, e.g. SCT."
    )
    period_start = serializers.DateField(help_text="The first day of the period, the first of a month (YYYY-MM-DD).")


class PayrollGenerateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    reference_date = serializers.DateField(
        required=False,
        allow_null=True,
        default=None,
        help_text="The date ages and data are taken at for the amounts; default the period's first day.",
    )


class PayrollReportSerializer(serializers.Serializer):
    """What a generation did."""

    created = serializers.IntegerField(read_only=True, help_text="Payments added by this run.")
    amounts_changed = serializers.IntegerField(read_only=True, help_text="Enrolments whose amount was recalculated.")
    without_amount = serializers.IntegerField(
        read_only=True, help_text="Active enrolments left out: the formula needs data they lack and no amount is known."
    )
    payment_count = serializers.IntegerField(read_only=True)
    total_amount = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)
    cycle = PaymentCycleDetailSerializer(read_only=True)


class ReissueSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    payment_ids = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        allow_null=True,
        default=None,
        help_text="Only these failed or unclaimed payments; omitted: every one of the programme's earlier cycles.",
    )


class ReissueResultSerializer(serializers.Serializer):
    reissued = serializers.IntegerField(read_only=True, help_text="Payments added to this cycle as reissues.")
    cycle = PaymentCycleDetailSerializer(read_only=True)


class ExportQuerySerializer(serializers.Serializer):
    channel = serializers.CharField(help_text=f"The payment file of one channel: {_values(PaymentChannel.choices)}.")


class ReconcileSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    file = serializers.FileField(
        help_text="The provider's file (CSV or Excel): reference, status, amount, paid_at, transaction id."
    )


# For the description of the reconciliation report.
ROW_OUTCOMES = _values(RowOutcome.choices)
