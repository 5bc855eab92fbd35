"""Grievance pages: record a grievance (from a household's page, or without a
household), a grievance's page with its moves, the acknowledgement slip the
person keeps, the officers' worklist and the lookup by reference.

Views read through `grievances.selectors` and write through
`grievances.services`. Scope: a grievance the user may not see (another
district, a sensitive one for an ordinary officer, another agency's) is a 404
on every page and action, the same as one that does not exist; a move the
user's role may not make is refused with the service's words.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from payments.api.selectors import payments_for
from programmes.models import Agency, EligibilityOutcome, EligibilityResult, Programme, ProgrammeStatus
from referrals.views import qr_svg
from registry.models import Household, Member, MemberStatus
from registry.selectors import districts_for, households_for
from spf.models import ExportKind, Role, User
from spf.scope import district_ids_for
from spf.services import personal_data_export_record

from . import services
from .forms import (
    AcknowledgeForm,
    AssignForm,
    AttachmentForm,
    CloseForm,
    EscalateForm,
    FindingsForm,
    GrievanceForm,
    OpenGrievanceForm,
    ResolveForm,
    UpholdForm,
    WorklistFilterForm,
)
from .models import (
    OPEN_STATUSES,
    AppealOutcome,
    Grievance,
    GrievanceCategory,
    GrievanceChannel,
    GrievanceStatus,
    grievance_id_from_number,
)
from .selectors import grievance_worklist, grievances_for

S = GrievanceStatus

# A page of the worklist: what fits on a laptop screen with the filters, and a quick scroll on a phone.
WORKLIST_PAGE_SIZE = 25


# --- reads the pages need beyond `grievances.selectors` --------------------------------------


def may_record(user) -> bool:
    """The window records grievances, and so does an agency's officer (the service decides finally)."""
    return bool(
        user.is_authenticated
        and (user.can_edit_registry or (user.role == Role.PROGRAMME_OFFICER and user.agency_id is not None))
    )


def _grievance_or_404(request: HttpRequest, number: str) -> Grievance:
    grievance_id = grievance_id_from_number(number)
    if grievance_id is None:
        raise Http404("No such grievance in your districts.")
    try:
        return (
            grievances_for(request.user)
            .select_related(
                "household",
                "household__head",
                "household__village",
                "household__village__parent",
                "programme",
                "programme__agency",
                "programme__current_version",
                "payment",
                "payment__cycle",
                "district",
                "complainant",
                "assigned_to",
                "assigned_agency",
                "created_by",
                "appealed_rule_version",
            )
            .get(pk=grievance_id)
        )
    except Grievance.DoesNotExist:
        raise Http404("No such grievance in your districts.") from None


def _officers_for(grievance: Grievance) -> QuerySet[User]:
    """Who a grievance may be assigned to: the window's and the agencies' officers of its district;
    for a sensitive one, designated officers only."""
    officers = User.objects.filter(
        is_active=True, districts=grievance.district_id, role__in=(Role.FRONT_DESK, Role.PROGRAMME_OFFICER)
    )
    if grievance.sensitive:
        permission = Permission.objects.filter(codename="handle_sensitive", content_type__app_label="grievances")
        officers = officers.filter(
            Q(is_superuser=True) | Q(user_permissions__in=permission) | Q(groups__permissions__in=permission)
        )
    return officers.select_related("agency").distinct().order_by("role", "first_name", "last_name", "username")


def _household_attributes_read_by(programme: Programme | None) -> list:
    """The household attributes the programme's current rule reads: the corrections an appeal can turn on."""
    if programme is None or programme.current_version is None:
        return []
    from programmes.rules import RuleError, compile_expression, current_schema
    from registry.models import AttributeDefinition, AttributeEntity

    schema = current_schema()
    target = "member" if programme.target_unit == "individual" else "household"
    try:
        compiled = compile_expression(
            programme.current_version.eligibility_rule, kind="rule", target=target, schema=schema
        )
    except RuleError:
        return []
    keys = {
        name.removeprefix("household.")
        for name in compiled.fields_used
        if name.startswith("household.")
        and getattr(schema.household.get(name.removeprefix("household.")), "attribute", False)
    }
    if not keys:
        return []
    return list(
        AttributeDefinition.objects.filter(entity=AttributeEntity.HOUSEHOLD, active=True, key__in=keys).order_by(
            "label"
        )
    )


