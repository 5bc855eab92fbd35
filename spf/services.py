"""Writes about users: what a role gives them in the admin."""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

from .models import PersonalDataExport, Role, User

MINISTRY_GROUP = "Ministry staff"
# What ministry staff manage in the admin: the catalogue of places, users and
# their districts, attribute definitions. Households, members and history are
# read there; they change only at the front desk, through the services.
MINISTRY_PERMISSIONS = {
    "registry": {
        "location": ("view", "add", "change"),
        "attributedefinition": ("view", "add", "change"),
        "household": ("view",),
        "member": ("view",),
        "changeentry": ("view",),
        "importjob": ("view",),
        "householdnumbersequence": ("view",),
    },
    "programmes": {
        "agency": ("view", "add", "change"),
        "programme": ("view", "add", "change"),
        "programmedistrict": ("view", "add", "change", "delete"),
        "ruleversion": ("view",),
        "recomputerun": ("view",),
        "eligibilityresult": ("view",),
        "eligibilitychange": ("view",),
    },
    "spf": {"user": ("view", "add", "change")},
}


def ministry_staff_group() -> Group:
    group, _ = Group.objects.get_or_create(name=MINISTRY_GROUP)
    wanted = [
        f"{action}_{model}"
        for models in MINISTRY_PERMISSIONS.values()
        for model, actions in models.items()
        for action in actions
    ]
    permissions = Permission.objects.filter(content_type__app_label__in=list(MINISTRY_PERMISSIONS), codename__in=wanted)
    group.permissions.set(permissions)
    return group


@transaction.atomic
def user_sync_role_access(*, user: User) -> User:
    """Ministry staff get the admin and its group; other roles lose that group (never superuser rights)."""
    group = ministry_staff_group()
    if user.role == Role.MINISTRY:
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        user.groups.add(group)
    else:
        user.groups.remove(group)
    return user


def personal_data_export_record(
    *,
    user: User,
    kind: str,
    what: str,
    file_name: str = "",
    rows: int | None = None,
    address: str = "",
) -> PersonalDataExport:
    """Record that `user` took a file of personal data: called as the file is handed over (docs/security.md).

    Its own transaction when called outside one: the record stays even if the download is then lost.
    """
    return PersonalDataExport.objects.create(
        user=user, kind=kind, what=what[:500], file_name=file_name[:255], rows=rows, address=address[:1000]
    )
