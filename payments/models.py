"""Enrolments (a household or member in a programme), payment cycles, their
payroll, payment files and reconciliation.

Writes go through `payments.services` (enrolments, payroll) and
`payments.reconciliation`; reads through `payments.selectors`. The database
enforces what must never happen twice: one current enrolment per household (or
member) and programme, one payment per enrolment and cycle, one reissue per
failed payment, one cycle per programme and period.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class EnrolmentStatus(models.TextChoices):
    APPLIED = "applied", "Applied"
    VERIFIED = "verified", "Verified"
    APPROVED = "approved", "Approved"
    ACTIVE = "active", "Active"
    SUSPENDED = "suspended", "Suspended"
    EXITED = "exited", "Exited"


# Current: the household is in the programme or on its way in. At most one
# current enrolment per household (or member) and programme.
CURRENT_STATUSES = (
    EnrolmentStatus.APPLIED,
    EnrolmentStatus.VERIFIED,
    EnrolmentStatus.APPROVED,
    EnrolmentStatus.ACTIVE,
    EnrolmentStatus.SUSPENDED,
)
# Holding a place: what counts against a programme's capacity and budget in a district.
PLACE_STATUSES = (EnrolmentStatus.APPROVED, EnrolmentStatus.ACTIVE, EnrolmentStatus.SUSPENDED)


class ExitReason(models.TextChoices):
    GRADUATED = "graduated", "Graduated"
    MOVED = "moved", "Moved away"
    DECEASED = "deceased", "Deceased"
    NOT_ELIGIBLE = "not_eligible", "No longer eligible"
    VOLUNTARY = "voluntary", "Left voluntarily"
    REFUSED = "refused", "Application refused"


class EnrolmentSource(models.TextChoices):
    REFERRAL = "referral", "From an accepted referral"
    WINDOW = "window", "Directly at the window"
    AGENCY = "agency", "By the agency (its officer or its system)"
    IMPORT = "import", "From the programme's beneficiary list"


class PaymentChannel(models.TextChoices):
    BANK = "bank", "Bank account"
    MOBILE_MONEY = "mobile_money", "Mobile money wallet"
    CASH = "cash", "Cash at a pay point"


class Enrolment(models.Model):
    household = models.ForeignKey("registry.Household", on_delete=models.PROTECT, related_name="enrolments")
    member = models.ForeignKey(
        "registry.Member",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="enrolments",
        help_text="For programmes that serve individuals: the person enrolled.",
    )
    programme = models.ForeignKey("programmes.Programme", on_delete=models.PROTECT, related_name="enrolments")
    # Copied from the household when the enrolment is made, so a district's lists,
    # capacity counts and payroll totals are one indexed filter each.
    district = models.ForeignKey("registry.Location", on_delete=models.PROTECT, related_name="+", editable=False)
    status = models.CharField(max_length=12, choices=EnrolmentStatus.choices, default=EnrolmentStatus.APPLIED)
    source = models.CharField(max_length=12, choices=EnrolmentSource.choices, default=EnrolmentSource.WINDOW)
    referral = models.ForeignKey(
        "referrals.Referral", null=True, blank=True, on_delete=models.PROTECT, related_name="enrolments"
    )
    external_reference = models.CharField(
        max_length=64, blank=True, help_text="The programme's own number for this beneficiary, if it has one."
    )
    amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="The benefit per payment, from the programme's formula: set at approval, recalculated each cycle.",
    )
    currency = models.CharField(max_length=3)
    amount_rule_version = models.ForeignKey(
        "programmes.RuleVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    channel = models.CharField(max_length=16, choices=PaymentChannel.choices, default=PaymentChannel.CASH)
    account_number = models.CharField(
        max_length=64, blank=True, help_text="Bank account or mobile money wallet number, per the channel."
    )
    account_name = models.CharField(max_length=160, blank=True, help_text="The name the account is held in.")
    pay_point = models.CharField(max_length=120, blank=True, help_text="For cash: where the household collects.")
    applied_at = models.DateTimeField(default=timezone.now)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    verified_at = models.DateTimeField(null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    activated_at = models.DateTimeField(null=True, blank=True)
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.CharField(max_length=255, blank=True)
    exited_at = models.DateTimeField(null=True, blank=True)
    exit_reason = models.CharField(max_length=16, choices=ExitReason.choices, blank=True)
    exit_note = models.CharField(max_length=255, blank=True)
    review_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when the household lost eligibility: an officer must decide, nothing exits by itself.",
    )
    review_reason = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["household", "programme"],
                condition=Q(member__isnull=True) & ~Q(status="exited"),
                name="enrolment_one_current_per_household",
                violation_error_message="This household is already enrolled in this programme.",
            ),
            models.UniqueConstraint(
                fields=["member", "programme"],
                condition=Q(member__isnull=False) & ~Q(status="exited"),
                name="enrolment_one_current_per_member",
                violation_error_message="This person is already enrolled in this programme.",
            ),
            models.CheckConstraint(
                condition=~Q(status="exited") | ~Q(exit_reason=""), name="enrolment_exit_has_reason"
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(amount__gte=0), name="enrolment_amount_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["programme", "district", "status"]),
            models.Index(fields=["household", "status"]),
            models.Index(
                fields=["programme", "status"], condition=Q(review_since__isnull=False), name="enrolment_review"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.programme.code} for {self.household.number}"

    @property
    def number(self) -> str:
        return enrolment_number(self.pk)

    @property
    def is_current(self) -> bool:
        return self.status in CURRENT_STATUSES


def enrolment_number(pk: int | None) -> str:
    return f"E{pk:08d}" if pk else "E-unsaved"


class EnrolmentEventKind(models.TextChoices):
    STATUS = "status", "Status changed"
    AMOUNT = "amount", "Amount changed"
    DETAILS = "details", "Payment details changed"
    REVIEW = "review", "Review"


class EnrolmentEvent(models.Model):
    """Who did what to an enrolment, when, why: every status, amount and detail change."""

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=EnrolmentEventKind.choices, default=EnrolmentEventKind.STATUS)
    from_status = models.CharField(max_length=12, choices=EnrolmentStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=EnrolmentStatus.choices, blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField(blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text="field: [old, new]")
    idempotency_key = models.CharField(max_length=100, blank=True)
    cycle = models.ForeignKey("PaymentCycle", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="enrolment_event_idempotency_key_unique",
            ),
        ]

    def __str__(self) -> str:
        if self.kind == EnrolmentEventKind.STATUS:
            return f"{enrolment_number(self.enrolment_id)}: {self.from_status or '—'} → {self.to_status}"
        return f"{enrolment_number(self.enrolment_id)}: {self.get_kind_display().lower()}"


class CycleStatus(models.TextChoices):
    CREATED = "created", "Created"
    GENERATED = "generated", "Payroll generated"
    APPROVED = "approved", "Payroll approved"
    EXPORTED = "exported", "Sent to the provider"
    CLOSED = "closed", "Closed"


class PaymentCycle(models.Model):
    """One period of a programme's payments: its payroll, approval, payment file and reconciliation."""

    programme = models.ForeignKey("programmes.Programme", on_delete=models.PROTECT, related_name="payment_cycles")
    period_start = models.DateField()
    period_end = models.DateField()
    status = models.CharField(max_length=12, choices=CycleStatus.choices, default=CycleStatus.CREATED)
    currency = models.CharField(max_length=3)
    payment_count = models.PositiveIntegerField(default=0)
    total_amount = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    generated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    generated_at = models.DateTimeField(null=True, blank=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    exported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    exported_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "programme__code"]
        constraints = [
            models.UniqueConstraint(fields=["programme", "period_start"], name="payment_cycle_one_per_period"),
            models.CheckConstraint(
                condition=Q(period_end__gte=models.F("period_start")), name="payment_cycle_period_order"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.programme.code} {self.label}"

    @property
    def label(self) -> str:
        if (self.period_start.year, self.period_start.month) == (self.period_end.year, self.period_end.month):
            return self.period_start.strftime("%Y-%m")
        return f"{self.period_start:%Y-%m} to {self.period_end:%Y-%m}"


class CycleEvent(models.Model):
    """A step of a payment cycle: who created, generated, approved, exported or reconciled it, and what it came to."""

    cycle = models.ForeignKey(PaymentCycle, on_delete=models.CASCADE, related_name="events")
    action = models.CharField(max_length=24)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.cycle} {self.action}"


class PaymentStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    PAID = "paid", "Paid"
    FAILED = "failed", "Failed"
    UNCLAIMED = "unclaimed", "Unclaimed"


# What the provider can report; a paid payment is final.
REISSUABLE_STATUSES = (PaymentStatus.FAILED, PaymentStatus.UNCLAIMED)


class Payment(models.Model):
    # Indexed by the composite (cycle, district, status) index below, not on its own.
    cycle = models.ForeignKey(PaymentCycle, on_delete=models.PROTECT, related_name="payments", db_index=False)
    enrolment = models.ForeignKey(Enrolment, on_delete=models.PROTECT, related_name="payments")
    # Copied from the enrolment at generation: a cycle's totals by district and a
    # household's payment history are one indexed filter each. The database does
    # not check these three keys: the enrolment's own keys are checked, and a
    # payroll of 200,000 spent more than a second at commit checking copies.
    household = models.ForeignKey(
        "registry.Household", on_delete=models.PROTECT, related_name="payments", db_index=False, db_constraint=False
    )
    district = models.ForeignKey(
        "registry.Location", on_delete=models.PROTECT, related_name="+", db_constraint=False
    )
    programme = models.ForeignKey(
        "programmes.Programme", on_delete=models.PROTECT, related_name="payments", db_index=False, db_constraint=False
    )
    reference = models.CharField(max_length=40, help_text="What the provider quotes back.")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3)
    amount_note = models.CharField(max_length=255, blank=True, help_text="Why the amount differs from the last one.")
    channel = models.CharField(max_length=16, choices=PaymentChannel.choices)
    account_number = models.CharField(max_length=64, blank=True)
    account_name = models.CharField(max_length=160, blank=True)
    pay_point = models.CharField(max_length=120, blank=True)
    status = models.CharField(max_length=12, choices=PaymentStatus.choices, default=PaymentStatus.PENDING)
    reissue_of = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="reissued_as",
        help_text="The failed or unclaimed payment this one pays again.",
    )
    paid_amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    paid_at = models.DateTimeField(null=True, blank=True)
    provider_transaction_id = models.CharField(max_length=64, blank=True)
    status_note = models.CharField(max_length=255, blank=True)
    reconciled_at = models.DateTimeField(null=True, blank=True)
    disputed_at = models.DateTimeField(
        null=True, blank=True, help_text="The household says a payment marked paid never arrived: to check with the provider."
    )
    dispute_note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-cycle__period_start", "reference"]
        constraints = [
            # A constraint, not unique=True: no second, pattern-matching index nobody uses.
            models.UniqueConstraint(fields=["reference"], name="payment_reference_unique"),
            models.UniqueConstraint(
                fields=["enrolment", "cycle"],
                condition=Q(reissue_of__isnull=True),
                name="payment_one_per_enrolment_and_cycle",
                violation_error_message="This enrolment already has a payment in this cycle.",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(
                condition=~Q(status="paid") | Q(paid_at__isnull=False), name="payment_paid_has_time"
            ),
        ]
        indexes = [
            models.Index(fields=["cycle", "district", "status"]),
            models.Index(fields=["household", "-created_at"]),
            models.Index(
                fields=["programme", "status"],
                condition=Q(status__in=["failed", "unclaimed"]),
                name="payment_reissuable",
            ),
        ]

    def __str__(self) -> str:
        return self.reference


class PaymentEvent(models.Model):
    """A change of a payment's status: who (a person, or the provider's file) and when."""

    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=12, choices=PaymentStatus.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=PaymentStatus.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reconciliation = models.ForeignKey(
        "Reconciliation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    reason = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.payment_id}: {self.from_status or '—'} → {self.to_status}"


class Reconciliation(models.Model):
    """One reconciliation file from the provider, with what became of every row."""

    cycle = models.ForeignKey(PaymentCycle, on_delete=models.PROTECT, related_name="reconciliations")
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    uploaded_at = models.DateTimeField(default=timezone.now)
    rows_total = models.PositiveIntegerField(default=0)
    rows_applied = models.PositiveIntegerField(default=0)
    rows_unchanged = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True, help_text="Counts by outcome, and totals paid.")

    class Meta:
        ordering = ["-uploaded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.file_name} for {self.cycle}"


class RowOutcome(models.TextChoices):
    APPLIED = "applied", "Applied"
    UNCHANGED = "unchanged", "Already recorded"
    UNKNOWN_REFERENCE = "unknown_reference", "Unknown reference"
    AMOUNT_MISMATCH = "amount_mismatch", "Amount does not match"
    ALREADY_PAID = "already_paid", "Already paid: not changed"
    DUPLICATE_ROW = "duplicate_row", "Reference repeated in the file"
    INVALID = "invalid", "Invalid row"


class ReconciliationRow(models.Model):
    """One row of a reconciliation file and what became of it: the downloadable report."""

    reconciliation = models.ForeignKey(Reconciliation, on_delete=models.CASCADE, related_name="rows")
    line = models.PositiveIntegerField()
    reference = models.CharField(max_length=64, blank=True)
    reported_status = models.CharField(max_length=32, blank=True)
    reported_amount = models.CharField(max_length=32, blank=True)
    reported_at = models.CharField(max_length=40, blank=True)
    provider_transaction_id = models.CharField(max_length=64, blank=True)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    outcome = models.CharField(max_length=20, choices=RowOutcome.choices)
    message = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["reconciliation", "line"]

    def __str__(self) -> str:
        return f"line {self.line}: {self.outcome}"


# --- programmes' beneficiary lists (the linkages mechanism) -----------------------------------


class BeneficiaryListStatus(models.TextChoices):
    UPLOADED = "uploaded", "Waiting for the column mapping"
    QUEUED = "queued", "Waiting to run"
    READING = "reading", "Reading the rows"
    MATCHING = "matching", "Matching with the registry"
    APPLYING = "applying", "Writing enrolments"
    DONE = "done", "Done"
    FAILED = "failed", "Stopped: nothing written"


# A list is being worked on: its page polls for progress.
BENEFICIARY_LIST_RUNNING = (
    BeneficiaryListStatus.QUEUED,
    BeneficiaryListStatus.READING,
    BeneficiaryListStatus.MATCHING,
    BeneficiaryListStatus.APPLYING,
)


class BeneficiaryList(models.Model):
    """A programme's existing list of beneficiaries, uploaded so the window sees who is served by what.

    The same file (by its SHA-256) is one list per programme: uploading it
    again changes nothing. Every row of the file ends as one `BeneficiaryRow`
    in exactly one state.
    """

    programme = models.ForeignKey("programmes.Programme", on_delete=models.PROTECT, related_name="beneficiary_lists")
    file = models.FileField(upload_to="beneficiary-lists/%Y/%m/")
    file_name = models.CharField(max_length=255)
    file_sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField(default=timezone.now)
    columns = models.JSONField(default=list, blank=True, help_text="The file's column names, in order.")
    sample = models.JSONField(default=list, blank=True, help_text="The first rows, for the mapping step.")
    estimated_rows = models.PositiveIntegerField(default=0)
    mapping = models.JSONField(default=dict, blank=True, help_text="field: the index of the file's column")
    payment_defaults = models.JSONField(
        default=dict, blank=True, help_text="The payment channel and pay point for rows that give none."
    )
    mapped_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    mapped_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=12, choices=BeneficiaryListStatus.choices, default=BeneficiaryListStatus.UPLOADED
    )
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True, help_text="Rows by state.")
    enrolments_created = models.PositiveIntegerField(default=0)
    households_created = models.PositiveIntegerField(default=0)
    registry_import = models.ForeignKey(
        "registry.ImportJob",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The registry import that registered the list's new households.",
    )
    message = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-uploaded_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["programme", "file_sha256"],
                name="beneficiary_list_one_per_file",
                violation_error_message="This file was already uploaded for this programme.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} for {self.programme.code}"

    @property
    def progress_percent(self) -> int:
        if self.status in (BeneficiaryListStatus.DONE, BeneficiaryListStatus.FAILED):
            return 100
        if not self.total_rows:
            return 0
        return min(100, round(100 * self.processed_rows / self.total_rows))


