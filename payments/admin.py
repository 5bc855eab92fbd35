"""Enrolments, payment cycles, payments and reconciliations in the Django admin.

Browse-only, except through actions: every change to an enrolment is a move of
the state machine (`payments.services.enrolment_transition`) and every step of
a payroll a call of `payments.payroll`, which check who may act, enforce
maker-checker and record who did it; an admin form would bypass all of that.
So the rows are read here and the actions call those services, one row at a
time, reporting what each refused.

Scoped like the API (`payments.api.selectors`): districts for the window, the
agency for its officers, everything for the ministry; a row outside the user's
scope is a 404, not a page admitting it exists. Ministry staff see these
models by their role; other staff need Django's view permission.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from registry.admin import FRONT_DESK_HOUSEHOLD_PATH, DistrictFilter, DistrictScopedAdmin, ReadOnlyAdminMixin, nowrap
from spf.admin import MinistryRoleAccess
from spf.models import Role

from .api.selectors import (
    cycle_district_ids_for,
    enrolments_for,
    payment_cycles_for,
    payments_for,
    reconciliation_rows_for,
    reconciliations_for,
)
from .models import (
    CycleEvent,
    Enrolment,
    EnrolmentEvent,
    EnrolmentStatus,
    Payment,
    PaymentCycle,
    PaymentEvent,
    Reconciliation,
    ReconciliationRow,
    enrolment_number,
)
from .payroll import cycle_totals_by_district, payroll_approve, payroll_generate_queue
from .services import enrolment_transition

# An enrolment's or a payment's inline history shows the latest events; the full
# history is in the event list, filtered to it.
EVENTS_INLINE_LIMIT = 50


def _sees_everything(user) -> bool:
    return user.is_superuser or user.role == Role.MINISTRY


def _problem_text(problem: Exception) -> str:
    """A service's refusal in one line, with the field it names."""
    if isinstance(problem, ValidationError) and hasattr(problem, "error_dict"):
        return "; ".join(f"{field}: {' '.join(messages_)}" for field, messages_ in problem.message_dict.items())
    if isinstance(problem, ValidationError):
        return " ".join(problem.messages)
    return str(problem) or "You may not do this."


def _money(amount, currency: str) -> str:
    # A no-break space: a list column never splits the currency from its amount.
    return "—" if amount is None else f"{currency}\u00a0{amount:,.2f}"


def _number_id(term: str, prefix: str) -> int | None:
    """The id in a typed enrolment number ('E00000042', 'e42', '42'), or None."""
    text = term.strip().upper().removeprefix(prefix)
    return int(text) if text.isdigit() and 0 < len(text) <= 12 else None


# --- scoping -----------------------------------------------------------------------------------


class PaymentsScopedAdmin(DistrictScopedAdmin):
    """Browse-only, scoped by a selector of `payments.api.selectors`."""

    # The selector deciding what the user sees, and the path from this model to its rows.
    scope = staticmethod(enrolments_for)
    scope_path = ""

    def get_queryset(self, request):
        # Scope comes from the selector (districts and agency), not from the
        # registry's district-only scoping that DistrictScopedAdmin applies.
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if _sees_everything(request.user):
            return queryset
        lookup = f"{self.scope_path}__in" if self.scope_path else "pk__in"
        return queryset.filter(**{lookup: self.scope(request.user).values("pk")})


class LatestEventsInline(ReadOnlyAdminMixin, MinistryRoleAccess, admin.TabularInline):
    """The latest events of the object on the page (an inline's queryset cannot be sliced)."""

    extra = 0
    can_delete = False
    show_change_link = False
    ordering = ["at", "id"]
    parent_field = ""

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("actor")
        object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if object_id and str(object_id).isdigit():
            latest = list(
                self.model.objects.filter(**{self.parent_field: int(object_id)})
                .order_by("-at", "-id")
                .values_list("pk", flat=True)[:EVENTS_INLINE_LIMIT]
            )
            queryset = queryset.filter(pk__in=latest)
        return queryset


class ScopedChoiceFilter(admin.SimpleListFilter):
    """A filter by a related row, offering only the rows the user may see (the latest first)."""

    # How many to offer: a filter is for the recent ones; older ones are a search away.
    LIMIT = 50
    field = ""

    def options(self, user) -> QuerySet:
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return [(str(row.pk), str(row)) for row in self.options(request.user)[: self.LIMIT]]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(**{self.field: int(value)})


