"""What makes a submission sent twice do its work once: a form's one-time token, an API request's
Idempotency-Key. Both are unique in the database, so two copies arriving at the same moment
take turns on the index and the second finds what the first did."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class FormSubmission(models.Model):
    """A form sent: its one-time token (a hidden field), who sent it, and what it created.

    Written in the same transaction as what it created: a submission that failed leaves no row,
    so the person may correct the form and send it again with the same token."""

    token = models.UUIDField(unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    action = models.CharField(max_length=64, help_text="What the form does, e.g. household_register.")
    object_id = models.BigIntegerField(null=True, blank=True, help_text="The id of what it created.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.action} {self.token}"


class IdempotencyKey(models.Model):
    """An API write sent with an `Idempotency-Key` header, and the answer it got.

    One per user and key. The answer is kept only when the request succeeded (2xx); a request
    refused changed nothing and its key may be used again. Purged after a day."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=10)
    path = models.TextField()
    request_fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the method, address and body.")
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    response_body = models.BinaryField(default=b"", blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")]

    def __str__(self) -> str:
        return f"{self.key} ({self.method} {self.path})"