@dataclass
class WorklistCounts:
    by_status: dict[str, int]
    open: int
    overdue: int
    mine: int


def worklist_counts(*, user) -> WorklistCounts:
    """How many grievances the user sees at each step, overdue and assigned to them: one query."""
    today = timezone.localdate()
    open_ = Q(status__in=OPEN_STATUSES)
    mine = Q(assigned_to=user) | Q(assigned_agency_id=getattr(user, "agency_id", None) or -1)
    counts = grievances_for(user).aggregate(
        open=Count("pk", filter=open_),
        overdue=Count("pk", filter=open_ & Q(due_date__lt=today)),
        mine=Count("pk", filter=open_ & mine),
        **{f"status_{value}": Count("pk", filter=Q(status=value)) for value in S.values},
    )
    return WorklistCounts(
        by_status={value: counts[f"status_{value}"] for value in S.values},
        open=counts["open"],
        overdue=counts["overdue"],
        mine=counts["mine"],
    )


def is_overdue(grievance: Grievance, today=None) -> bool:
    return grievance.is_open and grievance.due_date < (today or timezone.localdate())


# --- helpers ---------------------------------------------------------------------------------


def _grievance_url(grievance: Grievance) -> str:
    return reverse("grievances:grievance", args=[grievance.number])


def _safe_next(request: HttpRequest, fallback: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}, require_https=False):
        return target
    return fallback


def _errors_on_form(problem: ValidationError, form) -> None:
    """Each message of a service's ValidationError beside the field it names (or on top)."""
    messages_by_field = problem.message_dict if hasattr(problem, "error_dict") else {"__all__": problem.messages}
    for key, texts in messages_by_field.items():
        field = form.field_for_error(key) if hasattr(form, "field_for_error") else (key if key in form.fields else None)
        for text in texts:
            form.add_error(field, text)


# --- recording a grievance -------------------------------------------------------------------


def _programmes_for_household(household: Household):
    return (
        Programme.objects.filter(status=ProgrammeStatus.ACTIVE, coverage__district_id=household.district_id)
        .select_related("agency")
        .order_by("name")
    )


def _programmes_for_user(user):
    programmes = Programme.objects.filter(status=ProgrammeStatus.ACTIVE).order_by("name")
    ids = district_ids_for(user)
    if ids is not None:
        programmes = programmes.filter(coverage__district_id__in=ids).distinct()
    return programmes


def _outcome_words(household: Household) -> dict[int, str]:
    labels = dict(EligibilityOutcome.choices)
    return {
        programme_id: labels.get(outcome, outcome).lower()
        for programme_id, outcome in EligibilityResult.objects.filter(household=household).values_list(
            "programme_id", "outcome"
        )
    }


def _initial_from_query(request: HttpRequest, household: Household | None, payments) -> dict[str, Any]:
    """What the household page's links pre-fill: the member, the programme, a payment not received."""
    query = request.GET
    initial: dict[str, Any] = {}
    if query.get("category") in GrievanceCategory.values:
        initial["category"] = query["category"]
    if query.get("programme"):
        initial["programme"] = query["programme"]
        initial.setdefault("category", GrievanceCategory.ELIGIBILITY)
    if household is None:
        return initial
    if query.get("member", "").isdigit():
        initial["complainant"] = int(query["member"])
    elif household.head_id:
        initial["complainant"] = household.head_id
    reference = query.get("payment", "")
    payment = payments.filter(reference=reference).select_related("cycle", "programme").first() if reference else None
    if payment is not None:
        initial.update(payment=payment.reference, category=GrievanceCategory.PAYMENT, programme=payment.programme.code)
        if query.get("not_received"):
            initial["payment_not_received"] = True
            paid = f" on {payment.paid_at:%-d %B %Y}" if payment.paid_at else ""
            initial["description"] = (
                f"Payment {payment.reference} ({payment.programme.name}, {payment.cycle.label}, "
                f"{payment.currency} {payment.amount:,.2f}) is marked paid{paid}, "
                "but the household says it never received it."
            )
    return initial


