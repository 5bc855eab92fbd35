"""Who may see which enrolment, payment, payment cycle and reconciliation: the
scope the API and the admin read through.

- Window users (front desk, committee) see the enrolments and payments of their
  districts, every programme; the payment cycles of the programmes that run
  there, read-only, with the totals of their districts only.
- Programme officers see their agency's enrolments and payments in their
  districts, and their agency's payment cycles whole (the payroll is one file
  for every district: `payments.payroll.may_run_payroll`). An officer with no
  agency sees nothing.
- Ministry staff and superusers see everything.
"""

from django.db.models import QuerySet

from programmes.models import ProgrammeDistrict
from spf.models import Role
from spf.scope import district_ids_for, scope_to_user

from ..models import Enrolment, Payment, PaymentCycle, Reconciliation, ReconciliationRow


def _signed_in(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _agency_only(user) -> bool:
    return user.role == Role.PROGRAMME_OFFICER and not user.is_superuser


def enrolments_for(user) -> QuerySet[Enrolment]:
    """Every enrolment `user` may see (see the module's docstring)."""
    enrolments = Enrolment.objects.all()
    if not _signed_in(user):
        return enrolments.none()
    if _agency_only(user):
        if user.agency_id is None:
            return enrolments.none()
        enrolments = enrolments.filter(programme__agency_id=user.agency_id)
    return scope_to_user(enrolments, user)


def payments_for(user) -> QuerySet[Payment]:
    """Every payment `user` may see: scoped like the enrolments they pay."""
    payments = Payment.objects.all()
    if not _signed_in(user):
        return payments.none()
    if _agency_only(user):
        if user.agency_id is None:
            return payments.none()
        payments = payments.filter(programme__agency_id=user.agency_id)
    return scope_to_user(payments, user)


def user_runs_payroll_scope(user) -> bool:
    """True when `user` sees a visible cycle whole (every district): its agency's officers and the ministry."""
    return _signed_in(user) and (user.sees_every_district or (_agency_only(user) and user.agency_id is not None))


def payment_cycles_for(user) -> QuerySet[PaymentCycle]:
    """Every payment cycle `user` may see (see the module's docstring)."""
    cycles = PaymentCycle.objects.all()
    if not _signed_in(user):
        return cycles.none()
    if user.sees_every_district:
        return cycles
    if _agency_only(user):
        return cycles.filter(programme__agency_id=user.agency_id) if user.agency_id else cycles.none()
    running_here = ProgrammeDistrict.objects.filter(district_id__in=district_ids_for(user)).values("programme_id")
    return cycles.filter(programme_id__in=running_here)


def cycle_district_ids_for(user) -> list[int] | None:
    """The districts whose totals `user` sees in a visible cycle; None for every district."""
    return None if user_runs_payroll_scope(user) else district_ids_for(user)


def reconciliations_for(user) -> QuerySet[Reconciliation]:
    """The provider's files `user` may see: those of the cycles whose payroll they see whole.

    A file lists payments of every district, so window users do not see it."""
    if not user_runs_payroll_scope(user):
        return Reconciliation.objects.none()
    return Reconciliation.objects.filter(cycle__in=payment_cycles_for(user).values("pk"))


def reconciliation_rows_for(user) -> QuerySet[ReconciliationRow]:
    if not user_runs_payroll_scope(user):
        return ReconciliationRow.objects.none()
    return ReconciliationRow.objects.filter(reconciliation__cycle__in=payment_cycles_for(user).values("pk"))
