"""The programme catalogue, versioned eligibility rules and benefit formulas,
and the eligibility of every household for every programme.

Writes go through `programmes.services`; the rules language is `programmes.rules`.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone


class AgencyKind(models.TextChoices):
    MINISTRY = "ministry", "Line ministry"
    DEPARTMENT = "department", "Government department"
    NGO = "ngo", "Non-governmental organisation"
    PARTNER = "partner", "Development partner"


class ReferralDelivery(models.TextChoices):
    QUEUE = "queue", "Officers work a queue in this system"
    PULL = "pull", "Its system pulls referrals over the API"
    WEBHOOK = "webhook", "The window pushes each referral to its system"


class Agency(models.Model):
    code = models.CharField(
        max_length=16, unique=True, help_text="Short capitals, e.g. MCDSS. Used in user names and the API."
    )
    name = models.CharField(max_length=160)
    kind = models.CharField(max_length=16, choices=AgencyKind.choices)
    focal_point_name = models.CharField("focal point", max_length=120, blank=True)
    focal_point_title = models.CharField("focal point's position", max_length=120, blank=True)
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    address = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    referral_delivery = models.CharField(
        max_length=16, choices=ReferralDelivery.choices, default=ReferralDelivery.QUEUE,
        help_text="How this agency receives the referrals the window sends it.",
    )
    webhook_url = models.URLField(blank=True, help_text="For push delivery: where each referral is POSTed.")
    webhook_secret = models.CharField(
        max_length=128, blank=True, help_text="For push delivery: the shared secret that signs each request (HMAC-SHA256)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "agencies"
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(referral_delivery="webhook") | (~models.Q(webhook_url="") & ~models.Q(webhook_secret="")),
                name="agency_webhook_needs_url_and_secret",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ProgrammeKind(models.TextChoices):
    CASH_TRANSFER = "cash_transfer", "Cash transfer"
    IN_KIND = "in_kind", "In-kind support"
    SCHOOL_FEEDING = "school_feeding", "School feeding"
    HEALTH = "health", "Health insurance or fee waiver"
    LIVELIHOOD = "livelihood", "Training or livelihood"
    CARE = "care", "Care service"
    OTHER = "other", "Other"


class TargetUnit(models.TextChoices):
    HOUSEHOLD = "household", "Household"
    INDIVIDUAL = "individual", "Individual"


class ProgrammeStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    CLOSED = "closed", "Closed"


class BenefitFrequency(models.TextChoices):
    ONE_OFF = "one_off", "Once"
    MONTHLY = "monthly", "Every month"
    BIMONTHLY = "bimonthly", "Every two months"
    QUARTERLY = "quarterly", "Every three months"
    TERMLY = "termly", "Every school term"
    ANNUAL = "annual", "Every year"


class EnrolmentMode(models.TextChoices):
    REFERRAL = "referral", "Referral needed"
    DIRECT = "direct", "Direct at the window"


class AutoReferral(models.TextChoices):
    OFF = "off", "No automatic referrals"
    SUGGEST = "suggest", "Suggest a referral for an officer to confirm"
    CREATE = "create", "Send a referral at once"


class Programme(models.Model):
    code = models.CharField(
        max_length=16, unique=True, help_text="Short capitals, e.g. SCT. Used in the API and commands."
    )
    name = models.CharField(max_length=160)
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="programmes")
    description = models.TextField(help_text="In plain words for citizens: what it gives and who it is for.")
    kind = models.CharField(max_length=16, choices=ProgrammeKind.choices)
    target_unit = models.CharField(max_length=16, choices=TargetUnit.choices, default=TargetUnit.HOUSEHOLD)
    status = models.CharField(max_length=16, choices=ProgrammeStatus.choices, default=ProgrammeStatus.DRAFT)
    frequency = models.CharField(max_length=16, choices=BenefitFrequency.choices, default=BenefitFrequency.MONTHLY)
    currency = models.CharField(
        max_length=3,
        help_text="ISO 4217 code (three capitals); the country's currency unless the programme pays in another.",
    )
    enrolment_mode = models.CharField(max_length=16, choices=EnrolmentMode.choices, default=EnrolmentMode.REFERRAL)
    documents = models.JSONField(default=list, blank=True, help_text="What a person must bring, one item each.")
    auto_referral = models.CharField(
        max_length=16, choices=AutoReferral.choices, default=AutoReferral.SUGGEST,
        help_text="What happens when a household becomes eligible and is not yet referred or enrolled.",
    )
    referral_sla_days = models.PositiveSmallIntegerField(
        "days to act on a referral", default=14,
        help_text="The agency's service-level agreement: a referral is due this many days after it is sent.",
    )
    districts = models.ManyToManyField("registry.Location", through="ProgrammeDistrict", related_name="programmes")
    current_version = models.ForeignKey(
        "RuleVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class ProgrammeDistrict(models.Model):
    """Where a programme runs, with its ceiling there."""

    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="coverage")
    district = models.ForeignKey(
        "registry.Location", on_delete=models.PROTECT, related_name="+", limit_choices_to={"level": "district"}
    )
    capacity = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most beneficiaries at once; empty for no limit."
    )
    budget = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, help_text="Per year, in the programme's currency."
    )

    class Meta:
        ordering = ["programme", "district__name"]
        constraints = [models.UniqueConstraint(fields=["programme", "district"], name="programme_district_unique")]

    def __str__(self) -> str:
        return f"{self.programme.code} in {self.district.name}"


class RuleVersion(models.Model):
    """One version of a programme's eligibility rule and benefit formula. Never edited: a change is a new version."""

    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    eligibility_rule = models.TextField()
    benefit_formula = models.TextField(
        blank=True, help_text="Empty when the programme gives no amount (in-kind, services)."
    )
    note = models.CharField(max_length=255, blank=True, help_text="Why it changed.")
    restored_from = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["programme", "-number"]
        constraints = [models.UniqueConstraint(fields=["programme", "number"], name="rule_version_number_unique")]

    def __str__(self) -> str:
        return f"{self.programme.code} v{self.number}"


