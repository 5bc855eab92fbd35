"""Referral pages: refer a household, a referral's page and its actions, the
slip the household carries, the window's worklist and the agency's queue, and
the notifications list.

Views read through `referrals.selectors` and write through
`referrals.services`. Scope: a referral the user may not see is a 404 on every
page and action, the same as one that does not exist (an agency's officer
sees only that agency's referrals); a move the user's role may not make is
refused with the service's words.
"""

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from programmes.models import Agency, EligibilityResult, EnrolmentMode, Programme, ProgrammeStatus, TargetUnit
from registry.models import Household, Location, LocationLevel, Member, MemberStatus
from registry.selectors import households_for
from spf.models import ExportKind, Role
from spf.scope import district_ids_for, scope_to_user
from spf.services import personal_data_export_record

from . import services
from .forms import AGE_BANDS, OpenReferralForm, ReferForm, TransitionForm, WorklistFilterForm
from .models import Referral, ReferralStatus
from .selectors import (
    WorklistFilters,
    WorklistTab,
    household_referrals,
    notifications_for,
    referral_detail,
    referral_for_number,
    referral_is_overdue,
    referral_worklist,
    referrals_for,
)

S = ReferralStatus

# A page of the worklist: what fits on a laptop screen with the filters, and
# a quick scroll on a phone.
WORKLIST_PAGE_SIZE = 25
NOTIFICATIONS_PAGE_SIZE = 30

# The words on each action's button, and whether it asks for a reason first.
ACTION_LABELS = {
    S.SENT: "Send to the agency",
    S.RECEIVED: "Mark received",
    S.ACCEPTED: "Accept",
    S.REJECTED: "Reject",
    S.COMPLETED: "Mark completed",
    S.CANCELLED: "Cancel the referral",
}
NEEDS_REASON = (S.REJECTED, S.CANCELLED)


def _is_agency_officer(user) -> bool:
    return user.role == Role.PROGRAMME_OFFICER and user.agency_id is not None


def _referral_or_404(request: HttpRequest, number: str) -> Referral:
    try:
        return referral_for_number(user=request.user, number=number)
    except Referral.DoesNotExist:
        raise Http404("No such referral in your districts or agency.") from None


def _referral_url(referral: Referral) -> str:
    return reverse("referrals:referral", args=[referral.number])


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return fallback


def _actions(referral: Referral, user) -> list[dict]:
    """The buttons the user's role and the state machine allow, each with its own empty form."""
    return [
        {
            "to_status": to_status,
            "label": ACTION_LABELS.get(to_status, S(to_status).label),
            "needs_reason": to_status in NEEDS_REASON,
            "form": TransitionForm(initial={"to_status": to_status}),
        }
        for to_status in services.referral_moves_for(referral=referral, user=user)
    ]


# --- referring a household ------------------------------------------------------------


def _programmes_to_refer_to(household: Household):
    return (
        Programme.objects.filter(status=ProgrammeStatus.ACTIVE, coverage__district_id=household.district_id)
        .exclude(enrolment_mode=EnrolmentMode.DIRECT)
        .select_related("agency")
        .order_by("name")
    )


def _initial_reason(household: Household, programme: Programme | None) -> str:
    if programme is None:
        return ""
    result = EligibilityResult.objects.filter(household=household, programme=programme).only("outcome").first()
    if result is None:
        return ""
    if result.outcome == "eligible":
        return f"Eligible for {programme.name} on the single window's assessment."
    if result.outcome == "needs_information":
        return f"May qualify for {programme.name}: the agency should check the information still missing."
    return ""