class CycleFilter(ScopedChoiceFilter):
    title = "payment cycle"
    parameter_name = "cycle__id__exact"
    field = "cycle_id"

    def options(self, user) -> QuerySet:
        return payment_cycles_for(user).select_related("programme").order_by("-period_start", "programme__code")


class ReconciliationFilter(ScopedChoiceFilter):
    title = "reconciliation file"
    parameter_name = "reconciliation__id__exact"
    field = "reconciliation_id"

    def options(self, user) -> QuerySet:
        return reconciliations_for(user).select_related("cycle__programme").order_by("-uploaded_at", "-id")


class ReviewFilter(admin.SimpleListFilter):
    title = "under review"
    parameter_name = "under_review"

    def lookups(self, request, model_admin):
        return [("yes", "Waiting for a review decision"), ("no", "Not under review")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(review_since__isnull=False)
        if self.value() == "no":
            return queryset.filter(review_since__isnull=True)
        return queryset


class DisputedFilter(admin.SimpleListFilter):
    title = "disputed by the household"
    parameter_name = "disputed"

    def lookups(self, request, model_admin):
        return [("yes", "Disputed: marked paid, never arrived"), ("no", "Not disputed")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(disputed_at__isnull=False)
        if self.value() == "no":
            return queryset.filter(disputed_at__isnull=True)
        return queryset


# --- enrolments --------------------------------------------------------------------------------


def _changes_text(changes: dict) -> str:
    """{"amount": [old, new]} as "amount: old → new"."""
    parts = []
    for field, pair in (changes or {}).items():
        old, new = pair if isinstance(pair, list) and len(pair) == 2 else (None, pair)
        parts.append(
            f"{field.replace('_', ' ')}: {'—' if old in (None, '') else old} → {'—' if new in (None, '') else new}"
        )
    return "; ".join(parts) or "—"


class EnrolmentEventInline(LatestEventsInline):
    model = EnrolmentEvent
    parent_field = "enrolment_id"
    fields = ["at", "kind", "from_status", "to_status", "actor", "reason", "what_changed", "cycle"]
    readonly_fields = fields
    verbose_name_plural = f"history (latest {EVENTS_INLINE_LIMIT}; the full list is under enrolment events)"

    @admin.display(description="what changed")
    def what_changed(self, event: EnrolmentEvent) -> str:
        return _changes_text(event.changes)


def _transition_selected(modeladmin, request, queryset: QuerySet, to_status: str) -> None:
    """Each selected enrolment through the state machine, as the person at the screen; what it refuses is shown."""
    moved, refused = 0, []
    for enrolment in queryset.select_related("programme__agency").order_by("pk"):
        try:
            enrolment_transition(enrolment=enrolment, to_status=to_status, acting_user=request.user)
        except (ValidationError, PermissionDenied) as problem:
            refused.append(f"{enrolment.number}: {_problem_text(problem)}")
        else:
            moved += 1
    label = EnrolmentStatus(to_status).label.lower()
    if moved:
        modeladmin.message_user(request, f"{moved} enrolment(s) {label}.", messages.SUCCESS)
    for line in refused:
        modeladmin.message_user(request, f"Not {label}: {line}", messages.ERROR)


@admin.register(Enrolment)
class EnrolmentAdmin(PaymentsScopedAdmin):
    scope = staticmethod(enrolments_for)
    list_display = [
        "number",
        "household_number",
        "programme_code",
        "district_name",
        "status",
        "amount_text",
        "channel",
        "under_review",
        "applied_at",
    ]
    list_filter = [DistrictFilter, "status", ReviewFilter, "programme", "source", "channel"]
    list_select_related = ["household", "programme", "district"]
    search_fields = ["household__number", "external_reference"]
    search_help_text = (
        "An enrolment number (E and eight digits; the E and the leading zeros may be left out), "
        "a household number (or its start), or the programme's own number."
    )
    date_hierarchy = "applied_at"
    ordering = ["-created_at", "-id"]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "number",
                    "status",
                    "household",
                    "front_desk",
                    "member",
                    "programme",
                    "district",
                    "source",
                    "referral",
                    "external_reference",
                )
            },
        ),
        (
            "Benefit and payment details",
            {
                "fields": (
                    "amount_text",
                    "amount_rule_version",
                    "channel",
                    "account_number",
                    "account_name",
                    "pay_point",
                )
            },
        ),
        (
            "Steps (maker-checker: the approver is neither who applied nor who verified)",
            {
                "fields": (
                    ("applied_at", "applied_by"),
                    ("verified_at", "verified_by"),
                    ("approved_at", "approved_by"),
                    "activated_at",
                    ("suspended_at", "suspension_reason"),
                    ("exited_at", "exit_reason", "exit_note"),
                    ("review_since", "review_reason"),
                    ("created_at", "updated_at"),
                )
            },
        ),
    )
    readonly_fields = [
        "number",
        "status",
        "household",
        "front_desk",
        "member",
        "programme",
        "district",
        "source",
        "referral",
        "external_reference",
        "amount_text",
        "amount_rule_version",
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
        "review_since",
        "review_reason",
        "created_at",
        "updated_at",
    ]
    inlines = [EnrolmentEventInline]
    actions = ["verify_selected", "approve_selected", "activate_selected"]
    show_full_result_count = False

    @admin.display(description="number", ordering="pk")
    def number(self, enrolment: Enrolment) -> str:
        return enrolment.number

    @admin.display(description="household", ordering="household__number")
    def household_number(self, enrolment: Enrolment) -> str:
        return nowrap(enrolment.household.number)

    @admin.display(description="programme", ordering="programme__code")
    def programme_code(self, enrolment: Enrolment) -> str:
        return enrolment.programme.code

    @admin.display(description="district", ordering="district__name")
    def district_name(self, enrolment: Enrolment) -> str:
        return enrolment.district.name

    @admin.display(description="amount", ordering="amount")
    def amount_text(self, enrolment: Enrolment) -> str:
        return _money(enrolment.amount, enrolment.currency)

    @admin.display(description="under review", boolean=True)
    def under_review(self, enrolment: Enrolment) -> bool:
        return enrolment.review_since is not None

    @admin.display(description="front desk")
    def front_desk(self, enrolment: Enrolment) -> str:
        return format_html(
            '<a href="{}">Open the household at the front desk</a>',
            FRONT_DESK_HOUSEHOLD_PATH.format(pk=enrolment.household_id),
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        q = Q(household__number__startswith=term) | Q(external_reference=search_term.strip())
        enrolment_id = _number_id(term, "E")
        if enrolment_id is not None:
            q |= Q(pk=enrolment_id)
        return queryset.filter(q), False

    def has_transition_permission(self, request) -> bool:
        # Who may make which move, on which enrolment, is the service's to say;
        # the committee reads and never moves anything.
        user = request.user
        return user.is_superuser or user.role in (Role.MINISTRY, Role.PROGRAMME_OFFICER, Role.FRONT_DESK)

    @admin.action(description="Verify the selected enrolments", permissions=["transition"])
    def verify_selected(self, request, queryset):
        _transition_selected(self, request, queryset, EnrolmentStatus.VERIFIED)

    @admin.action(
        description="Approve the selected enrolments (maker-checker: not those you applied for or verified)",
        permissions=["transition"],
    )
    def approve_selected(self, request, queryset):
        _transition_selected(self, request, queryset, EnrolmentStatus.APPROVED)

    @admin.action(description="Activate the selected enrolments", permissions=["transition"])
    def activate_selected(self, request, queryset):
        _transition_selected(self, request, queryset, EnrolmentStatus.ACTIVE)


@admin.register(EnrolmentEvent)
class EnrolmentEventAdmin(PaymentsScopedAdmin):
    scope = staticmethod(enrolments_for)
    scope_path = "enrolment"
    list_display = ["at", "enrolment_number", "kind", "from_status", "to_status", "actor", "reason", "what_changed"]
    list_filter = ["kind", "to_status"]
    list_select_related = ["actor"]
    search_fields = ["enrolment__household__number"]
    search_help_text = "An enrolment number or a household number."
    date_hierarchy = "at"
    ordering = ["-at", "-id"]
    fields = [
        "enrolment",
        "at",
        "kind",
        "from_status",
        "to_status",
        "actor",
        "reason",
        "changes",
        "cycle",
        "idempotency_key",
    ]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="enrolment", ordering="enrolment_id")
    def enrolment_number(self, event: EnrolmentEvent) -> str:
        return enrolment_number(event.enrolment_id)

    @admin.display(description="what changed")
    def what_changed(self, event: EnrolmentEvent) -> str:
        return _changes_text(event.changes)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        q = Q(enrolment__household__number__startswith=term)
        enrolment_id = _number_id(term, "E")
        if enrolment_id is not None:
            q |= Q(enrolment_id=enrolment_id)
        return queryset.filter(q), False


