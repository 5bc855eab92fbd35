"""Enrolment and payment pages: enrol a household (from its page or from an
accepted referral), an enrolment's page and its moves, the agency's work
lists, and the payment cycles with their payroll, files and reconciliation.

Views read through `payments.selectors` and write through `payments.services`,
`payments.payroll` and `payments.reconciliation`. Scope: an enrolment, a
household or a cycle the user may not see is a 404 on every page and action,
the same as one that does not exist; a move the user's role may not make is
refused with the service's words.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from programmes.models import Programme, TargetUnit
from referrals.models import Referral
from referrals.selectors import referral_for_number
from registry.forms import show_service_errors
from registry.models import Household, Member, MemberStatus
from registry.selectors import households_for
from spf.models import ExportKind
from spf.services import personal_data_export_record

from . import payroll, services
from .forms import (
    CycleCreateForm,
    CyclePaymentsFilterForm,
    EnrolForm,
    ExportForm,
    MoveForm,
    PaymentDetailsForm,
    ReconciliationUploadForm,
    ReviewForm,
    WorkFilterForm,
)
from .models import (
    CycleStatus,
    Enrolment,
    EnrolmentSource,
    EnrolmentStatus,
    PaymentChannel,
    PaymentCycle,
    Reconciliation,
)
from .selectors import (
    WorkTab,
    cycle_district_ids_for,
    cycle_for,
    cycle_overview,
    cycle_payments,
    cycles_by_programme,
    enrol_options,
    enrolment_detail,
    enrolment_for_number,
    enrolment_from_referral,
    enrolment_work,
    reconciliation_for,
    work_programmes,
)
from .templatetags.payments_display import payments_word

E = EnrolmentStatus

# A page of a work list or of a cycle's payments: what fits on a laptop
# screen, and a quick scroll on a phone.
WORK_PAGE_SIZE = 25
CYCLE_PAYMENTS_PAGE_SIZE = 50

# The words on each move's button. Reinstating is a move to active from suspended.
MOVE_LABELS = {
    E.VERIFIED: "Verify",
    E.APPROVED: "Approve",
    E.ACTIVE: "Activate",
    E.SUSPENDED: "Suspend",
    E.EXITED: "End the enrolment",
}
NEEDS_REASON = (E.SUSPENDED, E.EXITED)


def _move_label(enrolment: Enrolment, to_status: str) -> str:
    if to_status == E.ACTIVE and enrolment.status == E.SUSPENDED:
        return "Reinstate"
    if to_status == E.EXITED and enrolment.status in (E.APPLIED, E.VERIFIED):
        return "Refuse the application"
    return MOVE_LABELS[to_status]


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return fallback


def _problem_texts(problem: ValidationError) -> list[str]:
    if hasattr(problem, "error_dict"):
        return [text for texts in problem.message_dict.values() for text in texts]
    return list(problem.messages)


def _household_url(household_id: int) -> str:
    return reverse("frontdesk:household", args=[household_id]) + "#enrolments"


def _enrolment_url(enrolment: Enrolment) -> str:
    return reverse("payments:enrolment", args=[enrolment.number])


# --- enrolling a household -------------------------------------------------------------------


def _enrol_referral(request: HttpRequest, household: Household) -> Referral | None:
    number = request.POST.get("referral") or request.GET.get("referral") or ""
    if not number:
        return None
    try:
        referral = referral_for_number(user=request.user, number=number)
    except Referral.DoesNotExist:
        raise Http404("No such referral in your districts or agency.") from None
    if referral.household_id != household.pk:
        raise Http404("That referral is for another household.")
    return referral


@login_required
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest, pk: int) -> HttpResponse:
    """Enrol a household: at the window in a direct programme, for the agency, or from an accepted referral."""
    household = get_object_or_404(
        households_for(request.user).select_related("village", "village__parent", "district", "head"), pk=pk
    )
    referral = _enrol_referral(request, household)
    if referral is not None:
        earlier = enrolment_from_referral(referral=referral)
        if earlier is not None and earlier.is_current:
            messages.info(request, f"Referral {referral.number} already led to enrolment {earlier.number}.")
            return redirect(_enrolment_url(earlier))
        if not (
            services.may_act_at_window(request.user, household.district_id)
            or services.may_act_for_programme(request.user, referral.programme, household.district_id)
        ):
            raise PermissionDenied("Only the window of this district or the programme's agency can enrol.")
        programmes = [Programme.objects.select_related("agency").get(pk=referral.programme_id)]
        sources = {programmes[0].code: EnrolmentSource.REFERRAL}
    else:
        options = enrol_options(user=request.user, household=household)
        programmes = [option.programme for option in options]
        sources = {option.programme.code: option.source for option in options}
        if not programmes:
            messages.error(
                request,
                f"Household {household.number} is not eligible for any programme you can enrol it in here. "
                "Refer it to the agency instead, or re-check its eligibility.",
            )
            return redirect(_household_url(household.pk))
    members = Member.objects.filter(household=household, status=MemberStatus.PRESENT).order_by("pk")
    show_reference = any(source != EnrolmentSource.WINDOW for source in sources.values()) and bool(
        request.user.agency_id or request.user.sees_every_district
    )
    chosen_code = request.GET.get("programme", "")
    if request.method == "POST":
        form = EnrolForm(request.POST, programmes=programmes, members=members, show_reference=show_reference)
        if form.is_valid():
            data = form.cleaned_data
            programme = data["programme"]
            try:
                enrolment = services.enrolment_apply(
                    acting_user=request.user,
                    household=household,
                    programme=programme,
                    member=data["member"] if programme.target_unit == TargetUnit.INDIVIDUAL else None,
                    referral=referral,
                    source=sources[programme.code],
                    external_reference=data.get("external_reference") or "",
                    channel=data["channel"],
                    account_number=data["account_number"],
                    account_name=data["account_name"],
                    pay_point=data["pay_point"],
                    reason=data["reason"],
                    idempotency_key=data["idempotency_key"],
                )
            except PermissionDenied as refusal:
                form.add_error(None, str(refusal) or "You may not enrol this household.")
            except ValidationError as problem:
                show_service_errors(problem, form)
            else:
                messages.success(
                    request,
                    f"Enrolment {enrolment.number} in {programme.name} applied for. "
                    "Next: it is verified, then approved by someone else.",
                )
                return redirect(_enrolment_url(enrolment))
    else:
        initial = {}
        if chosen_code in {p.code for p in programmes}:
            initial["programme"] = chosen_code
        if referral is not None and referral.member_id:
            initial["member"] = referral.member_id
        form = EnrolForm(programmes=programmes, members=members, show_reference=show_reference, initial=initial)
    chosen = next((p for p in programmes if p.code == (form["programme"].value() or "")), None)
    if chosen is None and len(programmes) == 1:
        chosen = programmes[0]
    return render(
        request,
        "payments/enrol.html",
        {
            "household": household,
            "referral": referral,
            "form": form,
            "chosen": chosen,
            "individual_programmes": form.individual_programmes,
            "member_needed": chosen is not None and chosen.target_unit == TargetUnit.INDIVIDUAL,
        },
        status=400 if request.method == "POST" else 200,
    )


# --- one enrolment -------------------------------------------------------------------------------


def _enrolment_or_404(request: HttpRequest, number: str) -> Enrolment:
    try:
        return enrolment_for_number(user=request.user, number=number)
    except Enrolment.DoesNotExist:
        raise Http404("No such enrolment in your districts or agency.") from None


def _actions(enrolment: Enrolment, user) -> list[dict]:
    return [
        {
            "to_status": to_status,
            "label": _move_label(enrolment, to_status),
            "needs_reason": to_status in NEEDS_REASON,
            "form": MoveForm(initial={"to_status": to_status}),
        }
        for to_status in services.enrolment_moves_for(enrolment=enrolment, user=user)
    ]


def _enrolment_page(
    request: HttpRequest,
    enrolment: Enrolment,
    *,
    failed_move: dict | None = None,
    details_form: PaymentDetailsForm | None = None,
    review_form: ReviewForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request.user
    actions = _actions(enrolment, user)
    move_errors: list[str] = []
    if failed_move:
        shown_in_form = False
        for action in actions:
            if action["to_status"] == failed_move["to_status"] and action["needs_reason"]:
                action["form"], action["open"], shown_in_form = failed_move["form"], True, True
        if not shown_in_form:
            form = failed_move["form"]
            move_errors = [
                *form.non_field_errors(),
                *(e for n, errs in form.errors.items() if n != "__all__" for e in errs),
            ]
    for_programme = services.may_act_for_programme(user, enrolment.programme, enrolment.district_id)
    may_change_details = enrolment.status != E.EXITED and (
        for_programme or services.may_act_at_window(user, enrolment.district_id)
    )
    if details_form is None and may_change_details:
        details_form = PaymentDetailsForm(
            initial={
                "channel": enrolment.channel,
                "account_number": enrolment.account_number,
                "account_name": enrolment.account_name,
                "pay_point": enrolment.pay_point,
            }
        )
    may_review = enrolment.review_since is not None and enrolment.is_current and for_programme
    if review_form is None and may_review:
        review_form = ReviewForm()
    makers = {enrolment.applied_by_id, enrolment.verified_by_id} - {None}
    return render(
        request,
        "payments/enrolment_detail.html",
        {
            "enrolment": enrolment,
            "household": enrolment.household,
            "actions": actions,
            "move_errors": move_errors,
            "details_form": details_form if may_change_details else None,
            "review_form": review_form if may_review else None,
            "waiting_for_colleague": enrolment.status == E.VERIFIED and for_programme and user.pk in makers,
        },
        status=status,
    )


@login_required
@require_GET
def enrolment_page(request: HttpRequest, number: str) -> HttpResponse:
    try:
        enrolment = enrolment_detail(user=request.user, number=number)
    except Enrolment.DoesNotExist:
        raise Http404("No such enrolment in your districts or agency.") from None
    if number != enrolment.number:
        # A plain id or a lower-case number: one address per enrolment.
        return redirect(_enrolment_url(enrolment))
    return _enrolment_page(request, enrolment)


@login_required
@require_POST
def enrolment_move(request: HttpRequest, number: str) -> HttpResponse:
    """One move of an enrolment (verify, approve, activate, suspend, reinstate, end): one service call."""
    enrolment = _enrolment_or_404(request, number)
    form = MoveForm(request.POST)
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        try:
            enrolment = services.enrolment_transition(
                enrolment=enrolment,
                to_status=data["to_status"],
                acting_user=request.user,
                reason=data["reason"],
                exit_reason=data["exit_reason"],
                idempotency_key=data["idempotency_key"],
            )
        except PermissionDenied as refusal:
            form.add_error(None, str(refusal) or "You may not make this change.")
            status = 403
        except ValidationError as problem:
            show_service_errors(problem, form)
        else:
            words = enrolment.get_status_display().lower()
            if getattr(enrolment, "repeated", False):
                # A second click, or a colleague a moment earlier: done once, and the page says so.
                messages.info(request, f"Enrolment {enrolment.number} is already {words}; nothing more was recorded.")
                return redirect(_safe_next(request, _enrolment_url(enrolment)))
            if enrolment.status == E.APPROVED and enrolment.amount is not None:
                words += f" at {enrolment.currency} {enrolment.amount:,.2f} a payment"
            messages.success(request, f"Enrolment {enrolment.number}: {words}.")
            return redirect(_safe_next(request, _enrolment_url(enrolment)))
    next_url = _safe_next(request, "")
    if next_url:
        # From a list: the list again, with the reason on top.
        for text in [*form.non_field_errors(), *(e for errs in form.errors.values() for e in errs)]:
            messages.error(request, f"Enrolment {enrolment.number}: {text}")
        return redirect(next_url)
    enrolment = enrolment_detail(user=request.user, number=enrolment.number)
    return _enrolment_page(
        request, enrolment, failed_move={"to_status": request.POST.get("to_status"), "form": form}, status=status
    )


@login_required
@require_POST
def enrolment_details(request: HttpRequest, number: str) -> HttpResponse:
    """Change how the household is paid."""
    enrolment = _enrolment_or_404(request, number)
    form = PaymentDetailsForm(request.POST)
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        try:
            before = enrolment.updated_at
            enrolment = services.enrolment_set_payment_details(
                acting_user=request.user,
                enrolment=enrolment,
                channel=data["channel"],
                account_number=data["account_number"],
                account_name=data["account_name"],
                pay_point=data["pay_point"],
                reason=data["reason"],
            )
        except PermissionDenied as refusal:
            form.add_error(None, str(refusal) or "You may not change the payment details.")
            status = 403
        except ValidationError as problem:
            show_service_errors(problem, form)
        else:
            if enrolment.updated_at == before:
                messages.info(request, "The payment details were already so: nothing changed.")
            else:
                messages.success(request, f"Enrolment {enrolment.number}: payment details changed.")
            return redirect(_enrolment_url(enrolment) + "#payment-details")
    enrolment = enrolment_detail(user=request.user, number=enrolment.number)
    return _enrolment_page(request, enrolment, details_form=form, status=status)


@login_required
@require_POST
def enrolment_review(request: HttpRequest, number: str) -> HttpResponse:
    """The officer's decision on an enrolment flagged because the household lost eligibility."""
    enrolment = _enrolment_or_404(request, number)
    form = ReviewForm(request.POST)
    status = 400
    if form.is_valid():
        data = form.cleaned_data
        try:
            enrolment = services.enrolment_review_close(
                acting_user=request.user,
                enrolment=enrolment,
                keep=data["decision"] == ReviewForm.KEEP,
                reason=data["reason"],
                exit_reason=data["exit_reason"] or "not_eligible",
            )
        except PermissionDenied as refusal:
            form.add_error(None, str(refusal) or "You may not decide this review.")
            status = 403
        except ValidationError as problem:
            show_service_errors(problem, form)
        else:
            if enrolment.status == E.EXITED:
                messages.success(request, f"Enrolment {enrolment.number} ended: {enrolment.get_exit_reason_display()}.")
            else:
                messages.success(request, f"Enrolment {enrolment.number} kept; the review is closed.")
            return redirect(_enrolment_url(enrolment))
    enrolment = enrolment_detail(user=request.user, number=enrolment.number)
    return _enrolment_page(request, enrolment, review_form=form, status=status)


