"""How enrolments and payments look on pages: statuses as badges, the
household page's enrolments-and-payments section, and the "Enrol" offer on an
accepted referral."""

from django import template
from django.urls import reverse

from payments.models import CURRENT_STATUSES, EnrolmentStatus, PaymentChannel, PaymentStatus, RowOutcome
from payments.selectors import enrolment_from_referral, household_payments
from payments.services import may_act_at_window, may_act_for_programme
from programmes.templatetags.programmes_display import money
from referrals.models import ReferralStatus

register = template.Library()

# Colour says where the household stands: on its way (blue), paid or in (green),
# held up (amber), out or failed (red/grey).
ENROLMENT_BADGES = {
    EnrolmentStatus.APPLIED: "",
    EnrolmentStatus.VERIFIED: "",
    EnrolmentStatus.APPROVED: "badge-ok",
    EnrolmentStatus.ACTIVE: "badge-ok",
    EnrolmentStatus.SUSPENDED: "badge-warning",
    EnrolmentStatus.EXITED: "badge-grey",
}
PAYMENT_BADGES = {
    PaymentStatus.PENDING: "",
    PaymentStatus.PAID: "badge-ok",
    PaymentStatus.FAILED: "badge-error",
    PaymentStatus.UNCLAIMED: "badge-warning",
}
CYCLE_BADGES = {
    "created": "badge-grey",
    "generated": "",
    "approved": "badge-ok",
    "exported": "badge-ok",
    "closed": "badge-grey",
}


@register.filter
def enrolment_badge(status: str) -> str:
    return f"badge enrolment-{status} {ENROLMENT_BADGES.get(status, '')}".strip()


@register.filter
def payment_badge(status: str) -> str:
    return f"badge payment-{status} {PAYMENT_BADGES.get(status, '')}".strip()


@register.filter
def cycle_badge(status: str) -> str:
    return f"badge cycle-{status} {CYCLE_BADGES.get(status, '')}".strip()


def payments_word(count: int) -> str:
    return f"{count:,} payment{'s' if count != 1 else ''}"


# A channel in a table cell, where the full label wraps.
CHANNEL_SHORT = {PaymentChannel.BANK: "Bank", PaymentChannel.MOBILE_MONEY: "Mobile money", PaymentChannel.CASH: "Cash"}


@register.filter
def channel_short(channel: str) -> str:
    return CHANNEL_SHORT.get(channel, channel)


@register.filter
def enrolment_status_word(status: str) -> str:
    return EnrolmentStatus(status).label if status in EnrolmentStatus.values else status


@register.filter
def change_lines(changes) -> list[dict]:
    """An event's {field: [old, new]} as lines a person reads."""
    labels = {
        "amount": "Amount",
        "channel": "Paid by",
        "account_number": "Account or wallet",
        "account_name": "Account name",
        "pay_point": "Pay point",
        "suspension_reason": "Suspension reason",
        "review": "Under review",
    }
    lines = []
    for key, pair in (changes or {}).items():
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            continue
        old, new = pair
        lines.append(
            {"field": labels.get(key, key.replace("_", " ").capitalize()), "old": _word(old), "new": _word(new)}
        )
    return lines


def _word(value) -> str:
    if value is None or value == "":
        return "none"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value in PaymentChannel.values:
        return PaymentChannel(value).label
    return str(value)


@register.inclusion_tag("payments/_household_payments.html", takes_context=True)
def household_payments_section(context) -> dict:
    """The household page's enrolments and payments, with "Enrol" for the programmes the user may enrol it in.

    The eligible programmes come from the page's programme panel when it has
    them, so the section asks the database three more questions, not more."""
    request = context.get("request")
    household = context["household"]
    panel = context.get("programme_panel")
    eligible = [(entry.programme, entry.amount) for entry in panel.eligible] if panel is not None else None
    section = household_payments(user=request.user, household=household, eligible=eligible)
    return {
        "request": request,
        "user": request.user,
        "household": household,
        "section": section,
        "can_edit": context.get("can_edit", False),
    }