# --- payment cycles --------------------------------------------------------------------------


def _detail_text(detail: dict) -> str:
    return "; ".join(f"{key.replace('_', ' ')}: {value}" for key, value in (detail or {}).items()) or "—"


class CycleEventInline(LatestEventsInline):
    model = CycleEvent
    parent_field = "cycle_id"
    fields = ["at", "action", "actor", "what_it_came_to"]
    readonly_fields = fields
    verbose_name_plural = "steps (who created, generated, approved, exported and reconciled it)"

    @admin.display(description="what it came to")
    def what_it_came_to(self, event: CycleEvent) -> str:
        return _detail_text(event.detail)


class ReconciliationInline(ReadOnlyAdminMixin, MinistryRoleAccess, admin.TabularInline):
    model = Reconciliation
    extra = 0
    can_delete = False
    fields = [
        "file_link",
        "uploaded_by",
        "uploaded_at",
        "rows_total",
        "rows_applied",
        "rows_unchanged",
        "rows_rejected",
    ]
    readonly_fields = fields
    ordering = ["-uploaded_at", "-id"]
    verbose_name_plural = "reconciliation files from the provider"

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("uploaded_by")
        if _sees_everything(request.user):
            return queryset
        return queryset.filter(pk__in=reconciliations_for(request.user).values("pk"))

    @admin.display(description="file")
    def file_link(self, reconciliation: Reconciliation) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:payments_reconciliation_change", args=[reconciliation.pk]),
            reconciliation.file_name,
        )


