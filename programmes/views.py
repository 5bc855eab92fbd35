"""The catalogue as the front desk reads it, and the household's "re-check now".

Views read through `programmes.selectors` and write through
`programmes.services`. The catalogue holds no personal data: every signed-in
user reads all of it. Re-checking a household is allowed to anyone who can
see the household: it changes no registry data, only refreshes the stored
eligibility from the data and rules already there, so a committee member or a
programme officer looking at a stale result may refresh it too.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from registry.models import Location, LocationLevel
from registry.selectors import households_for
from spf.scope import district_ids_for

from .models import EnrolmentMode, Programme
from .selectors import household_stored_outcomes, programme_by_code, programme_catalogue
from .services import eligibility_recompute_household
from .templatetags.programmes_display import outcome_words

# The query value that widens the catalogue from the user's districts to the country.
EVERY_DISTRICT = "all"


def _is_ministry(user) -> bool:
    return district_ids_for(user) is None


def how_to_enrol(programme: Programme) -> str:
    """The enrolment mode in the words an officer says to the person at the window."""
    if programme.enrolment_mode == EnrolmentMode.DIRECT:
        return "Enrolled here at the window: no referral needed."
    return f"The one-stop shop refers the household to {programme.agency.name}, which decides and enrols."


# The catalogue holds no personal data: it is public, for the citizen at the
# window or at home as much as for the officer.
@require_GET
def catalogue(request: HttpRequest) -> HttpResponse:
    """What programmes exist here and who they are for; "here" is the user's districts unless they ask for all."""
    own_ids = district_ids_for(request.user)
    districts = (
        Location.objects.filter(level=LocationLevel.DISTRICT, programmes__isnull=False).distinct().order_by("name")
    )
    chosen = request.GET.get("district", "")
    programmes = programme_catalogue()
    selected = None
    if chosen and chosen != EVERY_DISTRICT:
        selected = districts.filter(code=chosen.upper()).first()
        programmes = programmes.filter(coverage__district=selected) if selected else programmes.none()
    elif not chosen and own_ids:
        programmes = programmes.filter(coverage__district_id__in=own_ids).distinct()
        chosen = "mine"
    else:
        chosen = EVERY_DISTRICT
    entries = [{"programme": p, "how_to_enrol": how_to_enrol(p)} for p in programmes]
    return render(
        request,
        "programmes/catalogue.html",
        {
            "entries": entries,
            "districts": districts,
            "chosen": chosen,
            "selected": selected,
            "has_own_districts": bool(own_ids),
            "every_district": EVERY_DISTRICT,
        },
    )


@require_GET
def programme_page(request: HttpRequest, code: str) -> HttpResponse:
    try:
        # Ministry staff also open draft and suspended programmes (to check
        # them before they go live); everyone else sees what is active.
        programme = programme_by_code(code=code, include_inactive=_is_ministry(request.user))
    except Programme.DoesNotExist:
        raise Http404("No such programme.") from None
    return render(
        request,
        "programmes/programme_detail.html",
        {"programme": programme, "how_to_enrol": how_to_enrol(programme), "coverage": list(programme.coverage.all())},
    )


@login_required
@require_POST
def household_recheck(request: HttpRequest, pk: int) -> HttpResponse:
    """Re-assess one household now, in this request, and say what changed."""
    household = get_object_or_404(households_for(request.user), pk=pk)
    before = household_stored_outcomes(household_id=household.pk)
    assessments = eligibility_recompute_household(household_id=household.pk)
    after = household_stored_outcomes(household_id=household.pk)
    names = dict(Programme.objects.filter(pk__in=set(before) | set(after)).values_list("pk", "name"))
    changes = [
        f"{names.get(programme_id, 'a programme')}: {outcome_words(before.get(programme_id))} → "
        f"{outcome_words(after.get(programme_id))}"
        for programme_id in sorted(set(before) | set(after), key=lambda i: names.get(i, ""))
        if before.get(programme_id) != after.get(programme_id)
    ]
    if not assessments:
        messages.info(request, "Re-checked: no active programme with a rule runs in this household's district.")
    elif changes:
        messages.success(request, "Re-checked now. Changed: " + "; ".join(changes) + ".")
    else:
        messages.success(request, f"Re-checked now against {len(assessments)} programme(s): nothing changed.")
    return redirect(reverse("frontdesk:household", args=[household.pk]) + "#programmes")
