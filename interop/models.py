"""Partner systems that talk to this registry in the Digital Convergence
Initiative's standard (DCI), and every message they sent.

A partner is another agency's system (a national social registry, a payment
system, a ministry's MIS). It acts here through its own service user: the
districts it may see are that user's districts, read by `spf.scope` like any
person's; the programmes it may see are the partner's. It authenticates with
bearer tokens (stored as hashes) and, when it has registered a key, signs its
messages (Ed25519).

Every message it sends is one `Transaction`: the database refuses a second
with the same message_id from the same partner. Writes go through
`interop.services` (partners, tokens, keys) and `interop.dci` (the protocol).
"""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Partner(models.Model):
    code = models.CharField(
        max_length=64,
        unique=True,
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                "Letters, digits, dots, hyphens and underscores, starting with a letter or digit.",
            )
        ],
        help_text="What its messages give as header.sender_id, e.g. nsr.gov.zm or MOH-MIS. Never changed once used.",
    )
    name = models.CharField(max_length=160)
    agency = models.ForeignKey(
        "programmes.Agency",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="dci_partners",
        help_text="Set when this is an agency's own system: its enrolment updates then become enrolments of the "
        "agency's programmes. Leave empty for a registry or another ministry's MIS: its updates become referrals.",
    )
    service_user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="dci_partner", editable=False
    )
    programmes = models.ManyToManyField(
        "programmes.Programme",
        blank=True,
        related_name="dci_partners",
        help_text="The programmes whose enrolments it may read and update (Integrated Beneficiary Registry).",
    )
    can_search_registry = models.BooleanField(
        "may search the registry",
        default=False,
        help_text="Social Registry search: households and members of its districts.",
    )
    can_read_enrolments = models.BooleanField(
        "may read enrolments", default=False, help_text="Enrolled checks and enrolment searches in its programmes."
    )
    can_update_enrolments = models.BooleanField(
        "may send enrolment updates", default=False, help_text="Enrolment updates in its programmes."
    )
    callback_url = models.URLField(
        blank=True,
        help_text="Where its system receives asynchronous answers (…/registry/on-search and "
        "…/registry/txn/on-status are added to it). A message's sender_uri must start with this address.",
    )
    callback_token = models.CharField(
        max_length=255,
        blank=True,
        help_text="Sent as 'Authorization: Bearer …' with each callback, if its system asks.",
    )
    pay_point = models.CharField(
        max_length=120,
        blank=True,
        help_text="For an agency's system: enrolments its updates create are paid in cash here until an officer "
        "records the household's own payment details.",
    )
    active = models.BooleanField(default=True, help_text="An inactive partner's tokens are refused.")
    notes = models.TextField(
        blank=True, help_text="The agreement it works under, who to call, anything staff should know."
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "partner system"

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class PartnerToken(models.Model):
    """A bearer token of a partner. Only its SHA-256 is kept: it is shown once, when issued."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="tokens")
    label = models.CharField(
        max_length=120, help_text="Which server or environment uses it, e.g. 'production gateway'."
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=16, editable=False, help_text="The token's first characters, to recognise it.")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.label})"

    def is_usable(self, at=None) -> bool:
        at = at or timezone.now()
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > at)


class PartnerKey(models.Model):
    """A partner's Ed25519 public key. With one active, every message it sends must be signed."""

    partner = models.ForeignKey(Partner, on_delete=models.CASCADE, related_name="keys")
    key_id = models.CharField(
        max_length=64, help_text='The unique_key_id its signatures name in kidId="{sender_id}|{key_id}|ed25519".'
    )
    public_key = models.CharField(max_length=64, help_text="Base64 of the 32 bytes of the Ed25519 public key.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["partner", "key_id"],
                name="partner_key_id_unique",
                violation_error_message="This partner already has a key with this id.",
            )
        ]

    def __str__(self) -> str:
        return f"{self.partner.code}|{self.key_id}"


class Api(models.TextChoices):
    SOCIAL = "social", "Social Registry"
    IBR = "ibr", "Integrated Beneficiary Registry"


class Action(models.TextChoices):
    SEARCH = "search", "Search"
    ENROLLED = "enrolled", "Enrolled check"
    UPDATES = "notify", "Enrolment updates"
    TXN_STATUS = "txn-status", "Transaction status"


class Mode(models.TextChoices):
    SYNC = "sync", "Answered at once"
    ASYNC = "async", "Acknowledged, answered by callback"