class BeneficiaryRowState(models.TextChoices):
    PENDING = "pending", "Not decided yet"
    ENROLLED = "enrolled", "Enrolled"
    ALREADY_ENROLLED = "already_enrolled", "Already enrolled"
    NEW_HOUSEHOLD = "new_household", "Registered as a new household and enrolled"
    AMBIGUOUS = "ambiguous", "Waiting for an officer: uncertain match"
    NEEDS_REVIEW = "needs_review", "Waiting for an officer: not found, details missing"
    REJECTED = "rejected", "Rejected by an officer"
    INVALID = "invalid", "Invalid row"


# The states an officer resolves; every other state but pending is final.
BENEFICIARY_REVIEW_STATES = (BeneficiaryRowState.AMBIGUOUS, BeneficiaryRowState.NEEDS_REVIEW)


class BeneficiaryMatch(models.TextChoices):
    NATIONAL_ID = "national_id", "National ID"
    NAME = "name", "Name, date of birth and village"
    OFFICER = "officer", "Chosen by an officer"
    NEW_HOUSEHOLD = "new_household", "Registered from the list"


class BeneficiaryRow(models.Model):
    """One row of a beneficiary list: what it says, whom it matched (with the score and the
    candidates an officer weighs), and the one state it ended in, with the reason."""

    beneficiary_list = models.ForeignKey(BeneficiaryList, on_delete=models.CASCADE, related_name="rows")
    line = models.PositiveIntegerField(help_text="The row's number in the file (the column names are row 1).")
    values = models.JSONField(default=dict, blank=True, help_text="The mapped cells as the file gives them.")
    national_id = models.CharField(max_length=32, blank=True)
    first_name = models.CharField(max_length=80, blank=True)
    last_name = models.CharField(max_length=80, blank=True)
    sex = models.CharField(max_length=1, blank=True)
    date_of_birth = models.DateField(null=True, blank=True)
    date_of_birth_estimated = models.BooleanField(default=False)
    village = models.ForeignKey("registry.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    village_problem = models.CharField(
        max_length=255,
        blank=True,
        help_text="Why the village cell could not be used; it matters only without an ID match.",
    )
    # The district the row belongs to once known (its village, or the household it matched):
    # who may see the row. A row with none is seen by the uploader and ministry staff.
    district = models.ForeignKey("registry.Location", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    phone = models.CharField(max_length=32, blank=True)
    external_reference = models.CharField(max_length=64, blank=True)
    amount = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    channel = models.CharField(max_length=16, choices=PaymentChannel.choices, blank=True)
    account_number = models.CharField(max_length=64, blank=True)
    pay_point = models.CharField(max_length=120, blank=True)
    state = models.CharField(max_length=16, choices=BeneficiaryRowState.choices, default=BeneficiaryRowState.PENDING)
    column = models.CharField(max_length=255, blank=True, help_text="The file's column(s) the reason is about.")
    reason = models.TextField(blank=True)
    match_method = models.CharField(max_length=16, choices=BeneficiaryMatch.choices, blank=True)
    score = models.DecimalField(max_digits=4, decimal_places=3, null=True, blank=True)
    candidates = models.JSONField(
        default=list, blank=True, help_text="Registered people who may be this row, best first."
    )
    member = models.ForeignKey("registry.Member", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    household = models.ForeignKey(
        "registry.Household", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    enrolment = models.ForeignKey(Enrolment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["beneficiary_list", "line"]
        constraints = [
            models.UniqueConstraint(fields=["beneficiary_list", "line"], name="beneficiary_row_one_per_line"),
        ]
        indexes = [models.Index(fields=["beneficiary_list", "state"])]

    def __str__(self) -> str:
        return f"row {self.line}: {self.state}"

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part)