@register.simple_tag(takes_context=True)
def enrol_from_referral(context, referral) -> dict | None:
    """On an accepted referral: the enrolment it led to, or the address to enrol from it if the user may."""
    if referral.status not in (ReferralStatus.ACCEPTED, ReferralStatus.COMPLETED):
        return None
    enrolment = enrolment_from_referral(referral=referral)
    if enrolment is not None:
        return {"enrolment": enrolment, "current": enrolment.status in CURRENT_STATUSES}
    user = context["request"].user
    if referral.status != ReferralStatus.ACCEPTED or not (
        may_act_at_window(user, referral.district_id)
        or may_act_for_programme(user, referral.programme, referral.district_id)
    ):
        return None
    url = reverse("payments:enrol", args=[referral.household_id]) + f"?referral={referral.number}"
    return {"url": url}


@register.filter
def cycle_event_words(event) -> str:
    """A step of a payment cycle in a sentence, from its action and what it recorded."""
    detail = event.detail or {}
    currency = event.cycle.currency if event.cycle_id else ""
    action = event.action
    if action == "created":
        return f"Cycle created for {detail.get('period', event.cycle.label)}"
    if action in ("generated", "regenerated"):
        words = f"Payroll {'generated' if action == 'generated' else 'generated again'}: {payments_word(detail.get('payment_count', 0))}"
        if detail.get("total_amount"):
            words += f", {currency} {money(detail['total_amount'])}"
        extras = []
        if detail.get("created") and action == "regenerated":
            extras.append(f"{detail['created']} new")
        if detail.get("amounts_changed"):
            extras.append(f"{detail['amounts_changed']} amounts recalculated")
        if detail.get("without_amount"):
            extras.append(f"{detail['without_amount']} left out for missing information")
        return words + (f" ({', '.join(extras)})" if extras else "")
    if action == "generation_queued":
        return "Payroll generation asked for: a worker generates it"
    if action == "generation_refused":
        return f"Payroll generation refused: {detail.get('reason', '')}"
    if action == "reissued":
        return (
            f"{detail.get('count', 0)} failed or unclaimed payment{'s' if detail.get('count', 0) != 1 else ''} reissued"
        )
    if action == "approved":
        return f"Payroll approved: {payments_word(detail.get('payment_count', 0))}, {currency} {money(detail.get('total_amount'))}"
    if action == "exported":
        channel = detail.get("channel", "")
        label = PaymentChannel(channel).label.lower() if channel in PaymentChannel.values else channel
        return f"Payment file for {label} downloaded: {payments_word(detail.get('rows', 0))}, {currency} {money(detail.get('total'))}"
    if action == "reconciled":
        words = f"Reconciliation file {detail.get('file_name', '')}: {detail.get('rows', 0)} rows"
        counts = [f"{detail[key]} {label.lower()}" for key, label in RowOutcome.choices if detail.get(key)]
        return words + (f" ({', '.join(counts)})" if counts else "")
    if action == "closed":
        return (
            f"Cycle closed, nothing pending: {detail.get('paid', 0)} paid ({currency} {money(detail.get('paid_total'))}), "
            f"{detail.get('failed', 0)} failed, {detail.get('unclaimed', 0)} unclaimed"
        )
    words = action.replace("_", " ").capitalize()
    if detail.get("file_name"):
        words += f": {detail['file_name']}"
    return words


@register.filter
def reconciliation_summary(reconciliation) -> list[tuple[str, str]]:
    """What a reconciliation file did beyond the four row counts, as (label, value) pairs:
    the payments it marked paid (and how much), failed or unclaimed, and why rows were rejected."""
    summary = reconciliation.summary or {}
    applied = summary.get("applied") or {}
    currency = summary.get("currency") or reconciliation.cycle.currency
    pairs = []
    if applied.get("paid"):
        pairs.append(("Marked paid", f"{applied['paid']} · {currency} {money(applied.get('paid_total'))}"))
    if applied.get("failed"):
        pairs.append(("Marked failed", str(applied["failed"])))
    if applied.get("unclaimed"):
        pairs.append(("Marked unclaimed", str(applied["unclaimed"])))
    outcomes = summary.get("outcomes") or {}
    for outcome, label in RowOutcome.choices:
        if outcome not in (RowOutcome.APPLIED, RowOutcome.UNCHANGED) and outcomes.get(outcome):
            pairs.append((label, str(outcomes[outcome])))
    return pairs
