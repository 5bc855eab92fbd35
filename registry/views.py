"""The front desk: search, register, the household page and its life events.

Views read through `registry.selectors` and write through `registry.services`;
they only turn requests into calls and results into pages. Scope and role:
a household outside the user's districts is a 404 on every page and action
(guessing ids tells nothing), a user whose role cannot change the registry
gets 403 on the forms that would.
"""

from collections.abc import Callable
from contextlib import contextmanager

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.decorators.http import require_GET, require_http_methods

from programmes.selectors import household_programme_panel
from referrals.selectors import household_referrals

from . import services
from .attributes import active_definitions
from .display import attribute_display, attribute_labels, history_rows, member_age, member_disability
from .forms import (
    EventDateForm,
    HeadChangeForm,
    HouseholdEditForm,
    HouseholdForm,
    HouseholdMoveForm,
    HouseholdStatusForm,
    MemberForm,
    MemberFormSet,
    MoveInForm,
    MoveInLookupForm,
    SearchForm,
    show_service_errors,
)
from .models import AttributeEntity, ChangeAction, Household, Member, MemberStatus, Relationship
from .selectors import (
    household_detail,
    household_history,
    household_member_counts,
    household_search,
    households_for,
    member_duplicate_candidates,
    villages_for,
)

# A household's history grows by a few entries a year; a page of this many
# covers most households without a second page and stays light on a phone.
HISTORY_PAGE_SIZE = 20
MEMBER_FORMSET_PREFIX = "members"


# --- access ------------------------------------------------------------------------


def _require_editor(user) -> None:
    if not user.can_edit_registry:
        raise PermissionDenied("Your role can read the registry but not change it.")


@contextmanager
def _service_call(user):
    """A service's PermissionDenied is about scope for an editor (404) and about role otherwise (403)."""
    try:
        yield
    except PermissionDenied:
        if user.can_edit_registry:
            raise Http404("No such household in your districts.") from None
        raise


def _household_for_action(request: HttpRequest, pk: int) -> Household:
    """The household a form acts on: 404 outside the user's districts, then 403 for a reader."""
    household = get_object_or_404(
        households_for(request.user).select_related("village", "village__parent", "district", "head"), pk=pk
    )
    _require_editor(request.user)
    return household


def _member_of(household: Household, member_pk: int) -> Member:
    return get_object_or_404(Member.objects.filter(household=household), pk=member_pk)


def _household_url(household: Household) -> str:
    return reverse("frontdesk:household", args=[household.pk])


# --- search --------------------------------------------------------------------------


@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    query = form.cleaned_data["q"].strip() if form.is_valid() else ""
    hits = household_search(user=request.user, query=query) if query else []
    counts = household_member_counts([hit.household.pk for hit in hits]) if hits else {}
    today = timezone.localdate()
    results = [
        {
            "hit": hit,
            "household": hit.household,
            "person": hit.member or hit.household.head,
            "age": member_age(hit.member or hit.household.head, today) if (hit.member or hit.household.head) else "",
            "members_present": counts.get(hit.household.pk, 0),
        }
        for hit in hits
    ]
    return render(
        request,
        "registry/search.html",
        {"form": form, "query": query, "results": results, "too_short": bool(query) and len(query) < 2},
    )


