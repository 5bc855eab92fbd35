"""Grievances and appeals raised at the window: who raised it, about what, its
lifecycle with deadlines, and its history.

Writes go through `grievances.services` (one state machine); reads through
`grievances.selectors`, which decides who may see what: a sensitive grievance
(abuse, corruption, staff conduct when so marked) is visible only to designated
officers, never to the whole district.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class GrievanceCategory(models.TextChoices):
    ELIGIBILITY = "eligibility", "Eligibility decision or appeal"
    PAYMENT = "payment", "Payment"
    DATA_CORRECTION = "data_correction", "Data correction"
    STAFF_CONDUCT = "staff_conduct", "Staff conduct"
    FRAUD = "fraud", "Fraud or corruption"
    OTHER = "other", "Other"


class GrievanceChannel(models.TextChoices):
    WALK_IN = "walk_in", "Walk-in at the window"
    PHONE = "phone", "Phone"
    SMS = "sms", "SMS"
    LETTER = "letter", "Letter"
    COMMUNITY_WORKER = "community_worker", "Community worker"
    PARTNER_AGENCY = "partner_agency", "Partner agency"


class GrievancePriority(models.TextChoices):
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class GrievanceStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    ASSIGNED = "assigned", "Assigned"
    INVESTIGATED = "investigated", "Investigated"
    ESCALATED = "escalated", "Escalated"
    RESOLVED = "resolved", "Resolved"
    CLOSED = "closed", "Closed"


OPEN_STATUSES = (
    GrievanceStatus.RECEIVED,
    GrievanceStatus.ACKNOWLEDGED,
    GrievanceStatus.ASSIGNED,
    GrievanceStatus.INVESTIGATED,
    GrievanceStatus.ESCALATED,
)


class EscalationLevel(models.TextChoices):
    COMMITTEE = "committee", "District committee"
    MINISTRY = "ministry", "Ministry"


class AppealOutcome(models.TextChoices):
    UPHELD = "upheld", "Upheld"
    NOT_UPHELD = "not_upheld", "Not upheld"


class Grievance(models.Model):
    # Who raised it: a registered member, or a person with a name and a contact,
    # or nobody (anonymous: a contact is optional then).
    complainant = models.ForeignKey(
        "registry.Member", null=True, blank=True, on_delete=models.PROTECT, related_name="grievances"
    )
    complainant_name = models.CharField(max_length=160, blank=True)
    complainant_contact = models.CharField(max_length=120, blank=True, help_text="Phone, address or how to reach them.")
    anonymous = models.BooleanField(default=False)
    household = models.ForeignKey(
        "registry.Household", null=True, blank=True, on_delete=models.PROTECT, related_name="grievances"
    )
    programme = models.ForeignKey(
        "programmes.Programme", null=True, blank=True, on_delete=models.PROTECT, related_name="grievances"
    )
    # Where it is handled: the household's district, or the window's where no household is known.
    district = models.ForeignKey("registry.Location", on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=20, choices=GrievanceChannel.choices, default=GrievanceChannel.WALK_IN)
    category = models.CharField(max_length=20, choices=GrievanceCategory.choices)
    sensitive = models.BooleanField(
        default=False, help_text="Abuse, corruption and the like: visible only to designated officers."
    )
    priority = models.CharField(max_length=10, choices=GrievancePriority.choices, default=GrievancePriority.NORMAL)
    description = models.TextField()
    status = models.CharField(max_length=14, choices=GrievanceStatus.choices, default=GrievanceStatus.RECEIVED)
    due_date = models.DateField(help_text="Resolution deadline, from the category's number of days.")
    overdue_since = models.DateField(null=True, blank=True)
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="grievances_assigned"
    )
    assigned_agency = models.ForeignKey(
        "programmes.Agency", null=True, blank=True, on_delete=models.PROTECT, related_name="grievances"
    )
    escalated_to = models.CharField(max_length=10, choices=EscalationLevel.choices, blank=True)
    # An eligibility appeal: the result appealed, as it was (the result itself changes later).
    appealed_rule_version = models.ForeignKey(
        "programmes.RuleVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    appealed_outcome = models.CharField(max_length=20, blank=True)
    appeal_outcome = models.CharField(max_length=12, choices=AppealOutcome.choices, blank=True)
    outcome_after = models.CharField(
        max_length=20, blank=True, help_text="The eligibility outcome after an upheld appeal was applied."
    )
    # A payment complaint.
    payment = models.ForeignKey(
        "payments.Payment", null=True, blank=True, on_delete=models.PROTECT, related_name="grievances"
    )
    resolution = models.TextField(blank=True)
    resolution_accepted = models.BooleanField(null=True, blank=True, help_text="Did the person accept the resolution?")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("handle_sensitive", "Can see and handle sensitive grievances (designated officer)")]
        constraints = [
            models.CheckConstraint(
                condition=Q(anonymous=True) | Q(complainant__isnull=False) | ~Q(complainant_name=""),
                name="grievance_says_who_unless_anonymous",
            ),
            models.CheckConstraint(
                condition=~Q(status="escalated") | ~Q(escalated_to=""), name="grievance_escalation_says_where"
            ),
        ]
        indexes = [
            models.Index(fields=["district", "status"]),
            models.Index(fields=["status", "due_date"]),
            models.Index(fields=["household", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.get_category_display()}"

    @property
    def number(self) -> str:
        return grievance_number(self.pk)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


def grievance_number(pk: int | None) -> str:
    """What the acknowledgement slip carries: G and the id, zero-padded."""
    return f"G{pk:08d}" if pk else "G-unsaved"


def grievance_id_from_number(number: str) -> int | None:
    text = (number or "").strip().upper().removeprefix("G").lstrip("-")
    return int(text) if text.isdigit() and 0 < len(text) <= 12 else None


class GrievanceEvent(models.Model):
    """One step of a grievance: who, when, from what to what, and why."""

    grievance = models.ForeignKey(Grievance, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=14, choices=GrievanceStatus.choices, blank=True)
    to_status = models.CharField(max_length=14, choices=GrievanceStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="Other fields changed: field: [old, new].")
    idempotency_key = models.CharField(max_length=100, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["grievance", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="grievance_event_idempotency_key_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"{grievance_number(self.grievance_id)}: {self.from_status or '—'} → {self.to_status}"


class GrievanceAttachment(models.Model):
    grievance = models.ForeignKey(Grievance, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="grievances/%Y/%m/")
    description = models.CharField(max_length=200, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.description or self.file.name
