"""Users and their roles; the districts each user may see; the outbox of background jobs."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone


class Role(models.TextChoices):
    FRONT_DESK = "front_desk", "Front-desk officer"
    PROGRAMME_OFFICER = "programme_officer", "Programme officer"
    COMMITTEE = "committee", "District committee member"
    MINISTRY = "ministry", "Ministry staff"


class User(AbstractUser):
    role = models.CharField(max_length=32, choices=Role.choices, default=Role.FRONT_DESK)
    districts = models.ManyToManyField(
        "registry.Location",
        blank=True,
        related_name="assigned_users",
        limit_choices_to={"level": "district"},
        help_text="The districts whose households this user may see. Ministry staff see every district.",
    )
    agency = models.ForeignKey(
        "programmes.Agency",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="officers",
        help_text="For programme officers: the agency whose referrals and programmes they work on.",
    )

    class Meta:
        ordering = ["username"]

    @property
    def sees_every_district(self) -> bool:
        return self.is_superuser or self.role == Role.MINISTRY

    @property
    def can_edit_registry(self) -> bool:
        return self.is_superuser or self.role in (Role.FRONT_DESK, Role.MINISTRY)


class OutboxJob(models.Model):
    """A background job for the workers, written in the same transaction as the change that needs it.

    After that transaction commits the job is published to the broker (Redis) and stamped `sent_at`.
    If the broker is down the row stays pending and the user's request is not affected; the sweep
    (`spf.outbox.outbox_flush`: beat every minute, each worker as it connects to the broker, `manage.py
    outbox_flush`) publishes it when the broker is back. See docs/operations.md.
    """

    task = models.CharField(max_length=200, help_text="The Celery task's name.")
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="When the broker took it; empty while it waits to be published."
    )
    attempts = models.PositiveIntegerField(default=0, help_text="Tries at publishing it.")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="Why the last try failed (the broker's error).")

    class Meta:
        verbose_name = "outbox job"
        ordering = ["-id"]
        indexes = [
            # The sweep's and the health check's question, "what waits, oldest first?": a small index
            # over the pending rows only, however many sent ones are kept.
            models.Index(fields=["id"], condition=models.Q(sent_at__isnull=True), name="outbox_job_pending"),
            # Sent rows are purged by age.
            models.Index(fields=["sent_at"], name="outbox_job_sent_at"),
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.args}" + ("" if self.sent_at else " (waiting)")

    @property
    def is_pending(self) -> bool:
        return self.sent_at is None


class ExportKind(models.TextChoices):
    HOUSEHOLD_LIST = "household_list", "Households behind a dashboard figure"
    PAYMENT_FILE = "payment_file", "Payment file for a provider"
    RECONCILIATION_REPORT = "reconciliation_report", "Reconciliation row report"
    IMPORT_REPORT = "import_report", "Household import report"
    BENEFICIARY_LIST_REPORT = "beneficiary_list_report", "Beneficiary list report"
    ATTACHMENT = "attachment", "Document attached to a referral or grievance"


class PersonalDataExport(models.Model):
    """A file of personal data that left the system: who took it, when, and what it held (docs/security.md).

    Written by `spf.services.personal_data_export_record` as the file is handed over, in the page and in
    the API alike. Never changed or deleted from the application (the admin shows it read only).
    """

    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField("when", default=timezone.now)
    kind = models.CharField(max_length=32, choices=ExportKind.choices)
    what = models.CharField(max_length=500, help_text="What the file holds, in the words of the page it came from.")
    file_name = models.CharField(max_length=255, blank=True)
    rows = models.PositiveIntegerField(null=True, blank=True, help_text="Rows of people or households, when known.")
    address = models.CharField(max_length=1000, blank=True, help_text="The address asked for, with its filters.")

    class Meta:
        verbose_name = "personal data export"
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["user", "at"]), models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"{self.user} · {self.get_kind_display()} · {self.at:%Y-%m-%d %H:%M}"