# --- registration ------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def household_new(request: HttpRequest) -> HttpResponse:
    _require_editor(request.user)
    villages = villages_for(request.user)
    household_definitions = active_definitions(AttributeEntity.HOUSEHOLD)
    member_definitions = active_definitions(AttributeEntity.MEMBER)
    initial_members = [{"relationship": Relationship.HEAD}]
    duplicates = []
    if request.method == "POST":
        form = HouseholdForm(request.POST, villages=villages, attribute_definitions=household_definitions)
        formset = MemberFormSet(
            request.POST,
            prefix=MEMBER_FORMSET_PREFIX,
            initial=initial_members,
            attribute_definitions=member_definitions,
        )
        if form.is_valid() and formset.is_valid():
            member_forms = formset.filled_forms()
            try:
                with _service_call(request.user):
                    household = services.household_register(
                        acting_user=request.user,
                        members=[
                            services.MemberInput(
                                values=member_form.member_values(), attributes=member_form.attribute_values()
                            )
                            for member_form in member_forms
                        ],
                        **form.service_arguments(),
                    )
            except ValidationError as problem:
                show_service_errors(problem, form, members=member_forms, formset=formset)
            except services.DuplicateSuspected as suspected:
                duplicates = suspected.candidates
            except services.AlreadyRegistered as done:
                messages.info(
                    request,
                    f"This form was already sent: household {done.household.number} is registered, once. Here it is.",
                )
                return redirect(_household_url(done.household))
            else:
                messages.success(request, f"Household {household.number} is registered.")
                return redirect(_household_url(household))
    else:
        form = HouseholdForm(
            villages=villages,
            attribute_definitions=household_definitions,
            initial={"phone": request.GET.get("phone", "")},
        )
        formset = MemberFormSet(
            prefix=MEMBER_FORMSET_PREFIX, initial=initial_members, attribute_definitions=member_definitions
        )
    status = 200 if request.method == "GET" else (409 if duplicates else 400)
    return render(
        request,
        "registry/household_new.html",
        {
            "form": form,
            "formset": formset,
            "duplicates": duplicates,
            "show_confirm": bool(duplicates) or (form.is_bound and form.data.get("duplicates_confirmed")),
            "has_villages": villages.exists(),
        },
        status=status,
    )


@login_required
@require_GET
def duplicate_check(request: HttpRequest) -> JsonResponse:
    """People who may already be registered, for the warning beside a member being typed."""
    _require_editor(request.user)
    first_name = request.GET.get("first_name", "").strip()
    last_name = request.GET.get("last_name", "").strip()
    if not first_name or not last_name:
        return JsonResponse({"candidates": []})
    village = None
    village_id = request.GET.get("village", "")
    if village_id.isdigit():
        village = villages_for(request.user).filter(pk=int(village_id)).first()
    try:
        date_of_birth = parse_date(request.GET.get("date_of_birth", "") or "")
    except ValueError:
        date_of_birth = None
    candidates = member_duplicate_candidates(
        acting_user=request.user,
        first_name=first_name,
        middle_name=request.GET.get("middle_name", "").strip(),
        last_name=last_name,
        date_of_birth=date_of_birth,
        village=village,
    )
    return JsonResponse(
        {
            "candidates": [
                {**candidate.as_dict(), "url": reverse("frontdesk:household", args=[candidate.member.household_id])}
                for candidate in candidates
            ]
        }
    )


# --- the household page ----------------------------------------------------------


