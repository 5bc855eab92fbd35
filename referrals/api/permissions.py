"""Who may use the referral API beyond reading; which referrals they see is the scoped queryset's job."""

from rest_framework.permissions import BasePermission


class CanReferOrReadOnly(BasePermission):
    """Every signed-in user reads (within their scope); only the window makes referrals.

    Moving a referral is open to anyone who can see it: the state machine in
    `referral_transition` decides whether this person or agency may make this
    move, and says why not.
    """

    message = "Only the window (front-desk officers and ministry staff) can make referrals."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if getattr(view, "action", None) == "create":
            return user.can_edit_registry
        return True
