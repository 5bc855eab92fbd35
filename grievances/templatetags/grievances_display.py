"""How grievances look on pages: a status as a badge, who raised one, the
household page's grievances section and the cycle page's disputed payments."""

from django import template
from django.utils import timezone

from grievances.models import GrievanceStatus
from grievances.selectors import grievances_for, household_grievances
from payments.api.selectors import payments_for
from programmes.models import EligibilityOutcome

register = template.Library()

# Colour says where the person stands: waiting on us (blue), pushed up (amber),
# answered (green), done (grey).
STATUS_BADGES = {
    GrievanceStatus.RECEIVED: "",
    GrievanceStatus.ACKNOWLEDGED: "",
    GrievanceStatus.ASSIGNED: "",
    GrievanceStatus.INVESTIGATED: "",
    GrievanceStatus.ESCALATED: "badge-warning",
    GrievanceStatus.RESOLVED: "badge-ok",
    GrievanceStatus.CLOSED: "badge-grey",
}

# Disputed payments listed on a cycle's page: the provider's queries come in a handful, not thousands.
CYCLE_DISPUTES_SHOWN = 100


@register.filter
def grievance_badge(status: str) -> str:
    return f"badge grievance-{status} {STATUS_BADGES.get(status, '')}".strip()


@register.filter
def grievance_status_word(status: str) -> str:
    return GrievanceStatus(status).label if status in GrievanceStatus.values else status


@register.filter
def outcome_word(outcome: str) -> str:
    """An eligibility outcome as stored on an appeal (a plain value, the result itself changes later)."""
    return EligibilityOutcome(outcome).label if outcome in EligibilityOutcome.values else (outcome or "—")


@register.filter
def raised_by(grievance) -> str:
    """Who raised it, as the pages say it (the complainant must be loaded with the grievance)."""
    if grievance.anonymous:
        return "Anonymous"
    if grievance.complainant_id:
        return grievance.complainant.full_name
    return grievance.complainant_name or "—"


@register.filter
def may_record_grievances(user) -> bool:
    from grievances.views import may_record

    return may_record(user)


@register.inclusion_tag("grievances/_household_grievances.html", takes_context=True)
def household_grievances_section(context) -> dict:
    """The household page's grievances, scoped (a sensitive one only for designated officers), and
    appeal links beside the programmes it was found not eligible for."""
    request = context.get("request")
    household = context["household"]
    user = request.user
    grievances = list(
        household_grievances(user=user, household_id=household.pk).select_related("complainant", "payment")
    )
    panel = context.get("programme_panel")
    may_record = may_record_grievances(user)
    open_appeals = {g.programme_id for g in grievances if g.is_open and g.category == "eligibility"}
    appealable = (
        [entry.programme for entry in panel.not_eligible if entry.programme.pk not in open_appeals]
        if panel is not None and may_record
        else []
    )
    return {
        "request": request,
        "user": user,
        "household": household,
        "grievances": grievances,
        "appealable": appealable,
        "may_record": may_record,
        "today": timezone.localdate(),
    }


@register.inclusion_tag("grievances/_cycle_disputes.html", takes_context=True)
def cycle_disputes_section(context) -> dict:
    """Payments of the cycle marked paid that households say never arrived: to take up with the provider.

    Scoped as the cycle's payments (the user's districts, or the agency's), with the grievances behind
    each that the user may see."""
    request = context.get("request")
    cycle = context["cycle"]
    disputed = list(
        payments_for(request.user)
        .filter(cycle=cycle, disputed_at__isnull=False)
        .select_related("household", "district")
        .order_by("disputed_at", "id")[: CYCLE_DISPUTES_SHOWN + 1]
    )
    by_payment: dict[int, list] = {}
    if disputed:
        for grievance in grievances_for(request.user).filter(payment__in=[p.pk for p in disputed]).order_by("pk"):
            by_payment.setdefault(grievance.payment_id, []).append(grievance)
    rows = [{"payment": p, "grievances": by_payment.get(p.pk, [])} for p in disputed[:CYCLE_DISPUTES_SHOWN]]
    return {"cycle": cycle, "rows": rows, "more": len(disputed) > CYCLE_DISPUTES_SHOWN}