# --- the agency's work lists ---------------------------------------------------------------------

# Moves offered as one-click buttons on a list row: those that need no reason.
QUICK_MOVES = (E.VERIFIED, E.APPROVED, E.ACTIVE)


@login_required
@require_GET
def work(request: HttpRequest) -> HttpResponse:
    """Enrolments waiting on the user: to verify, to approve (someone else's), to activate, flagged for review."""
    user = request.user
    programmes = work_programmes(user=user)
    form = WorkFilterForm(request.GET or None, programmes=programmes)
    programme_code = form.cleaned_data.get("programme", "") if form.is_bound and form.is_valid() else ""
    tabs = dict(WorkTab.CHOICES)
    tab = request.GET.get("tab") if request.GET.get("tab") in tabs else WorkTab.VERIFY
    lists = enrolment_work(user=user, tab=tab, programme_code=programme_code)
    page = Paginator(lists.enrolments, WORK_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "enrolment": enrolment,
            "quick": [
                {"to_status": s, "label": _move_label(enrolment, s), "form": MoveForm(initial={"to_status": s})}
                for s in services.enrolment_moves_for(enrolment=enrolment, user=user)
                if s in QUICK_MOVES
            ],
        }
        for enrolment in page.object_list
    ]
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("tab", None)
    window_only = not (user.sees_every_district or user.agency_id)
    return render(
        request,
        "payments/work.html",
        {
            "agency": user.agency if user.agency_id and not user.sees_every_district else None,
            "window_only": window_only,
            "form": form,
            "tabs": [
                {"key": key, "label": label, "count": lists.counts[key]}
                for key, label in WorkTab.CHOICES
                if not window_only or key == WorkTab.VERIFY
            ],
            "tab": tab,
            "page": page,
            "rows": rows,
            "waiting_for_colleague": lists.waiting_for_colleague,
            "filter_query": query.urlencode(),
            "is_filtered": bool(programme_code),
        },
    )