@login_required
@require_http_methods(["GET", "POST"])
def refer(request: HttpRequest, pk: int) -> HttpResponse:
    """Refer a household to a programme: send now, or keep as a suggestion to confirm later."""
    household = get_object_or_404(
        households_for(request.user).select_related("village", "village__parent", "district", "head"), pk=pk
    )
    if not request.user.can_edit_registry:
        raise PermissionDenied("Only the window refers households.")
    programmes = _programmes_to_refer_to(household)
    members = Member.objects.filter(household=household, status=MemberStatus.PRESENT).order_by("pk")
    chosen = programmes.filter(code=request.GET.get("programme", "")).first()
    if request.method == "POST":
        form = ReferForm(request.POST, request.FILES, programmes=programmes, members=members)
        if form.is_valid():
            data = form.cleaned_data
            try:
                # The referral and its document stand or fall together.
                with transaction.atomic():
                    referral = services.referral_create(
                        acting_user=request.user,
                        household=household,
                        programme=data["programme"],
                        member=data["member"],
                        reason=data["reason"],
                        priority=data["priority"],
                        notes=data["notes"],
                        send=form.action() == ReferForm.SEND,
                    )
                    if data["attachment"]:
                        services.referral_attachment_add(
                            acting_user=request.user,
                            referral=referral,
                            file=data["attachment"],
                            description=data["attachment_description"],
                        )
            except PermissionDenied:
                raise Http404("No such household in your districts.") from None
            except ValidationError as problem:
                _errors_on_form(problem, form)
            else:
                if referral.status == S.SENT:
                    messages.success(
                        request,
                        f"Referral {referral.number} sent to {referral.agency.name}. Print the slip for the household.",
                    )
                else:
                    messages.success(request, f"Referral {referral.number} saved as a suggestion: send it when ready.")
                return redirect(_referral_url(referral))
    else:
        form = ReferForm(
            programmes=programmes,
            members=members,
            initial={"programme": chosen.code if chosen else None, "reason": _initial_reason(household, chosen)},
        )
    return render(
        request,
        "referrals/refer.html",
        {
            "household": household,
            "form": form,
            "chosen": chosen,
            "individual_programmes": form.individual_programmes,
            "member_needed": chosen is not None and chosen.target_unit == TargetUnit.INDIVIDUAL,
        },
        status=400 if request.method == "POST" else 200,
    )


def _errors_on_form(problem: ValidationError, form) -> None:
    """Each message of a service's ValidationError beside the field it names (or on top)."""
    messages_by_field = problem.message_dict if hasattr(problem, "error_dict") else {"__all__": problem.messages}
    for key, texts in messages_by_field.items():
        field = key if key in form.fields else None
        for text in texts:
            form.add_error(field, text)


# --- one referral --------------------------------------------------------------------------


def _referral_page(request, referral: Referral, *, failed: dict | None = None, status: int = 200) -> HttpResponse:
    """The referral page; `failed` is the action whose form came back with errors, shown open with them."""
    actions = _actions(referral, request.user)
    move_errors = []
    if failed:
        shown_in_form = False
        for action in actions:
            if action["to_status"] == failed["to_status"] and action["needs_reason"]:
                action["form"], action["open"], shown_in_form = failed["form"], True, True
        if not shown_in_form:
            form = failed["form"]
            move_errors = [
                *form.non_field_errors(),
                *(e for name, errs in form.errors.items() if name != "__all__" for e in errs),
            ]
    return render(
        request,
        "referrals/referral_detail.html",
        {
            "referral": referral,
            "household": referral.household,
            "actions": actions,
            "move_errors": move_errors,
            "is_overdue": referral_is_overdue(referral),
            "can_print": referral.status in (S.SENT, S.RECEIVED, S.ACCEPTED),
        },
        status=status,
    )


@login_required
@require_GET
def referral_page(request: HttpRequest, number: str) -> HttpResponse:
    try:
        referral = referral_detail(user=request.user, number=number)
    except Referral.DoesNotExist:
        raise Http404("No such referral in your districts or agency.") from None
    if number != referral.number:
        # A plain id or a lower-case number: one address per referral.
        return redirect(_referral_url(referral))
    return _referral_page(request, referral)