class Status(models.TextChoices):
    """DCI's request statuses."""

    RECEIVED = "rcvd", "Received"
    PENDING = "pdng", "Pending"
    SUCCEEDED = "succ", "Succeeded"
    REJECTED = "rjct", "Rejected"


class CallbackStatus(models.TextChoices):
    NONE = "", "No callback"
    PENDING = "pending", "Waiting to be delivered"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed: gave up"


class Transaction(models.Model):
    """One message a partner sent, what it asked, and what became of it."""

    partner = models.ForeignKey(Partner, on_delete=models.PROTECT, related_name="transactions")
    message_id = models.CharField(max_length=100)
    transaction_id = models.CharField(
        max_length=99, blank=True, help_text="The partner's own id for the business transaction."
    )
    correlation_id = models.CharField(max_length=99, unique=True, help_text="Ours, given back in the answer.")
    api = models.CharField(max_length=8, choices=Api.choices)
    action = models.CharField(max_length=12, choices=Action.choices)
    mode = models.CharField(max_length=8, choices=Mode.choices)
    endpoint = models.CharField(max_length=80)
    status = models.CharField(max_length=4, choices=Status.choices, default=Status.RECEIVED)
    status_reason_code = models.CharField(max_length=64, blank=True)
    status_reason_message = models.CharField(max_length=999, blank=True)
    header = models.JSONField(default=dict, blank=True, help_text="The message's header as received.")
    request = models.JSONField(
        null=True,
        blank=True,
        help_text="The message's body, kept until it is answered (it may name people); cleared after the retention period.",
    )
    item_count = models.PositiveIntegerField(default=0)
    completed_count = models.PositiveIntegerField(default=0)
    record_count = models.PositiveIntegerField(
        default=0, help_text="Records returned (people, households, enrolments)."
    )
    received_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    callback_url = models.CharField(max_length=500, blank=True)
    callback_payload = models.JSONField(
        null=True, blank=True, help_text="The answer waiting to be delivered; cleared once delivered or given up."
    )
    callback_status = models.CharField(max_length=12, choices=CallbackStatus.choices, blank=True, default="")
    callback_attempts = models.PositiveSmallIntegerField(default=0)
    callback_next_at = models.DateTimeField(null=True, blank=True)
    callback_last_error = models.CharField(max_length=500, blank=True)
    callback_delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = "message (transaction)"
        verbose_name_plural = "messages (transactions)"
        constraints = [
            # A repeated message is refused, never answered twice: the index decides, even for two at once.
            models.UniqueConstraint(
                fields=["partner", "message_id"],
                name="dci_message_id_unique_per_partner",
                violation_error_message="This partner already sent a message with this message_id.",
            ),
        ]
        indexes = [
            models.Index(fields=["partner", "transaction_id"]),
            models.Index(fields=["partner", "-received_at"]),
            models.Index(fields=["callback_next_at"], condition=Q(callback_status="pending"), name="dci_callback_due"),
        ]

    def __str__(self) -> str:
        return f"{self.partner.code} {self.action} {self.message_id}"


class TransactionItem(models.Model):
    """One request of a message's batch (a search request, an enrolment update) and its outcome."""

    transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    reference_id = models.CharField(max_length=99, blank=True)
    status = models.CharField(max_length=4, choices=Status.choices)
    status_reason_code = models.CharField(max_length=64, blank=True)
    status_reason_message = models.CharField(max_length=999, blank=True)
    total_count = models.PositiveIntegerField(null=True, blank=True, help_text="Records that matched.")
    returned_count = models.PositiveIntegerField(null=True, blank=True, help_text="Records in the page returned.")
    page_number = models.PositiveIntegerField(null=True, blank=True)
    page_size = models.PositiveIntegerField(null=True, blank=True)
    enrolment = models.ForeignKey(
        "payments.Enrolment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    referral = models.ForeignKey(
        "referrals.Referral", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["transaction", "position"]
        constraints = [
            models.UniqueConstraint(fields=["transaction", "position"], name="dci_item_one_per_position"),
        ]
        indexes = [models.Index(fields=["reference_id"])]

    def __str__(self) -> str:
        return f"{self.reference_id or self.position}: {self.status}"


class CallbackAttempt(models.Model):
    """One try at posting an asynchronous answer to the partner's system."""

    transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="callback_log")
    at = models.DateTimeField(default=timezone.now)
    url = models.CharField(max_length=500)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.transaction_id} at {self.at:%Y-%m-%d %H:%M:%S}: {self.status_code or self.error[:40]}"