def _payroll_step_selected(modeladmin, request, queryset: QuerySet, step, done_words: str) -> None:
    done, refused = [], []
    for cycle in queryset.select_related("programme__agency").order_by("pk"):
        try:
            step(acting_user=request.user, cycle=cycle)
        except (ValidationError, PermissionDenied) as problem:
            refused.append(f"{cycle}: {_problem_text(problem)}")
        else:
            done.append(str(cycle))
    if done:
        modeladmin.message_user(request, f"{done_words}: {', '.join(done)}.", messages.SUCCESS)
    for line in refused:
        modeladmin.message_user(request, f"Refused: {line}", messages.ERROR)


@admin.register(PaymentCycle)
class PaymentCycleAdmin(PaymentsScopedAdmin):
    scope = staticmethod(payment_cycles_for)
    list_display = [
        "__str__",
        "programme",
        "period_start",
        "status",
        "payment_count",
        "total_text",
        "generated_by",
        "approved_by",
        "exported_at",
    ]
    list_filter = ["status", "programme", "programme__agency"]
    list_select_related = ["programme", "generated_by", "approved_by"]
    search_fields = ["programme__code", "programme__name"]
    search_help_text = "A programme's code or name."
    date_hierarchy = "period_start"
    ordering = ["-period_start", "programme__code"]
    readonly_fields = [
        "programme",
        "period_start",
        "period_end",
        "status",
        "currency",
        "payment_count",
        "total_text",
        "totals_by_district",
        "payments_link",
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
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "programme",
                    ("period_start", "period_end"),
                    ("status", "currency"),
                    ("payment_count", "total_text"),
                    "totals_by_district",
                    "payments_link",
                )
            },
        ),
        (
            "Steps (maker-checker: the approver is not who generated it)",
            {
                "fields": (
                    ("created_at", "created_by"),
                    ("generated_at", "generated_by"),
                    ("approved_at", "approved_by"),
                    ("exported_at", "exported_by"),
                    "closed_at",
                )
            },
        ),
    )
    inlines = [CycleEventInline, ReconciliationInline]
    actions = ["generate_selected", "approve_selected"]

    @admin.display(description="total", ordering="total_amount")
    def total_text(self, cycle: PaymentCycle) -> str:
        return _money(cycle.total_amount, cycle.currency)

    @admin.display(description="totals by district")
    def totals_by_district(self, cycle: PaymentCycle) -> str:
        # A display method gets no request: `get_object` notes whose districts to show
        # (None: every district). Without that note, none.
        districts = getattr(cycle, "visible_district_ids", [])
        rows = [
            row for row in cycle_totals_by_district(cycle=cycle) if districts is None or row["district_id"] in districts
        ]
        if not rows:
            return "—"
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    row["district"],
                    row["count"],
                    _money(row["total"], cycle.currency),
                    row["paid"],
                    row["pending"],
                    row["failed"],
                    row["unclaimed"],
                )
                for row in rows
            ),
        )
        return format_html(
            "<table><thead><tr><th>district</th><th>payments</th><th>total</th><th>paid</th><th>pending</th>"
            "<th>failed</th><th>unclaimed</th></tr></thead><tbody>{}</tbody></table>",
            body,
        )

    @admin.display(description="payments")
    def payments_link(self, cycle: PaymentCycle) -> str:
        return format_html(
            '<a href="{}?cycle__id__exact={}">The payments of this cycle</a>',
            reverse("admin:payments_payment_changelist"),
            cycle.pk,
        )

    def get_object(self, request, object_id, from_field=None):
        cycle = super().get_object(request, object_id, from_field)
        cycle.visible_district_ids = cycle_district_ids_for(request.user)
        return cycle

    def has_payroll_permission(self, request) -> bool:
        # Which cycle a person may generate or approve is the service's to say
        # (the programme's agency, maker-checker); other roles never run a payroll.
        user = request.user
        return user.is_superuser or user.role in (Role.MINISTRY, Role.PROGRAMME_OFFICER)

    @admin.action(description="Generate (or top up) the payroll of the selected cycles", permissions=["payroll"])
    def generate_selected(self, request, queryset):
        # Many cycles take longer than a request may: a worker generates each (its history says when).
        queued = "Payroll generation queued (each cycle's history says when it is done)"
        _payroll_step_selected(self, request, queryset, payroll_generate_queue, queued)

    @admin.action(
        description="Approve the payroll of the selected cycles (maker-checker: not those you generated)",
        permissions=["payroll"],
    )
    def approve_selected(self, request, queryset):
        _payroll_step_selected(self, request, queryset, payroll_approve, "Payroll approved")


