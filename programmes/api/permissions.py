"""Who may use the catalogue's API beyond reading it."""

from rest_framework.permissions import BasePermission

from spf.models import Role


class IsMinistryStaff(BasePermission):
    """Rules are the ministry's: only its staff try drafts against the whole registry."""

    message = "Only ministry staff may preview draft rules."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and (user.is_superuser or user.role == Role.MINISTRY))