@login_required
@require_GET
def household_page(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        household = household_detail(user=request.user, household_id=pk)
    except Household.DoesNotExist:
        raise Http404("No such household in your districts.") from None
    today = timezone.localdate()
    labels = attribute_labels()
    members = [
        {
            "member": member,
            "age": member_age(member, today),
            "disability": member_disability(member),
            "attributes": attribute_display(member.attributes, labels[AttributeEntity.MEMBER]),
            "present": member.status == MemberStatus.PRESENT,
        }
        for member in household.members.all()
    ]
    history_page = Paginator(household_history(household=household), HISTORY_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "registry/household_detail.html",
        {
            "household": household,
            "members": members,
            "present_count": sum(1 for row in members if row["present"]),
            "attributes": attribute_display(household.attributes, labels[AttributeEntity.HOUSEHOLD]),
            "history": history_rows(history_page.object_list, attribute_labels=labels),
            "history_page": history_page,
            "can_edit": request.user.can_edit_registry,
            "programme_panel": household_programme_panel(household=household),
            "household_referrals": household_referrals(user=request.user, household=household),
        },
    )


# --- edits -------------------------------------------------------------------------------


def _form_page(request, household, *, template="registry/event_form.html", **context) -> HttpResponse:
    status = 400 if request.method == "POST" else 200
    return render(
        request, template, {"household": household, "cancel_url": _household_url(household), **context}, status=status
    )


def _run(request, household, form, call: Callable[[], object], success: str) -> HttpResponse | None:
    """Call the service; on success a message and the household page, on a rule broken the errors on the form."""
    try:
        with _service_call(request.user):
            call()
    except ValidationError as problem:
        show_service_errors(problem, form)
        return None
    messages.success(request, success)
    return redirect(_household_url(household))


@login_required
@require_http_methods(["GET", "POST"])
def household_edit(request: HttpRequest, pk: int) -> HttpResponse:
    household = _household_for_action(request, pk)
    form = HouseholdEditForm(request.POST or None, household=household)
    if request.method == "POST" and form.is_valid():
        done = _run(
            request,
            household,
            form,
            lambda: services.household_update(
                acting_user=request.user,
                household=household,
                values=form.changed_values(),
                attributes=form.attribute_values(),
                note=form.cleaned_data["note"],
            ),
            "The household is updated.",
        )
        if done:
            return done
    return _form_page(
        request,
        household,
        template="registry/household_edit.html",
        form=form,
        title=f"Edit household {household.number}",
    )


@login_required
@require_http_methods(["GET", "POST"])
def member_edit(request: HttpRequest, pk: int, member_pk: int) -> HttpResponse:
    household = _household_for_action(request, pk)
    member = _member_of(household, member_pk)
    is_head = household.head_id == member.pk
    relationships = [c for c in Relationship.choices if (c[0] == Relationship.HEAD) == is_head]
    form = MemberForm(request.POST or None, member=member, relationships=relationships)
    if request.method == "POST" and form.is_valid():
        done = _run(
            request,
            household,
            form,
            lambda: services.member_update(
                acting_user=request.user,
                member=member,
                values=form.member_values(),
                attributes=form.attribute_values(),
            ),
            f"{member.full_name}'s details are updated.",
        )
        if done:
            return done
    return _form_page(
        request,
        household,
        template="registry/member_form.html",
        form=form,
        member=member,
        title=f"Edit {member.full_name}",
        submit="Save changes",
    )


@login_required
@require_http_methods(["GET", "POST"])
def member_add(request: HttpRequest, pk: int) -> HttpResponse:
    household = _household_for_action(request, pk)
    event = ChangeAction.BIRTH if request.GET.get("event") == "birth" else ChangeAction.CREATE
    relationships = [c for c in Relationship.choices if c[0] != Relationship.HEAD or not household.head_id]
    initial = {"relationship": Relationship.CHILD} if event == ChangeAction.BIRTH else {}
    form = MemberForm(request.POST or None, relationships=relationships, initial=initial)
    if request.method == "POST" and form.is_valid():
        done = _run(
            request,
            household,
            form,
            lambda: services.member_add(
                acting_user=request.user,
                household=household,
                values=form.member_values(),
                attributes=form.attribute_values(),
                event=event,
            ),
            f"{form.cleaned_data['first_name']} {form.cleaned_data['last_name']} is added to the household.",
        )
        if done:
            return done
    title = "Record a birth" if event == ChangeAction.BIRTH else "Add a member"
    return _form_page(
        request, household, template="registry/member_form.html", form=form, title=title, submit=title, event=event
    )


def _member_leaves(request, pk, member_pk, *, service, date_label, title, success) -> HttpResponse:
    household = _household_for_action(request, pk)
    member = _member_of(household, member_pk)
    form = EventDateForm(request.POST or None, date_label=date_label, initial={"on": timezone.localdate()})
    if request.method == "POST" and form.is_valid():
        done = _run(
            request,
            household,
            form,
            lambda: service(
                acting_user=request.user,
                member=member,
                on=form.cleaned_data["on"],
                note=form.cleaned_data["note"],
            ),
            success.format(name=member.full_name),
        )
        if done:
            return done
    return _form_page(request, household, form=form, title=title.format(name=member.full_name), submit="Record")


@login_required
@require_http_methods(["GET", "POST"])
def member_death(request: HttpRequest, pk: int, member_pk: int) -> HttpResponse:
    return _member_leaves(
        request,
        pk,
        member_pk,
        date_label="Date of death",
        title="Record the death of {name}",
        success="The death of {name} is recorded.",
        service=lambda *, acting_user, member, on, note: services.member_record_death(
            acting_user=acting_user, member=member, date_of_death=on, note=note
        ),
    )


@login_required
@require_http_methods(["GET", "POST"])
def member_move_out(request: HttpRequest, pk: int, member_pk: int) -> HttpResponse:
    return _member_leaves(
        request,
        pk,
        member_pk,
        date_label="Date the person moved out",
        title="{name} moves out",
        success="{name} is recorded as moved out.",
        service=lambda *, acting_user, member, on, note: services.member_move_out(
            acting_user=acting_user, member=member, moved_on=on, note=note
        ),
    )


@login_required
@require_http_methods(["GET", "POST"])
def member_move_in(request: HttpRequest, pk: int) -> HttpResponse:
    """A person registered in another household moves into this one: find it by number, choose the person."""
    household = _household_for_action(request, pk)
    lookup = MoveInLookupForm(request.GET if "from_number" in request.GET else None)
    source, form = None, None
    if lookup.is_valid():
        number = lookup.cleaned_data["from_number"].strip().upper()
        source = (
            households_for(request.user)
            .prefetch_related(Prefetch("members", queryset=Member.objects.exclude(status=MemberStatus.DECEASED)))
            .filter(number=number)
            .first()
        )
        if source is None:
            lookup.add_error("from_number", f"No household {number} in your districts.")
        elif source.pk == household.pk:
            lookup.add_error("from_number", "That is this household; give the number of the one the person leaves.")
            source = None
        else:
            form = MoveInForm(request.POST or None, candidates=list(source.members.all()))
    if form is not None and request.method == "POST" and form.is_valid():
        member = get_object_or_404(Member.objects.filter(household=source), pk=form.cleaned_data["member"])
        done = _run(
            request,
            household,
            form,
            lambda: services.member_transfer(
                acting_user=request.user,
                member=member,
                to_household=household,
                relationship=form.cleaned_data["relationship"],
                note=form.cleaned_data["note"],
            ),
            f"{member.full_name} moved in from {source.number}.",
        )
        if done:
            return done
    return _form_page(
        request,
        household,
        template="registry/move_in.html",
        lookup=lookup,
        source=source,
        form=form,
        title="A registered person moves in",
    )


@login_required
@require_http_methods(["GET", "POST"])
def household_move(request: HttpRequest, pk: int) -> HttpResponse:
    household = _household_for_action(request, pk)
    form = HouseholdMoveForm(request.POST or None, villages=villages_for(request.user))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        done = _run(
            request,
            household,
            form,
            lambda: services.household_move(
                acting_user=request.user,
                household=household,
                village=data["village"],
                address=data["address"],
                gps_latitude=data["gps_latitude"],
                gps_longitude=data["gps_longitude"],
                note=data["note"],
            ),
            f"Household {household.number} moved to {data['village'].name}.",
        )
        if done:
            return done
    return _form_page(request, household, form=form, title="The household moves", submit="Record the move")


@login_required
@require_http_methods(["GET", "POST"])
def household_head(request: HttpRequest, pk: int) -> HttpResponse:
    household = _household_for_action(request, pk)
    candidates = [m for m in household.members.filter(status=MemberStatus.PRESENT) if m.pk != household.head_id]
    form = HeadChangeForm(request.POST or None, candidates=candidates)
    if request.method == "POST" and form.is_valid():
        new_head = next(m for m in candidates if m.pk == form.cleaned_data["new_head"])
        done = _run(
            request,
            household,
            form,
            lambda: services.household_change_head(
                acting_user=request.user,
                household=household,
                new_head=new_head,
                note=form.cleaned_data["note"],
            ),
            f"{new_head.full_name} now heads the household.",
        )
        if done:
            return done
    return _form_page(request, household, form=form, title="Change the head of the household", submit="Change head")


@login_required
@require_http_methods(["GET", "POST"])
def household_status(request: HttpRequest, pk: int) -> HttpResponse:
    household = _household_for_action(request, pk)
    form = HouseholdStatusForm(request.POST or None, initial={"status": household.status})
    if request.method == "POST" and form.is_valid():
        done = _run(
            request,
            household,
            form,
            lambda: services.household_set_status(
                acting_user=request.user,
                household=household,
                status=form.cleaned_data["status"],
                note=form.cleaned_data["note"],
            ),
            "The household's status is recorded.",
        )
        if done:
            return done
    return _form_page(request, household, form=form, title="Household moved away or dissolved", submit="Save status")