@admin.register(CycleEvent)
class CycleEventAdmin(PaymentsScopedAdmin):
    scope = staticmethod(payment_cycles_for)
    scope_path = "cycle"
    list_display = ["at", "cycle", "action", "actor", "what_it_came_to"]
    list_filter = ["action", "cycle__programme"]
    list_select_related = ["cycle__programme", "actor"]
    search_fields = ["cycle__programme__code", "actor__username"]
    search_help_text = "A programme's code, or who acted (a user name)."
    date_hierarchy = "at"
    ordering = ["-at", "-id"]
    fields = ["cycle", "at", "action", "actor", "detail"]
    readonly_fields = fields

    @admin.display(description="what it came to")
    def what_it_came_to(self, event: CycleEvent) -> str:
        return _detail_text(event.detail)


# --- payments ----------------------------------------------------------------------------------


class PaymentEventInline(LatestEventsInline):
    model = PaymentEvent
    parent_field = "payment_id"
    fields = ["at", "from_status", "to_status", "actor", "reconciliation", "reason"]
    readonly_fields = fields
    verbose_name_plural = "history"


@admin.register(Payment)
class PaymentAdmin(PaymentsScopedAdmin):
    scope = staticmethod(payments_for)
    # The reference starts with the programme's code, and the channel is a filter:
    # no columns of their own, so the list fits a laptop's screen.
    list_display = [
        "reference",
        "household_number",
        "cycle_label",
        "district_name",
        "amount_text",
        "status",
        "paid_at",
        "is_reissue",
    ]
    list_filter = [DistrictFilter, "status", DisputedFilter, "channel", "programme", CycleFilter]
    list_select_related = ["household", "cycle", "district"]
    search_fields = ["reference"]
    search_help_text = "A payment's reference (or its start), a household number, or the provider's transaction id."
    date_hierarchy = "created_at"
    ordering = ["-created_at", "reference"]
    fields = [
        "reference",
        "status",
        "cycle",
        "programme",
        "enrolment",
        "household",
        "district",
        "amount_text",
        "amount_note",
        "channel",
        "account_number",
        "account_name",
        "pay_point",
        "reissue_of",
        "paid_amount",
        "paid_at",
        "provider_transaction_id",
        "status_note",
        "reconciled_at",
        "disputed_at",
        "dispute_note",
        "created_at",
    ]
    readonly_fields = fields
    inlines = [PaymentEventInline]
    show_full_result_count = False

    @admin.display(description="household", ordering="household__number")
    def household_number(self, payment: Payment) -> str:
        return nowrap(payment.household.number)

    @admin.display(description="cycle", ordering="cycle__period_start")
    def cycle_label(self, payment: Payment) -> str:
        return payment.cycle.label

    @admin.display(description="district", ordering="district__name")
    def district_name(self, payment: Payment) -> str:
        return payment.district.name

    @admin.display(description="amount", ordering="amount")
    def amount_text(self, payment: Payment) -> str:
        return _money(payment.amount, payment.currency)

    @admin.display(description="reissue", boolean=True)
    def is_reissue(self, payment: Payment) -> bool:
        return payment.reissue_of_id is not None

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        q = (
            Q(reference__startswith=term.upper())
            | Q(household__number__startswith=term.upper())
            | Q(provider_transaction_id=term)
        )
        return queryset.filter(q), False