def _record_page(request: HttpRequest, household: Household | None) -> HttpResponse:
    user = request.user
    if not may_record(user):
        raise PermissionDenied("Your role cannot record grievances.")
    members = payments = districts = None
    outcomes = {}
    if household is not None:
        members = Member.objects.filter(household=household, status=MemberStatus.PRESENT).order_by("pk")
        payments = (
            payments_for(user)
            .filter(household=household)
            .select_related("cycle", "programme")
            .order_by("-cycle__period_start", "-id")
        )
        programmes = _programmes_for_household(household)
        outcomes = _outcome_words(household)
    else:
        districts = districts_for(user).order_by("name")
        programmes = _programmes_for_user(user)
    form_kwargs = {
        "household": household,
        "members": members,
        "districts": districts,
        "programmes": programmes,
        "payments": payments,
        "outcomes": outcomes,
    }
    if request.method == "POST":
        form = GrievanceForm(request.POST, request.FILES, **form_kwargs)
        if form.is_valid():
            grievance = _register(request, form, household)
            if grievance is not None:
                message = f"Grievance {grievance.number} recorded. Acknowledge it and give the person the slip."
                if grievance.payment_id and form.cleaned_data.get("payment_not_received"):
                    message += f" Payment {grievance.payment.reference} is flagged for the provider."
                messages.success(request, message)
                return redirect(_grievance_url(grievance))
    else:
        form = GrievanceForm(initial=_initial_from_query(request, household, payments), **form_kwargs)
    return render(
        request,
        "grievances/record.html",
        {"household": household, "form": form},
        status=400 if request.method == "POST" else 200,
    )


def _register(request: HttpRequest, form: GrievanceForm, household: Household | None) -> Grievance | None:
    data = form.cleaned_data
    try:
        # The grievance and its document stand or fall together.
        with transaction.atomic():
            grievance = services.grievance_register(
                acting_user=request.user,
                category=data["category"],
                description=data["description"],
                channel=data["channel"],
                district=data.get("district"),
                household=household,
                complainant=data.get("complainant"),
                complainant_name=data["complainant_name"],
                complainant_contact=data["complainant_contact"],
                anonymous=data["anonymous"],
                programme=data.get("programme"),
                payment=data.get("payment"),
                payment_not_received=bool(data.get("payment_not_received")),
                sensitive=data["sensitive"],
                priority=data["priority"],
                idempotency_key=data["idempotency_key"],
            )
            if data.get("attachment"):
                services.grievance_attachment_add(
                    acting_user=request.user,
                    grievance=grievance,
                    file=data["attachment"],
                    description=data["attachment_description"],
                )
    except PermissionDenied as refusal:
        form.add_error(None, str(refusal))
        return None
    except ValidationError as problem:
        _errors_on_form(problem, form)
        return None
    return grievance


@login_required
@require_http_methods(["GET", "POST"])
def record(request: HttpRequest) -> HttpResponse:
    """A grievance without a registered household: an anonymous or unregistered person, the window's district."""
    return _record_page(request, None)


@login_required
@require_http_methods(["GET", "POST"])
def record_for_household(request: HttpRequest, pk: int) -> HttpResponse:
    household = get_object_or_404(
        households_for(request.user).select_related("village", "village__parent", "district", "head"), pk=pk
    )
    return _record_page(request, household)


# --- one grievance: its page and its moves ---------------------------------------------------


@dataclass
class Move:
    key: str
    to_status: str
    label: str
    form_class: type
    # A move without fields beyond a note is a button; the others open a small form.
    button_only: bool = False
    danger: bool = False


