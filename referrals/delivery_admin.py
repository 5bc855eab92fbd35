"""Deliveries to partner agencies' systems in the Django admin: what was sent,
what failed and why, every attempt, and the staff's "Retry delivery".

Imported by `referrals.admin` (which registers the rest of the app). The rows
are written only by `referrals.delivery`; here they are browse-only, scoped
like the referrals (the payload names a household), and the one change a
person makes, a retry, goes through `delivery_retry`.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from registry.admin import DistrictFilter, DistrictScopedAdmin, ReadOnlyAdminMixin
from spf.admin import MinistryRoleAccess

from .delivery import delivery_retry, user_may_retry_deliveries
from .models import Delivery, DeliveryAttempt, DeliveryStatus
from .selectors import referrals_for


class DeliveryDistrictFilter(DistrictFilter):
    district_field = "referral__district"


class DeliveryAttemptInline(ReadOnlyAdminMixin, MinistryRoleAccess, admin.TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ("at", "status_code", "latency_ms", "error")
    readonly_fields = fields
    ordering = ("-at", "-id")


class DeliveryScopedAdmin(DistrictScopedAdmin):
    """Browse-only, scoped like the referrals (`referrals_for`): districts, and
    an agency's officers see only their agency's deliveries. Ministry staff see
    every delivery by their role (failed ones need them); other staff need
    Django's view permission."""

    # The path from the model to its referral.
    referral_path = "referral"

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if request.user.sees_every_district:
            return queryset
        return queryset.filter(**{f"{self.referral_path}__in": referrals_for(request.user).values("pk")})


@admin.register(Delivery)
class DeliveryAdmin(DeliveryScopedAdmin):
    list_display = (
        "agency",
        "referral_number",
        "event",
        "status_badge",
        "attempts",
        "next_attempt_at",
        "last_error_short",
        "created_at",
        "delivered_at",
    )
    list_filter = ("status", "agency", DeliveryDistrictFilter)
    list_select_related = ("agency", "referral", "event")
    search_fields = ("idempotency_key", "last_error")
    search_help_text = "A referral number as on the slip, or words of the last error."
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    inlines = [DeliveryAttemptInline]
    actions = ["retry_delivery"]
    fields = (
        "agency",
        "referral",
        "event",
        "idempotency_key",
        "status",
        "attempts",
        "next_attempt_at",
        "last_error",
        "created_at",
        "delivered_at",
        "payload",
    )
    readonly_fields = fields

    @admin.display(description="referral", ordering="referral_id")
    def referral_number(self, delivery: Delivery) -> str:
        return delivery.referral.number

    @admin.display(description="status", ordering="status")
    def status_badge(self, delivery: Delivery) -> str:
        # Failed rows need a person: they stand out in the list.
        if delivery.status == DeliveryStatus.FAILED:
            return format_html('<strong class="spf-alert">{}</strong>', delivery.get_status_display())
        return delivery.get_status_display()

    @admin.display(description="last error")
    def last_error_short(self, delivery: Delivery) -> str:
        return delivery.last_error[:80]

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return user_may_retry_deliveries(request.user)

    @admin.action(description="Retry delivery", permissions=["retry"])
    def retry_delivery(self, request: HttpRequest, queryset: QuerySet) -> None:
        retried, refused = 0, []
        for delivery in queryset.order_by("pk"):
            try:
                delivery_retry(delivery_id=delivery.pk, acting_user=request.user)
                retried += 1
            except (ValidationError, PermissionDenied) as problem:
                text = "; ".join(problem.messages) if isinstance(problem, ValidationError) else str(problem)
                refused.append(f"{delivery.referral.number}: {text}")
        if retried:
            self.message_user(request, f"{retried} deliveries queued to be sent again.", messages.SUCCESS)
        if refused:
            self.message_user(request, "Not retried: " + " | ".join(refused), messages.WARNING)


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(DeliveryScopedAdmin):
    referral_path = "delivery__referral"
    list_display = ("delivery", "agency", "at", "status_code", "latency_ms", "error_short")
    list_filter = ("delivery__agency", "status_code")
    list_select_related = ("delivery", "delivery__agency")
    # A delivery's key starts with its referral's number.
    search_fields = ("delivery__idempotency_key", "error")
    search_help_text = "A referral number as on the slip, or words of the error."
    date_hierarchy = "at"
    ordering = ("-at", "-id")

    @admin.display(description="agency", ordering="delivery__agency")
    def agency(self, attempt: DeliveryAttempt) -> str:
        return attempt.delivery.agency.code

    @admin.display(description="error")
    def error_short(self, attempt: DeliveryAttempt) -> str:
        return attempt.error[:80]
