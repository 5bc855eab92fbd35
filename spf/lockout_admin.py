"""Log-in lockouts in the admin: ministry staff see who is locked out and unlock them.

Axes' own admin classes, registered here (AXES_ENABLE_ADMIN is off) so that
ministry staff use them by their role like the rest of the admin, and other
staff need Django's permissions for them, as everywhere.
"""

from axes.admin import AccessAttemptAdmin, AccessFailureLogAdmin, AccessLogAdmin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin, messages

from .admin import MinistryRoleAccess
from .lockout import lockouts_clear


@admin.register(AccessAttempt)
class LockoutAdmin(MinistryRoleAccess, AccessAttemptAdmin):
    """Wrong passwords per user name and address. "Locked Out" in the status column: unlock with the action."""

    ministry_may = ("view", "delete")
    actions = ["unlock", "cleanup_expired_attempts"]
    search_help_text = "A user name or an address."

    @admin.action(description="Unlock the selected accounts (clear their wrong passwords)", permissions=["delete"])
    def unlock(self, request, queryset):
        count = lockouts_clear(acting_user=request.user, attempts=queryset)
        self.message_user(
            request, f"Unlocked {count} user name{'s' if count != 1 else ''}: they can log in now.", messages.SUCCESS
        )


@admin.register(AccessLog)
class LoginLogAdmin(MinistryRoleAccess, AccessLogAdmin):
    """Who logged in (and out), when and from where: read only."""

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AccessFailureLog)
class LoginFailureLogAdmin(MinistryRoleAccess, AccessFailureLogAdmin):
    """Each wrong password, kept only when AXES_ENABLE_ACCESS_FAILURE_LOG is on: read only."""

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