# --- payment cycles ------------------------------------------------------------------------------


def _next_month(cycles: list[PaymentCycle]) -> str:
    """The month a new cycle most likely starts: after the latest one, or this month."""
    if cycles:
        latest = max(cycles, key=lambda c: c.period_end)
        day = latest.period_end
        return f"{day.year + day.month // 12}-{day.month % 12 + 1:02d}"
    today = timezone.localdate()
    return f"{today:%Y-%m}"


def _cycles_page(request: HttpRequest, *, failed: CycleCreateForm | None = None, status: int = 200) -> HttpResponse:
    groups = cycles_by_programme(user=request.user)
    for group in groups:
        if not group.may_run:
            group.form = None
        elif failed is not None and failed.prefix == group.programme.code.lower():
            group.form = failed
        else:
            group.form = CycleCreateForm(
                initial={"programme": group.programme.code, "period_start": _next_month(group.cycles)},
                prefix=group.programme.code.lower(),
            )
    whole = cycle_district_ids_for(request.user) is None
    return render(request, "payments/cycles.html", {"groups": groups, "whole": whole}, status=status)


@login_required
@require_GET
def cycles(request: HttpRequest) -> HttpResponse:
    """The payment cycles of each programme the user sees, and a form to create the next one."""
    return _cycles_page(request)