MOVES = {
    "acknowledge": Move("acknowledge", S.ACKNOWLEDGED, "Acknowledge", AcknowledgeForm, button_only=True),
    "assign": Move("assign", S.ASSIGNED, "Assign", AssignForm),
    "investigated": Move("investigated", S.INVESTIGATED, "Record the findings", FindingsForm),
    "escalate": Move("escalate", S.ESCALATED, "Escalate", EscalateForm),
    "resolve": Move("resolve", S.RESOLVED, "Resolve", ResolveForm),
    "uphold": Move("uphold", S.RESOLVED, "Uphold the appeal", UpholdForm),
    "not_upheld": Move("not_upheld", S.RESOLVED, "Appeal not upheld", ResolveForm, danger=True),
    "close": Move("close", S.CLOSED, "Close", CloseForm),
}


def _is_appeal(grievance: Grievance) -> bool:
    return grievance.category == GrievanceCategory.ELIGIBILITY and grievance.household_id is not None


def _move_keys(grievance: Grievance, user) -> list[str]:
    keys = []
    for to_status in services.grievance_moves_for(grievance=grievance, user=user):
        if to_status == S.RESOLVED and _is_appeal(grievance):
            # Upholding corrects the registry: only the window edits it.
            keys += ["uphold", "not_upheld"] if user.can_edit_registry else ["not_upheld"]
        else:
            keys += [
                key
                for key, move in MOVES.items()
                if move.to_status == to_status and key not in ("uphold", "not_upheld")
            ]
    return keys


def _move_form(move: Move, grievance: Grievance, data=None):
    if move.form_class is AssignForm:
        return AssignForm(
            data,
            officers=_officers_for(grievance),
            agencies=None if grievance.sensitive else Agency.objects.filter(active=True).order_by("name"),
            initial={"assigned_to": grievance.assigned_to_id, "assigned_agency": grievance.assigned_agency_id},
        )
    if move.form_class is UpholdForm:
        members = Member.objects.filter(household_id=grievance.household_id, status=MemberStatus.PRESENT).order_by("pk")
        return UpholdForm(
            data,
            members=members,
            household_attributes=_household_attributes_read_by(grievance.programme),
            household=grievance.household,
            initial={"member": grievance.complainant_id},
        )
    return move.form_class(data)


def _move_label(move: Move, grievance: Grievance) -> str:
    if move.key == "assign" and grievance.status == S.ASSIGNED:
        return "Reassign"
    if move.key == "escalate" and grievance.status == S.RESOLVED:
        return "Escalate: the person does not accept"
    return move.label


def _call_move(move: Move, grievance: Grievance, user, form) -> Grievance:
    data = form.cleaned_data
    common = {"acting_user": user, "grievance": grievance, "idempotency_key": data.get("idempotency_key", "")}
    if move.key == "acknowledge":
        return services.grievance_acknowledge(note=data["note"], **common)
    if move.key == "assign":
        return services.grievance_assign(
            to_user=data.get("assigned_to"), to_agency=data.get("assigned_agency"), note=data["note"], **common
        )
    if move.key == "investigated":
        return services.grievance_investigated(findings=data["findings"], **common)
    if move.key == "escalate":
        return services.grievance_escalate(to=data["escalated_to"], reason=data["reason"], **common)
    if move.key == "resolve":
        return services.grievance_resolve(resolution=data["resolution"], **common)
    if move.key == "not_upheld":
        return services.grievance_resolve(
            resolution=data["resolution"], appeal_outcome=AppealOutcome.NOT_UPHELD, **common
        )
    if move.key == "uphold":
        member_values = form.member_values()
        corrections = [services.MemberCorrection(data["member"], member_values)] if member_values else []
        return services.appeal_uphold(
            resolution=data["resolution"],
            household_attributes=form.attribute_values() or None,
            member_corrections=corrections,
            **common,
        )
    if move.key == "close":
        return services.grievance_close(accepted=data["accepted"], note=data["note"], **common)
    raise ValueError(move.key)