@admin.register(PaymentEvent)
class PaymentEventAdmin(PaymentsScopedAdmin):
    scope = staticmethod(payments_for)
    scope_path = "payment"
    list_display = ["at", "payment", "from_status", "to_status", "actor", "reconciliation", "reason"]
    list_filter = ["to_status"]
    list_select_related = ["payment", "actor", "reconciliation"]
    search_fields = ["payment__reference"]
    date_hierarchy = "at"
    ordering = ["-at", "-id"]
    fields = ["payment", "at", "from_status", "to_status", "actor", "reconciliation", "reason"]
    readonly_fields = fields
    show_full_result_count = False

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        return queryset.filter(payment__reference__startswith=term), False


# --- reconciliations -------------------------------------------------------------------------------


@admin.register(Reconciliation)
class ReconciliationAdmin(PaymentsScopedAdmin):
    scope = staticmethod(reconciliations_for)
    list_display = [
        "file_name",
        "cycle",
        "uploaded_by",
        "uploaded_at",
        "rows_total",
        "rows_applied",
        "rows_unchanged",
        "rows_rejected",
    ]
    list_filter = ["cycle__programme"]
    list_select_related = ["cycle__programme", "uploaded_by"]
    search_fields = ["file_name", "file_sha256"]
    date_hierarchy = "uploaded_at"
    ordering = ["-uploaded_at", "-id"]
    fields = [
        "cycle",
        "file_name",
        "file_sha256",
        "uploaded_by",
        "uploaded_at",
        "rows_total",
        "rows_applied",
        "rows_unchanged",
        "rows_rejected",
        "summary_text",
        "rows_link",
    ]
    readonly_fields = fields

    @admin.display(description="summary")
    def summary_text(self, reconciliation: Reconciliation) -> str:
        """The summary's sections, one line each: "outcomes: applied 5, unknown reference 1"."""
        lines = []
        for section, values in (reconciliation.summary or {}).items():
            if isinstance(values, dict):
                text = ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in values.items())
            else:
                text = str(values)
            lines.append((section.replace("_", " "), text))
        return format_html_join("", "<div><strong>{}</strong>: {}</div>", lines) or "—"

    @admin.display(description="rows")
    def rows_link(self, reconciliation: Reconciliation) -> str:
        return format_html(
            '<a href="{}?reconciliation__id__exact={}">Every row and its outcome</a> · '
            '<a href="/api/v1/payment-cycles/{}/reconciliations/{}/report/">download the report (CSV)</a>',
            reverse("admin:payments_reconciliationrow_changelist"),
            reconciliation.pk,
            reconciliation.cycle_id,
            reconciliation.pk,
        )


@admin.register(ReconciliationRow)
class ReconciliationRowAdmin(PaymentsScopedAdmin):
    scope = staticmethod(reconciliation_rows_for)
    # Which file is the filter's job (one file at a time is how rows are read): no column for it.
    list_display = ["line", "reference_text", "reported_status", "reported_amount", "outcome", "message"]
    list_filter = ["outcome", ReconciliationFilter]
    list_select_related = ["reconciliation"]
    search_fields = ["reference"]
    search_help_text = "The reference the provider quoted (or its start)."
    ordering = ["reconciliation", "line"]
    fields = [
        "reconciliation",
        "line",
        "reference",
        "reported_status",
        "reported_amount",
        "reported_at",
        "provider_transaction_id",
        "payment",
        "outcome",
        "message",
    ]
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description="reference", ordering="reference")
    def reference_text(self, row: ReconciliationRow) -> str:
        return nowrap(row.reference)

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip().upper()
        if not term:
            return queryset, False
        return queryset.filter(reference__startswith=term), False


# The beneficiary lists' admin is written beside this one.
from . import beneficiary_admin  # noqa: E402,F401