@login_required
@require_POST
def cycle_create(request: HttpRequest) -> HttpResponse:
    # Each programme's form on the page has its own prefix (its code), so the errors go back to the right one.
    code = next((value for key, value in request.POST.items() if key.endswith("-programme")), "")
    form = CycleCreateForm(request.POST, prefix=code.lower() or None)
    programme = Programme.objects.select_related("agency").filter(code=code).first()
    if programme is None or not payroll.may_run_payroll(request.user, programme):
        raise Http404("No such programme among those whose payroll you run.")
    if form.is_valid():
        try:
            cycle = payroll.payment_cycle_create(
                acting_user=request.user, programme=programme, period_start=form.cleaned_data["period_start"]
            )
        except PermissionDenied as refusal:
            form.add_error(None, str(refusal))
        except ValidationError as problem:
            show_service_errors(problem, form)
        else:
            messages.success(request, f"Payment cycle {cycle} created. Next: generate its payroll.")
            return redirect("payments:cycle", pk=cycle.pk)
    return _cycles_page(request, failed=form, status=400)


def _cycle_or_404(request: HttpRequest, pk: int) -> PaymentCycle:
    try:
        return cycle_for(user=request.user, cycle_id=pk)
    except PaymentCycle.DoesNotExist:
        raise Http404("No such payment cycle among the programmes you see.") from None