MOVE_DONE = {
    "acknowledge": "acknowledged: print the slip for the person",
    "assign": "assigned",
    "investigated": "findings recorded",
    "escalate": "escalated",
    "resolve": "resolved: tell the person, then close it",
    "uphold": "appeal upheld, the record corrected and the household re-assessed",
    "not_upheld": "appeal not upheld: tell the person, then close it",
    "close": "closed",
}


def _history(grievance: Grievance) -> list[dict]:
    """Each step with who, when and what changed, in words (officer and agency names, not ids)."""
    events = list(grievance.events.select_related("actor").order_by("at", "id"))
    user_ids, agency_ids = set(), set()
    for event in events:
        user_ids.update(v for v in (event.changes or {}).get("assigned_to", []) if v)
        agency_ids.update(v for v in (event.changes or {}).get("assigned_agency", []) if v)
    users = {u.pk: u.get_full_name() or u.username for u in User.objects.filter(pk__in=user_ids)} if user_ids else {}
    agencies = dict(Agency.objects.filter(pk__in=agency_ids).values_list("pk", "name")) if agency_ids else {}
    rows = []
    for event in events:
        changes = event.changes or {}
        lines = []
        note = event.note
        if not event.from_status:
            # The service notes the channel as its code ("By walk_in."): said in words instead.
            channel = note.removeprefix("By ").rstrip(".")
            if channel in GrievanceChannel.values:
                lines.append(("Received by", GrievanceChannel(channel).label))
                note = ""
        if event.to_status == S.ASSIGNED:
            to_user = (changes.get("assigned_to") or [None, None])[1]
            to_agency = (changes.get("assigned_agency") or [None, None])[1]
            lines.append(("Assigned to", users.get(to_user) or agencies.get(to_agency) or "—"))
        if changes.get("escalated_to") and changes["escalated_to"][1]:
            lines.append(("Escalated to", _escalation_word(changes["escalated_to"][1])))
        if "appeal_outcome" in changes:
            lines.append(("Appeal", AppealOutcome(changes["appeal_outcome"][1]).label))
        if "eligibility" in changes:
            before, after = changes["eligibility"]
            lines.append(("Eligibility", f"{_outcome_word(before)} → {_outcome_word(after)}"))
        if "resolution_accepted" in changes and changes["resolution_accepted"][1] is not None:
            lines.append(("Person accepted the resolution", "yes" if changes["resolution_accepted"][1] else "no"))
        rows.append({"event": event, "lines": lines, "note": note})
    return rows


def _escalation_word(value: str) -> str:
    from .models import EscalationLevel

    return EscalationLevel(value).label if value in EscalationLevel.values else value


def _outcome_word(value: str) -> str:
    return EligibilityOutcome(value).label if value in EligibilityOutcome.values else (value or "not assessed")