@login_required
@require_POST
def referral_move(request: HttpRequest, number: str) -> HttpResponse:
    """One action on a referral (send, receive, accept, reject, complete, cancel): one service call."""
    referral = _referral_or_404(request, number)
    form = TransitionForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            referral = services.referral_transition(
                referral=referral,
                to_status=data["to_status"],
                acting_user=request.user,
                reason=data["reason"],
                rejection_reason=data["rejection_reason"],
                idempotency_key=data["idempotency_key"],
            )
        except PermissionDenied as refusal:
            form.add_error(None, str(refusal) or "You may not make this change.")
            status = 403
        except ValidationError as problem:
            _errors_on_form(problem, form)
            status = 400
        else:
            if getattr(referral, "repeated", False):
                # A second click, or a colleague a moment earlier: done once, and the page says so.
                messages.info(
                    request,
                    f"Referral {referral.number} is already {referral.get_status_display().lower()}; "
                    "nothing more was recorded.",
                )
            else:
                messages.success(request, f"Referral {referral.number}: {referral.get_status_display().lower()}.")
            return redirect(_safe_next(request, _referral_url(referral)))
    else:
        status = 400
    next_url = _safe_next(request, "")
    if next_url:
        # From a list: the list again, with the reason on top.
        for text in [*form.non_field_errors(), *(e for f in form.errors.values() for e in f)]:
            messages.error(request, f"Referral {referral.number}: {text}")
        return redirect(next_url)
    referral = referral_detail(user=request.user, number=referral.number)
    return _referral_page(
        request, referral, failed={"to_status": request.POST.get("to_status"), "form": form}, status=status
    )


@login_required
@require_GET
def attachment_download(request: HttpRequest, number: str, attachment_id: int) -> HttpResponse:
    """A document on a referral, served only to those who may see the referral (it is personal data)."""
    referral = _referral_or_404(request, number)
    attachment = get_object_or_404(referral.attachments.all(), pk=attachment_id)
    personal_data_export_record(
        user=request.user,
        kind=ExportKind.ATTACHMENT,
        what=f"A document of referral {referral.number}",
        file_name=attachment.file.name.rsplit("/", 1)[-1],
        address=request.get_full_path(),
    )
    return FileResponse(
        attachment.file.open("rb"), as_attachment=False, filename=attachment.file.name.rsplit("/", 1)[-1]
    )


@login_required
@require_GET
def open_by_number(request: HttpRequest) -> HttpResponse:
    """The "open a referral" box: a scanner types the QR code's number and presses Enter."""
    form = OpenReferralForm(request.GET)
    fallback = _safe_next(request, reverse("referrals:worklist"))
    if not form.is_valid():
        for text in form.errors.get("number", []):
            messages.error(request, text)
        return redirect(fallback)
    referral = referrals_for(request.user).filter(pk=form.cleaned_data["number"]).only("pk").first()
    if referral is None:
        messages.error(request, f"No referral {request.GET.get('number', '').strip()} in your districts or agency.")
        return redirect(fallback)
    return redirect(_referral_url(referral))


# --- the slip ------------------------------------------------------------------------------


def qr_svg(text: str) -> str:
    """An inline SVG QR code carrying `text`; error level M survives a creased or smudged slip."""
    code = segno.make_qr(text, error="m")
    return code.svg_inline(scale=4, border=4, title=text, svgclass="slip-qr", omitsize=True)


def _slip_format(request: HttpRequest) -> str:
    return "receipt" if request.GET.get("format") == "receipt" else "a4"


def _render_slip(request, *, household: Household, referrals: list[Referral], slip_number: str) -> HttpResponse:
    """The slip: segno's SVG is markup we made from a number we made, so it is marked safe."""
    # Each referral carries its own code: each office scans the one for its programme.
    entries = [
        {"referral": r, "documents": r.programme.documents or [], "qr": mark_safe(qr_svg(r.number))}  # noqa: S308
        for r in referrals
    ]
    return render(
        request,
        "referrals/slip.html",
        {
            "household": household,
            "entries": entries,
            "slip_number": slip_number,
            "format": _slip_format(request),
            "printed_at": timezone.localtime(),
        },
    )


@login_required
@require_GET
def slip(request: HttpRequest, number: str) -> HttpResponse:
    referral = _referral_or_404(request, number)
    if number != referral.number:
        return redirect(reverse("referrals:slip", args=[referral.number]) + _query(request))
    return _render_slip(request, household=referral.household, referrals=[referral], slip_number=referral.number)