def _cycle_page(
    request: HttpRequest,
    cycle: PaymentCycle,
    *,
    errors: list[str] | None = None,
    upload_form: ReconciliationUploadForm | None = None,
    status: int = 200,
) -> HttpResponse:
    overview = cycle_overview(user=request.user, cycle=cycle)
    filters = CyclePaymentsFilterForm(request.GET or None)
    narrowed = filters.cleaned_data if filters.is_bound and filters.is_valid() else {}
    payments = cycle_payments(
        user=request.user, cycle=cycle, status=narrowed.get("status", ""), query=narrowed.get("q", "")
    )
    page = Paginator(payments, CYCLE_PAYMENTS_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    may_run = overview.may_run
    return render(
        request,
        "payments/cycle_detail.html",
        {
            "cycle": cycle,
            "overview": overview,
            "errors": errors or [],
            "may_generate": may_run and cycle.status in (CycleStatus.CREATED, CycleStatus.GENERATED),
            "may_approve": may_run and cycle.status == CycleStatus.GENERATED,
            "approve_blocked": cycle.generated_by_id == request.user.pk,
            "may_export": may_run and cycle.status in (CycleStatus.APPROVED, CycleStatus.EXPORTED),
            "may_reconcile": may_run and cycle.status in (CycleStatus.EXPORTED, CycleStatus.CLOSED),
            "upload_form": upload_form or ReconciliationUploadForm(),
            "filters": filters,
            "page": page,
            "filter_query": query.urlencode(),
        },
        status=status,
    )


@login_required
@require_GET
def cycle_page(request: HttpRequest, pk: int) -> HttpResponse:
    return _cycle_page(request, _cycle_or_404(request, pk))


def _cycle_action(request: HttpRequest, pk: int, call, success) -> HttpResponse:
    """Run one payroll step; on success a message and the cycle page, on a rule broken the page with why."""
    cycle = _cycle_or_404(request, pk)
    try:
        result = call(cycle)
    except PermissionDenied as refusal:
        return _cycle_page(request, cycle, errors=[str(refusal)], status=403)
    except ValidationError as problem:
        cycle = _cycle_or_404(request, pk)
        return _cycle_page(request, cycle, errors=_problem_texts(problem), status=400)
    if getattr(result, "repeated", False):
        # An approval sent twice, or a colleague's a moment earlier: done once, and the page says so.
        messages.info(
            request,
            f"The payroll of {result} is already {result.get_status_display().lower()}; nothing more was recorded.",
        )
    else:
        messages.success(request, success(result))
    return redirect("payments:cycle", pk=cycle.pk)


def _payroll_words(report: payroll.PayrollReport, cycle_id: int) -> str:
    words = f"Payroll generated: {payments_word(report.payment_count)}"
    if report.payment_count:
        cycle = PaymentCycle.objects.only("currency").get(pk=cycle_id)
        words += f", {cycle.currency} {report.total_amount:,.2f}"
    words += f" ({report.created:,} new"
    if report.amounts_changed:
        words += f", {report.amounts_changed:,} amounts recalculated"
    if report.without_amount:
        words += f", {report.without_amount:,} left out: the formula lacks information"
    return words + "). Next: someone else approves it."


@login_required
@require_POST
def cycle_generate(request: HttpRequest, pk: int) -> HttpResponse:
    return _cycle_action(
        request,
        pk,
        lambda cycle: payroll.payroll_generate(acting_user=request.user, cycle=cycle),
        lambda report: _payroll_words(report, pk),
    )


@login_required
@require_POST
def cycle_approve(request: HttpRequest, pk: int) -> HttpResponse:
    return _cycle_action(
        request,
        pk,
        lambda cycle: payroll.payroll_approve(
            acting_user=request.user, cycle=cycle, idempotency_key=request.POST.get("idempotency_key", "")
        ),
        lambda cycle: (
            f"Payroll of {cycle} approved: {payments_word(cycle.payment_count)}, "
            f"{cycle.currency} {cycle.total_amount:,.2f}. Next: export the payment files."
        ),
    )


@login_required
@require_POST
def cycle_reissue(request: HttpRequest, pk: int) -> HttpResponse:
    return _cycle_action(
        request,
        pk,
        lambda cycle: payroll.payments_reissue(acting_user=request.user, cycle=cycle),
        lambda count: (
            f"{count:,} failed or unclaimed payment{'s' if count != 1 else ''} reissued in this cycle."
            if count
            else "Nothing to reissue: no failed or unclaimed payment of an active enrolment is waiting."
        ),
    )


@login_required
@require_POST
def cycle_export(request: HttpRequest, pk: int) -> HttpResponse:
    """The payment file of one channel, downloaded; the cycle is marked sent to the provider."""
    cycle = _cycle_or_404(request, pk)
    form = ExportForm(request.POST)
    if not form.is_valid():
        return _cycle_page(
            request, cycle, errors=[f"Channel must be one of {', '.join(PaymentChannel.values)}."], status=400
        )
    try:
        name, content = payroll.payroll_export(
            acting_user=request.user, cycle=cycle, channel=form.cleaned_data["channel"]
        )
    except PermissionDenied as refusal:
        return _cycle_page(request, cycle, errors=[str(refusal)], status=403)
    except ValidationError as problem:
        return _cycle_page(request, cycle, errors=_problem_texts(problem), status=400)
    response = HttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@login_required
@require_POST
def cycle_reconcile(request: HttpRequest, pk: int) -> HttpResponse:
    """Upload the provider's reconciliation file: every row ends applied, unchanged or rejected with why."""
    from .reconciliation import reconciliation_import, reconciliation_upload_content

    cycle = _cycle_or_404(request, pk)
    form = ReconciliationUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _cycle_page(request, cycle, upload_form=form, status=400)
    upload = form.cleaned_data["file"]
    try:
        reconciliation = reconciliation_import(
            acting_user=request.user, cycle=cycle, file_name=upload.name, content=reconciliation_upload_content(upload)
        )
    except PermissionDenied as refusal:
        form.add_error(None, str(refusal))
        return _cycle_page(request, _cycle_or_404(request, pk), upload_form=form, status=403)
    except ValidationError as problem:
        show_service_errors(problem, form)
        if not form.errors:
            for text in _problem_texts(problem):
                form.add_error("file", text)
        return _cycle_page(request, _cycle_or_404(request, pk), upload_form=form, status=400)
    words = (
        f"{reconciliation.file_name}: {reconciliation.rows_total:,} rows, {reconciliation.rows_applied:,} applied, "
        f"{reconciliation.rows_unchanged:,} already recorded, {reconciliation.rows_rejected:,} rejected."
    )
    if reconciliation.rows_rejected:
        messages.warning(request, words + " Download the row report to see why.")
    else:
        messages.success(request, words)
    return redirect(reverse("payments:cycle", args=[cycle.pk]) + f"#reconciliation-{reconciliation.pk}")


@login_required
@require_GET
def reconciliation_report(request: HttpRequest, pk: int) -> HttpResponse:
    """One line per row of the provider's file with what became of it."""
    from .reconciliation import reconciliation_report_csv

    try:
        reconciliation = reconciliation_for(user=request.user, reconciliation_id=pk)
    except Reconciliation.DoesNotExist:
        raise Http404("No such reconciliation among the cycles you see.") from None
    content = reconciliation_report_csv(reconciliation=reconciliation)
    stem = reconciliation.file_name.rsplit(".", 1)[0] or "reconciliation"
    personal_data_export_record(
        user=request.user,
        kind=ExportKind.RECONCILIATION_REPORT,
        what=f"{reconciliation.cycle}: rows of the provider's file {reconciliation.file_name}",
        file_name=f"{stem}-report.csv",
        rows=reconciliation.rows_total,
        address=request.get_full_path(),
    )
    response = HttpResponse(content, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{stem}-report.csv"'
    return response