def _grievance_page(
    request,
    grievance: Grievance,
    *,
    failed: dict | None = None,
    attachment_form: AttachmentForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The grievance page; `failed` is the move whose form came back with errors: shown open with them,
    or on top for a move that has no form of its own (a button) or that the user is not offered."""
    user = request.user
    moves = []
    shown_in_form = False
    for key in _move_keys(grievance, user):
        move = MOVES[key]
        entry = {
            "key": key,
            "label": _move_label(move, grievance),
            "button_only": move.button_only,
            "danger": move.danger,
            "form": _move_form(move, grievance),
            "open": False,
        }
        if failed and failed["key"] == key and not move.button_only:
            entry["form"], entry["open"], shown_in_form = failed["form"], True, True
        moves.append(entry)
    move_errors = []
    if failed and not shown_in_form:
        form = failed["form"]
        move_errors = [
            *form.non_field_errors(),
            *(e for n, errs in form.errors.items() if n != "__all__" for e in errs),
        ]
    appeal = None
    if grievance.category == GrievanceCategory.ELIGIBILITY and grievance.programme_id and grievance.household_id:
        current = EligibilityResult.objects.filter(
            household_id=grievance.household_id, programme_id=grievance.programme_id
        ).first()
        appeal = {"current": current}
    may_attach = services.may_act(user, grievance) or grievance.created_by_id == user.pk
    return render(
        request,
        "grievances/grievance_detail.html",
        {
            "grievance": grievance,
            "household": grievance.household,
            "moves": moves,
            "move_errors": move_errors,
            "is_overdue": is_overdue(grievance),
            "history": _history(grievance),
            "attachments": list(grievance.attachments.select_related("uploaded_by").order_by("uploaded_at", "id")),
            "attachment_form": attachment_form or (AttachmentForm() if may_attach else None),
            "can_print": grievance.status != S.RECEIVED,
            "appeal": appeal,
        },
        status=status,
    )


@login_required
@require_GET
def grievance_page(request: HttpRequest, number: str) -> HttpResponse:
    grievance = _grievance_or_404(request, number)
    if number != grievance.number:
        # A plain id or a lower-case reference: one address per grievance.
        return redirect(_grievance_url(grievance))
    return _grievance_page(request, grievance)


@login_required
@require_POST
def grievance_move(request: HttpRequest, number: str) -> HttpResponse:
    """One step of a grievance (acknowledge, assign, findings, escalate, resolve, uphold, close): one service call."""
    grievance = _grievance_or_404(request, number)
    move = MOVES.get(request.POST.get("move", ""))
    if move is None:
        raise Http404("No such step.")
    form = _move_form(move, grievance, request.POST)
    status = 400
    if form.is_valid():
        try:
            grievance = _call_move(move, grievance, request.user, form)
        except PermissionDenied as refusal:
            form.add_error(None, str(refusal) or "You may not make this change.")
            status = 403
        except ValidationError as problem:
            _errors_on_form(problem, form)
        else:
            if getattr(grievance, "repeated", False):
                # A second click, or a colleague a moment earlier: done once, and the page says so.
                messages.info(
                    request,
                    f"Grievance {grievance.number} is already {grievance.get_status_display().lower()}; "
                    "nothing more was recorded.",
                )
            else:
                messages.success(request, f"Grievance {grievance.number}: {MOVE_DONE[move.key]}.")
            return redirect(_safe_next(request, _grievance_url(grievance)))
    next_url = _safe_next(request, "")
    if next_url:
        # From a list: the list again, with the reason on top.
        for text in [*form.non_field_errors(), *(e for f in form.errors.values() for e in f)]:
            messages.error(request, f"Grievance {grievance.number}: {text}")
        return redirect(next_url)
    grievance = _grievance_or_404(request, grievance.number)
    return _grievance_page(request, grievance, failed={"key": move.key, "form": form}, status=status)


@login_required
@require_POST
def attachment_add(request: HttpRequest, number: str) -> HttpResponse:
    grievance = _grievance_or_404(request, number)
    form = AttachmentForm(request.POST, request.FILES)
    status = 400
    if form.is_valid():
        try:
            services.grievance_attachment_add(
                acting_user=request.user,
                grievance=grievance,
                file=form.cleaned_data["attachment"],
                description=form.cleaned_data["description"],
            )
        except PermissionDenied as refusal:
            form.add_error(None, str(refusal))
            status = 403
        except ValidationError as problem:
            _errors_on_form(problem, form)
        else:
            messages.success(request, f"Document added to grievance {grievance.number}.")
            return redirect(_grievance_url(grievance) + "#attachments")
    return _grievance_page(request, grievance, attachment_form=form, status=status)


@login_required
@require_GET
def attachment_download(request: HttpRequest, number: str, attachment_id: int) -> HttpResponse:
    """A document on a grievance, served only to those who may see the grievance (it is personal data)."""
    grievance = _grievance_or_404(request, number)
    attachment = get_object_or_404(grievance.attachments.all(), pk=attachment_id)
    personal_data_export_record(
        user=request.user,
        kind=ExportKind.ATTACHMENT,
        what=f"A document of grievance {grievance.number}",
        file_name=attachment.file.name.rsplit("/", 1)[-1],
        address=request.get_full_path(),
    )
    return FileResponse(
        attachment.file.open("rb"), as_attachment=False, filename=attachment.file.name.rsplit("/", 1)[-1]
    )


@login_required
@require_GET
def open_by_number(request: HttpRequest) -> HttpResponse:
    """The "open a grievance" box: the reference on the person's slip. Unknown and out of scope read the same."""
    form = OpenGrievanceForm(request.GET)
    fallback = _safe_next(request, reverse("grievances:worklist"))
    if not form.is_valid():
        for text in form.errors.get("number", []):
            messages.error(request, text)
        return redirect(fallback)
    grievance = grievances_for(request.user).filter(pk=form.cleaned_data["number"]).only("pk").first()
    if grievance is None:
        messages.error(request, f"No grievance {request.GET.get('number', '').strip()} in your districts.")
        return redirect(fallback)
    return redirect(_grievance_url(grievance))


# --- the acknowledgement slip ------------------------------------------------------------------


@login_required
@require_GET
def slip(request: HttpRequest, number: str) -> HttpResponse:
    grievance = _grievance_or_404(request, number)
    query = f"?{request.GET.urlencode()}" if request.GET else ""
    if number != grievance.number:
        return redirect(reverse("grievances:slip", args=[grievance.number]) + query)
    if grievance.status == S.RECEIVED:
        messages.error(request, f"Acknowledge grievance {grievance.number} first: the slip confirms it.")
        return redirect(_grievance_url(grievance))
    return render(
        request,
        "grievances/slip.html",
        {
            "grievance": grievance,
            "household": grievance.household,
            # segno's SVG is markup we made from a reference we made.
            "qr": mark_safe(qr_svg(grievance.number)),  # noqa: S308
            "format": "receipt" if request.GET.get("format") == "receipt" else "a4",
            "printed_at": timezone.localtime(),
        },
    )


# --- the worklist --------------------------------------------------------------------------


@login_required
@require_GET
def worklist(request: HttpRequest) -> HttpResponse:
    user = request.user
    is_agency = user.role == Role.PROGRAMME_OFFICER and user.agency_id is not None
    districts = list(districts_for(user).order_by("name"))
    programmes = _programmes_for_user(user)
    if is_agency:
        programmes = programmes.filter(agency_id=user.agency_id)
    form = WorklistFilterForm(
        request.GET or None,
        programmes=list(programmes),
        districts=districts,
        mine_label=f"Assigned to me or {user.agency.code}" if is_agency else "Assigned to me",
    )
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    status = data.get("status") or ""
    programme_id = None
    if data.get("programme"):
        programme_id = next((p.pk for p in programmes if p.code == data["programme"]), -1)
    listing = grievance_worklist(
        user=user,
        status="" if status == "all" else status,
        category=data.get("category") or "",
        overdue=bool(data.get("overdue")),
        mine=bool(data.get("mine")),
        open_only=status != "all",
        district_id=data.get("district"),
        programme_id=programme_id,
    ).select_related("complainant", "household__head")
    page = Paginator(listing, WORKLIST_PAGE_SIZE).get_page(request.GET.get("page"))
    today = timezone.localdate()
    query = request.GET.copy()
    query.pop("page", None)
    counts = worklist_counts(user=user)
    return render(
        request,
        "grievances/worklist.html",
        {
            "form": form,
            "open_form": OpenGrievanceForm(),
            "page": page,
            "rows": [{"grievance": g, "overdue": is_overdue(g, today)} for g in page.object_list],
            "counts": counts,
            "status_counts": [
                {"status": value, "label": label, "count": counts.by_status[value]}
                for value, label in S.choices
                if value in OPEN_STATUSES or value == S.RESOLVED
            ],
            "filter_query": query.urlencode(),
            "is_filtered": any(
                data.get(key) for key in ("status", "category", "programme", "district", "overdue", "mine")
            ),
            "may_record": may_record(user),
            "is_agency": is_agency,
        },
    )
