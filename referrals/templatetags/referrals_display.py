"""How referrals look on pages: a status as a badge, the open referral beside a
programme on the household's panel, the unread notices in the navigation."""

from django import template

from referrals.models import ReferralStatus
from referrals.selectors import HouseholdReferrals, unread_notification_count

register = template.Library()

# Colour says where the household stands: waiting (blue), served (green),
# turned away (red), nothing happening (grey).
STATUS_BADGES = {
    "draft": "badge-grey",
    "sent": "",
    "received": "",
    "accepted": "badge-ok",
    "completed": "badge-ok",
    "rejected": "badge-error",
    "expired": "badge-grey",
    "cancelled": "badge-grey",
}


@register.filter
def status_badge(status: str) -> str:
    return f"badge status-{status} {STATUS_BADGES.get(status, '')}".strip()


@register.filter
def status_word(status: str) -> str:
    """A status as the timeline says it: short; a draft is a draft there, whoever suggested it."""
    if status == ReferralStatus.DRAFT:
        return "Draft"
    return ReferralStatus(status).label if status in ReferralStatus.values else status


@register.simple_tag
def open_referral_for(household_referrals: HouseholdReferrals | None, programme_id: int):
    """The household's open referral to this programme, or None (also where no referrals were given)."""
    if not household_referrals:
        return None
    return household_referrals.open_by_programme.get(programme_id)


@register.simple_tag(takes_context=True)
def unread_notifications(context) -> int:
    """How many notifications the signed-in user has not read; counted once per page."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    cached = getattr(request, "_unread_notifications", None)
    if cached is None:
        cached = request._unread_notifications = unread_notification_count(user=user)
    return cached
