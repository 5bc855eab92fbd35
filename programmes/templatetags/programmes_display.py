"""How the catalogue and eligibility read on a page: outcome words, clause markers, amounts."""

from decimal import Decimal, InvalidOperation

from django import template

from programmes.models import EligibilityOutcome

register = template.Library()

# A clause's status as the explainer stores it, to the mark a person reads.
MARKERS = {
    "true": ("✓", "met"),
    "false": ("✗", "not met"),
    "unknown": ("?", "not known"),
    "known": ("·", "value"),
}


def _status_key(status) -> str:
    if status is True or str(status).lower() in ("true", "met", "yes"):
        return "true"
    if status is False or str(status).lower() in ("false", "not_met", "no"):
        return "false"
    if status == "known":
        return "known"
    return "unknown"


@register.filter
def clause_marker(clause) -> str:
    """✓, ✗ or ? for a stored reason clause."""
    status = clause.get("status") if isinstance(clause, dict) else None
    return MARKERS[_status_key(status)][0]


@register.filter
def clause_state(clause) -> str:
    """`true`, `false` or `unknown`, for a CSS class and the words read aloud."""
    status = clause.get("status") if isinstance(clause, dict) else None
    return _status_key(status)


@register.filter
def clause_words(clause) -> str:
    status = clause.get("status") if isinstance(clause, dict) else None
    return MARKERS[_status_key(status)][1]


@register.filter
def outcome_words(outcome) -> str:
    if not outcome:
        return "not assessed"
    try:
        return EligibilityOutcome(outcome).label
    except ValueError:
        return str(outcome)


@register.filter
def money(amount) -> str:
    """An amount with two decimals and thin thousands separators: 1 200.00."""
    if amount in (None, ""):
        return ""
    try:
        value = Decimal(str(amount)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        return str(amount)
    whole, _, cents = f"{value:,.2f}".partition(".")
    return f"{whole.replace(',', ' ')}.{cents}"