@login_required
@require_GET
def household_slip(request: HttpRequest, pk: int) -> HttpResponse:
    """One slip for every open, sent referral of a household, each programme with its own QR code."""
    household = get_object_or_404(
        households_for(request.user).select_related("village", "village__parent", "district", "head"), pk=pk
    )
    referrals = household_referrals(user=request.user, household=household).sent_open
    if not referrals:
        messages.error(request, f"Household {household.number} has no referral sent and still open to print.")
        return redirect(reverse("frontdesk:household", args=[household.pk]) + "#referrals")
    referrals.sort(key=lambda r: r.pk)
    for r in referrals:
        r.household = household
    return _render_slip(request, household=household, referrals=referrals, slip_number=referrals[0].number)


def _query(request: HttpRequest) -> str:
    return f"?{request.GET.urlencode()}" if request.GET else ""


# --- the worklist and the agency's queue ------------------------------------------------------


def _filter_choices(user):
    """Programmes, agencies and wards to narrow by: only those the user's referrals can be about."""
    programmes = Programme.objects.exclude(status=ProgrammeStatus.DRAFT).order_by("name")
    agencies = Agency.objects.filter(active=True).order_by("name")
    if _is_agency_officer(user):
        programmes = programmes.filter(agency_id=user.agency_id)
        agencies = agencies.filter(pk=user.agency_id)
    ids = district_ids_for(user)
    if ids is not None:
        programmes = programmes.filter(coverage__district_id__in=ids).distinct()
    wards = scope_to_user(Location.objects.filter(level=LocationLevel.WARD), user).select_related("district")
    return list(programmes), list(agencies), list(wards.order_by("district__name", "name"))


@login_required
@require_GET
def worklist(request: HttpRequest) -> HttpResponse:
    """The window's worklist, or for a programme officer the agency's queue: the same list, scoped."""
    user = request.user
    is_queue = _is_agency_officer(user)
    programmes, agencies, wards = _filter_choices(user)
    form = WorklistFilterForm(
        request.GET or None, programmes=programmes, agencies=agencies, wards=wards, show_agency=not is_queue
    )
    filters = WorklistFilters()
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        _, more_than, at_most = AGE_BANDS[data.get("age") or ""]
        filters = WorklistFilters(
            programme=data.get("programme") or "",
            agency=data.get("agency") or "",
            ward=data.get("ward"),
            status=data.get("status") or "",
            sent_more_than_days=more_than,
            sent_at_most_days=at_most,
        )
    tabs = dict(WorklistTab.CHOICES)
    tab = request.GET.get("tab") if request.GET.get("tab") in tabs else WorklistTab.OPEN
    listing = referral_worklist(user=user, tab=tab, filters=filters)
    page = Paginator(listing.referrals, WORKLIST_PAGE_SIZE).get_page(request.GET.get("page"))
    today = timezone.localdate()
    rows = [
        {
            "referral": referral,
            "overdue": referral_is_overdue(referral, today=today),
            "days_since_sent": (today - timezone.localtime(referral.sent_at).date()).days if referral.sent_at else None,
            "quick": [
                {"to_status": s, "label": ACTION_LABELS[s], "form": TransitionForm(initial={"to_status": s})}
                for s in services.referral_moves_for(referral=referral, user=user)
                if s not in NEEDS_REASON
            ],
        }
        for referral in page.object_list
    ]
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("tab", None)
    return render(
        request,
        "referrals/worklist.html",
        {
            "is_queue": is_queue,
            "agency": user.agency if is_queue else None,
            "form": form,
            "open_form": OpenReferralForm(),
            "tabs": [{"key": key, "label": label, "count": listing.counts[key]} for key, label in WorklistTab.CHOICES],
            "tab": tab,
            "page": page,
            "rows": rows,
            "filter_query": query.urlencode(),
            "is_filtered": any(
                [filters.programme, filters.agency, filters.ward, filters.status, request.GET.get("age")]
            ),
        },
    )


# --- notifications ----------------------------------------------------------------------------


@login_required
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    page = Paginator(notifications_for(user=request.user), NOTIFICATIONS_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "referrals/notifications.html", {"page": page})


@login_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    if request.POST.get("all"):
        ids = None
    else:
        ids = [int(value) for value in request.POST.getlist("notification") if value.isdigit()]
    changed = services.notifications_mark_read(user=request.user, notification_ids=ids)
    if changed:
        messages.success(request, f"{changed} notification{'s' if changed != 1 else ''} marked read.")
    return redirect(_safe_next(request, reverse("referrals:notifications")))
