"""Who may do what through the API; which rows they may see is `spf.scope`'s job."""

from rest_framework.permissions import SAFE_METHODS, BasePermission


class CanEditRegistryOrReadOnly(BasePermission):
    """Every signed-in user may read (within their districts); only registry editors may write."""

    message = "Your role cannot change the registry."

    def has_permission(self, request, view) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        return request.method in SAFE_METHODS or user.can_edit_registry
