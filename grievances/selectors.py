"""Reads of grievances: who may see which (decided once, in `grievances_for`),
the officers' worklist with its filters, one household's grievances."""

from django.db.models import Q, QuerySet
from django.utils import timezone

from spf.models import Role
from spf.scope import scope_to_user

from .models import OPEN_STATUSES, Grievance, grievance_id_from_number
from .services import may_handle_sensitive


def grievances_for(user) -> QuerySet[Grievance]:
    """Every grievance `user` may see.

    Their districts' grievances; sensitive ones only for designated officers
    (and whoever recorded it); programme officers only those about their
    agency's programmes or assigned to their agency; ministry staff every
    district (sensitive ones still only with the designation).
    """
    grievances = Grievance.objects.all()
    if user is None or not user.is_authenticated or not user.is_active:
        return grievances.none()
    grievances = scope_to_user(grievances, user)
    if not may_handle_sensitive(user):
        grievances = grievances.filter(Q(sensitive=False) | Q(created_by=user))
    if user.role == Role.PROGRAMME_OFFICER and not user.is_superuser:
        if user.agency_id is None:
            return grievances.none()
        # ...and those they recorded themselves (an agency passing on a complaint follows it up).
        grievances = grievances.filter(
            Q(assigned_agency_id=user.agency_id) | Q(programme__agency_id=user.agency_id) | Q(created_by=user)
        )
    return grievances


def grievance_for_number(*, user, number: str) -> Grievance:
    """The grievance a typed reference names, within scope; DoesNotExist otherwise (malformed,
    unknown or out of scope alike)."""
    grievance_id = grievance_id_from_number(number)
    if grievance_id is None:
        raise Grievance.DoesNotExist(f"'{number}' is not a grievance reference.")
    return grievances_for(user).select_related("household", "programme", "district", "complainant").get(pk=grievance_id)


def grievance_worklist(
    *,
    user,
    status: str = "",
    category: str = "",
    overdue: bool = False,
    mine: bool = False,
    open_only: bool = True,
    district_id: int | None = None,
    programme_id: int | None = None,
) -> QuerySet[Grievance]:
    grievances = grievances_for(user).select_related(
        "household", "programme", "district", "assigned_to", "assigned_agency"
    )
    if open_only and not status:
        grievances = grievances.filter(status__in=OPEN_STATUSES)
    if status:
        grievances = grievances.filter(status=status)
    if category:
        grievances = grievances.filter(category=category)
    if overdue:
        grievances = grievances.filter(status__in=OPEN_STATUSES, due_date__lt=timezone.localdate())
    if mine:
        grievances = grievances.filter(
            Q(assigned_to=user) | Q(assigned_agency_id=getattr(user, "agency_id", None) or -1)
        )
    if district_id:
        grievances = grievances.filter(district_id=district_id)
    if programme_id:
        grievances = grievances.filter(programme_id=programme_id)
    return grievances.order_by("due_date", "id")


def household_grievances(*, user, household_id: int) -> QuerySet[Grievance]:
    return grievances_for(user).filter(household_id=household_id).select_related("programme").order_by("-created_at")