class EligibilityOutcome(models.TextChoices):
    ELIGIBLE = "eligible", "Eligible"
    NEEDS_INFORMATION = "needs_information", "Needs information"
    NOT_ELIGIBLE = "not_eligible", "Not eligible"


class EligibilityResult(models.Model):
    """The current outcome of one household for one programme.

    Rewritten only when the outcome or the amount changes: `rule_version` and
    `outcome_since` say which version set it and when. `reasons` and `missing`
    are filled when the household is assessed on its own (the front desk, an
    edit); a bulk run leaves the last explanation in place if the outcome did
    not change and clears it if it did.
    """

    household = models.ForeignKey("registry.Household", on_delete=models.CASCADE, related_name="eligibility")
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="results")
    outcome = models.CharField(max_length=20, choices=EligibilityOutcome.choices)
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    reasons = models.JSONField(default=list, blank=True)
    missing = models.JSONField(default=list, blank=True)
    eligible_members = models.JSONField(default=list, blank=True)
    rule_version = models.ForeignKey(RuleVersion, on_delete=models.PROTECT, related_name="+")
    evaluated_at = models.DateTimeField()
    outcome_since = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["household", "programme"], name="eligibility_result_unique"),
        ]
        indexes = [models.Index(fields=["programme", "outcome"])]

    def __str__(self) -> str:
        return f"{self.household_id} / {self.programme_id}: {self.outcome}"


class EligibilityChange(models.Model):
    """A household's outcome for a programme changed: what referrals consume.

    Append-only. Consumers keep their own watermark (the last id they acted
    on) rather than stamping rows: stamping ten million rows after a first
    recompute cost more than making the referrals.
    """

    household = models.ForeignKey("registry.Household", on_delete=models.CASCADE, related_name="eligibility_changes")
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="eligibility_changes")
    previous_outcome = models.CharField(max_length=20, choices=EligibilityOutcome.choices, blank=True)
    outcome = models.CharField(
        max_length=20,
        choices=EligibilityOutcome.choices,
        blank=True,
        help_text="Empty: no longer assessed (the programme left the district, the household dissolved).",
    )
    rule_version = models.ForeignKey(RuleVersion, null=True, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    run = models.ForeignKey("RecomputeRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="changes")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["household", "programme", "-at"]),
        ]

    def __str__(self) -> str:
        return f"{self.household_id} / {self.programme_id}: {self.previous_outcome or '—'} → {self.outcome or '—'}"


class RecomputeStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class RecomputeRun(models.Model):
    """One bulk re-assessment, with progress for the admin."""

    programme = models.ForeignKey(Programme, null=True, blank=True, on_delete=models.CASCADE, related_name="runs")
    district = models.ForeignKey("registry.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=RecomputeStatus.choices, default=RecomputeStatus.PENDING)
    total_steps = models.PositiveIntegerField(default=0)
    done_steps = models.PositiveIntegerField(default=0)
    households_assessed = models.PositiveIntegerField(default=0)
    outcomes_changed = models.PositiveIntegerField(default=0)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        scope = self.programme.code if self.programme_id else "all programmes"
        return f"Recompute {scope} ({self.get_status_display()})"

    @property
    def progress_percent(self) -> int:
        if not self.total_steps:
            return 100 if self.status == RecomputeStatus.DONE else 0
        return min(100, round(100 * self.done_steps / self.total_steps))
