"""Referrals from the window to the programmes a household qualifies for, their
lifecycle, their delivery to partner agencies, and the follow-up.

Writes go through `referrals.services` (one state machine); reads through
`referrals.selectors`.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class ReferralStatus(models.TextChoices):
    DRAFT = "draft", "Suggested, not sent"
    SENT = "sent", "Sent"
    RECEIVED = "received", "Received by the agency"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"
    COMPLETED = "completed", "Completed"
    EXPIRED = "expired", "Expired"
    CANCELLED = "cancelled", "Cancelled"


# Open: the household is still on its way. At most one open referral per
# household and programme (a partial unique index).
OPEN_STATUSES = (ReferralStatus.DRAFT, ReferralStatus.SENT, ReferralStatus.RECEIVED, ReferralStatus.ACCEPTED)
CLOSED_STATUSES = (ReferralStatus.REJECTED, ReferralStatus.COMPLETED, ReferralStatus.EXPIRED, ReferralStatus.CANCELLED)


class ReferralSource(models.TextChoices):
    WINDOW = "window", "The one-stop shop"
    AUTOMATIC = "automatic", "Eligibility (automatic)"
    PROGRAMME = "programme", "Another programme"
    AGENCY = "agency", "A partner agency"
    COMMUNITY_WORKER = "community_worker", "A community worker"


class ReferralPriority(models.TextChoices):
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class RejectionReason(models.TextChoices):
    NOT_ELIGIBLE = "not_eligible", "Not eligible on verification"
    CAPACITY_FULL = "capacity_full", "No place left (capacity or budget)"
    ALREADY_SERVED = "already_served", "Already served by the programme"
    NOT_REACHED = "not_reached", "Household could not be reached"
    DECLINED = "declined", "Household declined"
    DOCUMENTS_MISSING = "documents_missing", "Documents missing"
    OTHER = "other", "Other (explain)"


class Referral(models.Model):
    household = models.ForeignKey("registry.Household", on_delete=models.PROTECT, related_name="referrals")
    member = models.ForeignKey(
        "registry.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="referrals",
        help_text="For programmes that serve individuals: the person referred.",
    )
    programme = models.ForeignKey("programmes.Programme", on_delete=models.PROTECT, related_name="referrals")
    # Copied from the programme and the household when the referral is made, so
    # an agency's queue and a district's worklist are one indexed filter each.
    agency = models.ForeignKey("programmes.Agency", on_delete=models.PROTECT, related_name="referrals", editable=False)
    district = models.ForeignKey("registry.Location", on_delete=models.PROTECT, related_name="+", editable=False)
    source = models.CharField(max_length=20, choices=ReferralSource.choices, default=ReferralSource.WINDOW)
    source_detail = models.CharField(max_length=160, blank=True, help_text="Which programme, agency or worker referred.")
    reason = models.TextField(blank=True, help_text="Why the household is referred, in words the agency reads.")
    priority = models.CharField(max_length=10, choices=ReferralPriority.choices, default=ReferralPriority.NORMAL)
    notes = models.TextField(blank=True)
    status = models.CharField(max_length=12, choices=ReferralStatus.choices, default=ReferralStatus.DRAFT)
    rejection_reason = models.CharField(max_length=20, choices=RejectionReason.choices, blank=True)
    status_note = models.TextField(blank=True, help_text="Why the last change of status happened.")
    due_date = models.DateField(null=True, blank=True, help_text="Set when sent, from the programme's service level.")
    overdue_since = models.DateField(null=True, blank=True)
    eligibility_change = models.ForeignKey(
        "programmes.EligibilityChange", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["household", "programme"],
                condition=Q(status__in=OPEN_STATUSES),
                name="referral_one_open_per_household_programme",
                violation_error_message="This household already has an open referral to this programme.",
            ),
            models.CheckConstraint(
                condition=~Q(status="rejected") | ~Q(rejection_reason=""),
                name="referral_rejection_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["agency", "status"]),
            models.Index(fields=["district", "status"]),
            models.Index(fields=["status", "due_date"]),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.programme.code} for {self.household.number}"

    @property
    def number(self) -> str:
        """What the slip and its QR code carry: R and the id, zero-padded."""
        return referral_number(self.pk)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


def referral_number(pk: int | None) -> str:
    return f"R{pk:08d}" if pk else "R-unsaved"


def referral_id_from_number(number: str) -> int | None:
    """The id in a typed or scanned referral number ('R00000123', 'r123', '123'), or None."""
    text = (number or "").strip().upper().removeprefix("R").lstrip("-")
    return int(text) if text.isdigit() and 0 < len(text) <= 12 else None


class ReferralEvent(models.Model):
    """One transition: who (a person, or an agency's system), when, from what to what, and why."""

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=12, choices=ReferralStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=ReferralStatus.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    agency = models.ForeignKey("programmes.Agency", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
                               help_text="Set when the agency (its officer or its system) made the change.")
    reason = models.TextField(blank=True)
    rejection_reason = models.CharField(max_length=20, choices=RejectionReason.choices, blank=True)
    idempotency_key = models.CharField(max_length=100, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="Other fields changed with the status: field: [old, new].")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            # An agency's system sending the same update twice changes nothing twice.
            models.UniqueConstraint(
                fields=["referral", "idempotency_key"], condition=~Q(idempotency_key=""),
                name="referral_event_idempotency_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{referral_number(self.referral_id)}: {self.from_status or '—'} → {self.to_status}"


class ReferralAttachment(models.Model):
    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="referrals/%Y/%m/")
    description = models.CharField(max_length=200, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.description or self.file.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed: needs a retry"


class Delivery(models.Model):
    """The outbox: one message to an agency's system about one referral event.

    Written in the same transaction as the event, swept by beat, so a message
    is never sent before its transaction commits and never lost to a crash.
    """

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey(ReferralEvent, on_delete=models.CASCADE, related_name="deliveries")
    agency = models.ForeignKey("programmes.Agency", on_delete=models.PROTECT, related_name="deliveries")
    idempotency_key = models.CharField(max_length=100, unique=True)
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        indexes = [
            models.Index(fields=["next_attempt_at"], condition=Q(status="pending"), name="delivery_due"),
            models.Index(fields=["agency", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.idempotency_key} ({self.get_status_display()})"


class DeliveryAttempt(models.Model):
    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(default=timezone.now)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.delivery_id} at {self.at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error[:40]}"


class Notification(models.Model):
    """Something a person at the window or an agency must act on: an overdue referral, a failed delivery."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    referral = models.ForeignKey(Referral, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32)
    message = models.CharField(max_length=255)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The beat job runs again and again: one notice per person, referral and kind.
            models.UniqueConstraint(fields=["recipient", "referral", "kind"], name="notification_once_per_kind"),
        ]
        indexes = [models.Index(fields=["recipient", "read_at"])]

    def __str__(self) -> str:
        return self.message


class EligibilitySweep(models.Model):
    """How far automatic referrals have read the eligibility changes (a watermark, one row)."""

    name = models.CharField(max_length=32, primary_key=True)
    last_change_id = models.BigIntegerField(default=0)
    swept_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: up to change {self.last_change_id}"
