"""Who can do what: every URL of the project, the methods it answers, and for each kind of user the answer
they must get, with the reason.

This is the one statement of the access rules of the whole site. `tests/test_permissions_table.py` asks
every address in it, as every actor, against a small world of real objects (everything an address names
belongs to district A) and fails when an answer differs, when a refused request changed the database,
when district B's officer reads district A's people on a page they may open, or when a URL pattern has no
row here. `docs/permissions.md` is generated from it (`python manage.py permissions_doc`) and a test keeps
the two identical.

It lives in `spf/` beside `spf/scope.py` rather than in `tests/` because it is a statement about the
product that the documentation command reads too; it imports nothing from the apps, so it costs nothing
at run time.

Outcomes:

- `ok`: answered (2xx, or a redirect that is not to a login page). For a POST or PATCH a validation
  error (400, 409) is also `ok`: the request got past every check of who may ask.
- `login`: sent to a login page (a page asked anonymously; the admin asked by someone not staff).
- `401`: the API or DCI without valid credentials.
- `403`: the user's role may not do this (known to exist, refused).
- `404`: not there for this user: out of their districts, their agency or their designation, answered
  exactly as for an object that does not exist, so guessing addresses tells nothing.
- `400`: the body names something the user may not see (a household of another district): refused as
  a field error, in the same words as for something that does not exist.
- `miss`: a look-up box (open a referral or grievance by its number) that sends the user back to the
  list with "no such … in your districts", the same words as for an unknown number.

A refused answer (`login`, `401`, `403`, `404`, `400`, `miss`) must write nothing to the project's tables.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

OK, LOGIN, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, MISS = "ok", "login", "401", "403", "404", "miss"
NOT_THEIRS = "400"
REFUSALS = (LOGIN, UNAUTHENTICATED, FORBIDDEN, NOT_FOUND, MISS, NOT_THEIRS)

# The people who use the pages and the API, in the order the documentation's columns show them.
USER_ACTORS = {
    "anonymous": "Anonymous",
    "desk_a": "Desk A",
    "officer_x": "Officer X",
    "committee_a": "Committee A",
    "ministry": "Ministry",
    "superuser": "Superuser",
    "desk_b": "Desk B on A",
}
# On grievances, also a front-desk officer of A who is a designated officer for sensitive grievances.
GRIEVANCE_ACTORS = {**USER_ACTORS, "designated_a": "Designated A"}
# Pages that do not depend on the role: someone anonymous, and anyone signed in (asked as A's front desk).
SITE_ACTORS = {"anonymous": "Anonymous", "signed_in": "Signed in"}
# Who calls /dci/: partner systems with bearer tokens, and a user's API token that must not open it.
DCI_ACTORS = {
    "anonymous": "No token",
    "partner": "Partner (every exchange)",
    "search_only_partner": "Partner (registry search only)",
    "user_token": "A user's API token",
}
# Methods checked for a 405 when a URL does not list them.
CHECKED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Upload:
    """A file in a request body."""

    name: str
    content: str
    content_type: str = "text/csv"


@dataclass(frozen=True)
class Rule:
    """One address asked with some methods, and what each actor must get."""

    route: str  # the URL pattern, as Django's resolver spells it ("households/<int:pk>/")
    methods: tuple[str, ...]
    path: str  # the address asked, naming the world's objects: "/households/{household.pk}/"
    outcomes: dict[str, str]
    why: str
    case: str = ""  # which object, when the same pattern is asked about more than one
    body: dict = field(default_factory=dict)  # for POST and PATCH; `Upload` values are sent as files
    # A list or export that shows district A's people to this actor: proof that B's officer, whose answer
    # must name none of them, sees a scoped list rather than one that never names anybody.
    witness: str = ""

    @property
    def label(self) -> str:
        return f"{' '.join(self.methods)} {self.path}" + (f" ({self.case})" if self.case else "")


@dataclass(frozen=True)
class Area:
    title: str
    intro: str
    rules: tuple[Rule, ...]
    actors: dict[str, str]


def area(title: str, intro: str, rules: tuple[Rule, ...], actors: dict[str, str] = USER_ACTORS) -> Area:
    """An area of the site; each rule keeps the outcomes of the area's actors."""
    rules = tuple(dataclasses.replace(r, outcomes={key: r.outcomes[key] for key in actors}) for r in rules)
    return Area(title, intro, rules, actors)


def who(anonymous, desk_a, officer_x, committee_a, ministry, superuser, desk_b, designated_a=None) -> dict[str, str]:
    """The outcome for each user actor, in the columns' order; the designated officer (asked on grievances
    only) is a front-desk officer of A and answers as one unless said otherwise."""
    return {
        "anonymous": anonymous,
        "desk_a": desk_a,
        "officer_x": officer_x,
        "committee_a": committee_a,
        "ministry": ministry,
        "superuser": superuser,
        "desk_b": desk_b,
        "designated_a": desk_a if designated_a is None else designated_a,
    }


def rule(route: str, methods: str, why: str, outcomes: dict[str, str], *, path: str = "", **more) -> Rule:
    return Rule(
        route=route, methods=tuple(methods.split()), path=path or "/" + route, outcomes=outcomes, why=why, **more
    )


# Outcomes shared by many rows.
PUBLIC = {"anonymous": OK, "signed_in": OK}
EVERYONE = who(OK, OK, OK, OK, OK, OK, OK)
SIGNED_IN_PAGE = who(LOGIN, OK, OK, OK, OK, OK, OK)
SIGNED_IN_API = who(UNAUTHENTICATED, OK, OK, OK, OK, OK, OK)
# A district-A object any role of A may read: district B's officer gets 404.
A_PAGE = who(LOGIN, OK, OK, OK, OK, OK, NOT_FOUND)
A_API = who(UNAUTHENTICATED, OK, OK, OK, OK, OK, NOT_FOUND)
# A change to district A's registry: the window (and the ministry) only; B's officer is told nothing.
REGISTRY_EDIT_PAGE = who(LOGIN, OK, FORBIDDEN, FORBIDDEN, OK, OK, NOT_FOUND)
REGISTRY_EDITORS_PAGE = who(LOGIN, OK, FORBIDDEN, FORBIDDEN, OK, OK, OK)
# The payroll of agency X's programme: its officers and the ministry run it; the window reads it.
PAYROLL_API = who(UNAUTHENTICATED, FORBIDDEN, OK, FORBIDDEN, OK, OK, FORBIDDEN)
PAYROLL_PAGE = who(LOGIN, FORBIDDEN, OK, FORBIDDEN, OK, OK, FORBIDDEN)

H = "households/<int:pk>/"
HOUSEHOLD = "/households/{household.pk}/"
MEMBER = HOUSEHOLD + "members/{member.pk}/"
PROVIDER_FILE = Upload("provider.csv", "reference,status,amount,paid_at,provider_transaction_id\r\n")
LETTER = Upload("letter.pdf", "%PDF-1.4 a letter", "application/pdf")


SITE = area(
    "The site, accounts and the API's own pages",
    "Nothing here holds personal data or depends on the role. The OpenAPI schema and its two viewers "
    "describe the API and are public, like any published API description; every call they describe needs a "
    "token.",
    (
        rule(
            "healthz",
            "GET POST PUT PATCH DELETE",
            "For load balancers: says whether the database answers, and whether the broker does and how many "
            "jobs wait for it (counts, no personal data), to any method.",
            PUBLIC,
        ),
        rule(
            "accounts/login/",
            "GET POST PUT",
            "Anyone may sign in (Django's form view takes a PUT as a POST); someone already signed in is sent "
            "on to the search page.",
            PUBLIC,
        ),
        rule("accounts/logout/", "POST", "Signing out is a POST (Django 5); harmless for anyone.", PUBLIC),
        rule(
            "api/v1/auth/token/",
            "POST",
            "Username and password for a token: open to anyone, the credentials are the check "
            "(an empty body is a 400).",
            PUBLIC,
        ),
        rule(
            "api/v1/",
            "GET",
            "The API's index of resources: for signed-in callers.",
            {"anonymous": UNAUTHENTICATED, "signed_in": OK},
        ),
        rule("api/schema/", "GET", "The OpenAPI description: public, it holds no data.", PUBLIC),
        rule("api/docs/", "GET", "Swagger UI over the schema: public, served from our own static files.", PUBLIC),
        rule("api/redoc/", "GET", "Redoc over the schema: public.", PUBLIC),
        rule(
            "^api/",
            "GET POST PUT PATCH DELETE",
            "Any other address under /api/ is the API's JSON 404, whoever asks and however.",
            {"anonymous": NOT_FOUND, "signed_in": NOT_FOUND},
            path="/api/v1/no-such-resource/",
        ),
    ),
    actors=SITE_ACTORS,
)

FRONT_DESK = area(
    "Front desk: search, registration, the household page and its life events",
    "Every signed-in user searches and reads the households of their districts (a programme officer reads "
    "those of their districts too: they serve them). Only the window (front-desk officers) and ministry "
    "staff change the registry; other roles get 403 on the forms that would. A household of another "
    "district is a 404 on every page and form, before the role is even looked at.",
    (
        rule(
            "",
            "GET",
            "The search page; results are scoped, so B's officer searching A's surname finds nothing.",
            SIGNED_IN_PAGE,
            path="/?q={household.head.last_name}",
            witness="desk_a",
        ),
        rule("households/new/", "GET POST", "Registering a household is the window's job.", REGISTRY_EDITORS_PAGE),
        rule(
            "households/duplicates/",
            "GET",
            "The duplicate warning while registering: the window's; B's officer is never offered A's people.",
            REGISTRY_EDITORS_PAGE,
            path="/households/duplicates/?first_name={household.head.first_name}&last_name={household.head.last_name}"
            "&date_of_birth={household.head.date_of_birth}",
        ),
        rule(H, "GET", "The household page: anyone who sees district A.", A_PAGE, path=HOUSEHOLD),
        rule(H + "edit/", "GET POST", "Changing the household.", REGISTRY_EDIT_PAGE, path=HOUSEHOLD + "edit/"),
        rule(H + "move/", "GET POST", "Moving the household.", REGISTRY_EDIT_PAGE, path=HOUSEHOLD + "move/"),
        rule(H + "head/", "GET POST", "Changing the head.", REGISTRY_EDIT_PAGE, path=HOUSEHOLD + "head/"),
        rule(H + "status/", "GET POST", "Dissolving or reopening.", REGISTRY_EDIT_PAGE, path=HOUSEHOLD + "status/"),
        rule(H + "members/add/", "GET POST", "Adding a member.", REGISTRY_EDIT_PAGE, path=HOUSEHOLD + "members/add/"),
        rule(
            H + "members/move-in/",
            "GET POST",
            "A person moving in from another household.",
            REGISTRY_EDIT_PAGE,
            path=HOUSEHOLD + "members/move-in/",
        ),
        rule(
            H + "members/<int:member_pk>/edit/",
            "GET POST",
            "Correcting a member.",
            REGISTRY_EDIT_PAGE,
            path=MEMBER + "edit/",
        ),
        rule(
            H + "members/<int:member_pk>/death/",
            "GET POST",
            "Recording a death.",
            REGISTRY_EDIT_PAGE,
            path=MEMBER + "death/",
        ),
        rule(
            H + "members/<int:member_pk>/move-out/",
            "GET POST",
            "A member moving out.",
            REGISTRY_EDIT_PAGE,
            path=MEMBER + "move-out/",
        ),
    ),
)

IMPORTS = area(
    "Bulk import",
    "Importing changes the registry, so only the window and ministry staff reach these pages (403 "
    "otherwise). A job is its uploader's (404 for anyone else); ministry staff see every job.",
    (
        rule("imports/", "GET", "The user's own jobs.", REGISTRY_EDITORS_PAGE),
        rule("imports/new/", "GET POST", "Uploading a file.", REGISTRY_EDITORS_PAGE),
        rule("imports/template/", "GET", "The template to fill (no data).", REGISTRY_EDITORS_PAGE),
        rule(
            "imports/<int:pk>/",
            "GET",
            "A job of A's front desk: its uploader and the ministry.",
            who(LOGIN, OK, FORBIDDEN, FORBIDDEN, OK, OK, NOT_FOUND),
            path="/imports/{import_job.pk}/",
        ),
        rule(
            "imports/<int:pk>/progress/",
            "GET",
            "The job's progress (JSON), as its page.",
            who(LOGIN, OK, FORBIDDEN, FORBIDDEN, OK, OK, NOT_FOUND),
            path="/imports/{import_job.pk}/progress/",
        ),
        rule(
            "imports/<int:pk>/report/<str:kind>.csv",
            "GET",
            "The job's row report names people: as its page.",
            who(LOGIN, OK, FORBIDDEN, FORBIDDEN, OK, OK, NOT_FOUND),
            path="/imports/{import_job.pk}/report/errors.csv",
        ),
    ),
)

PROGRAMMES = area(
    "Programme catalogue and eligibility",
    "The catalogue holds no personal data and is public. Re-checking a household's eligibility changes no "
    "registry data, so anyone who may read the household may ask for it.",
    (
        rule("programmes/", "GET", "The public catalogue.", EVERYONE),
        rule("programmes/<str:code>/", "GET", "One programme, public.", EVERYONE, path="/programmes/{programme.code}/"),
        rule(
            "programmes/households/<int:pk>/recheck/",
            "POST",
            "Re-assess a household now: anyone who reads it (committee included: it only refreshes results).",
            A_PAGE,
            path="/programmes/households/{household.pk}/recheck/",
        ),
    ),
)

R = "referrals/<str:number>/"
REFERRAL = "/referrals/{referral.number}/"
OTHER_AGENCY_REFERRAL = "/referrals/{other_agency_referral.number}/"
REFERRALS = area(
    "Referrals",
    "The window refers; an agency's officer sees only the referrals to their agency's programmes, in their "
    "districts (another agency's referral is a 404 to them). Who may make which move is the state "
    "machine's decision (`referral_transition`): the window sends and cancels, the agency receives, "
    "accepts, rejects and completes; a move the role may not make is a 403 with the reason.",
    (
        rule("referrals/", "GET", "The window's worklist, scoped.", SIGNED_IN_PAGE, witness="desk_a"),
        rule(
            "referrals/queue/", "GET", "The agency's queue: the same list, scoped.", SIGNED_IN_PAGE, witness="officer_x"
        ),
        rule(
            "referrals/open/",
            "GET",
            "Open by number (the slip's QR code): out of scope reads as unknown.",
            who(LOGIN, OK, OK, OK, OK, OK, MISS),
            path="/referrals/open/?number={referral.number}",
        ),
        rule("referrals/notifications/", "GET", "One's own notifications.", SIGNED_IN_PAGE),
        rule("referrals/notifications/read/", "POST", "Marks one's own notifications read.", SIGNED_IN_PAGE),
        rule(
            "referrals/households/<int:pk>/refer/",
            "GET POST",
            "Referring a household is the window's (and the ministry's) job.",
            REGISTRY_EDIT_PAGE,
            path="/referrals/households/{household.pk}/refer/",
        ),
        rule(
            "referrals/households/<int:pk>/slip/",
            "GET",
            "The household's slip of open referrals (each reader sees the referrals they may see).",
            A_PAGE,
            path="/referrals/households/{household.pk}/slip/",
        ),
        rule(R, "GET", "A referral to agency X's programme.", A_PAGE, path=REFERRAL, case="agency X"),
        rule(
            R,
            "GET",
            "A referral to agency Y's programme: not agency X's business.",
            who(LOGIN, OK, NOT_FOUND, OK, OK, OK, NOT_FOUND),
            path=OTHER_AGENCY_REFERRAL,
            case="agency Y",
        ),
        rule(
            R + "move/",
            "POST",
            "Cancelling is the window's move; the agency and the committee are refused it.",
            who(LOGIN, OK, FORBIDDEN, FORBIDDEN, OK, OK, NOT_FOUND),
            path=REFERRAL + "move/",
            body={"to_status": "cancelled", "reason": "Asked by the household"},
        ),
        rule(R + "slip/", "GET", "The referral's slip, as its page.", A_PAGE, path=REFERRAL + "slip/"),
        rule(
            R + "attachments/<int:attachment_id>/",
            "GET",
            "A document on the referral is personal data: as its page.",
            A_PAGE,
            path=REFERRAL + "attachments/{referral_attachment.pk}/",
        ),
    ),
)

ENROLMENT = "/payments/enrolments/{enrolment.number}/"
CYCLE = "/payments/cycles/{cycle.pk}/"
PAYMENTS = area(
    "Enrolments and payments",
    "An enrolment is scoped like its household, and for a programme officer to their agency's programmes. "
    "The agency (and the ministry) approve, suspend and exit; the window verifies and changes payment "
    "details. A payment cycle belongs to a programme in every district it runs in: the window and the "
    "committee of any such district read it with their own district's payments only; the agency and the "
    "ministry run it (403 for everyone else). The provider's reconciliation file lists every district, so "
    "only those who run the payroll see it (404 otherwise).",
    (
        rule(
            "payments/", "GET", "The work lists, scoped (the window sees what waits for verification).", SIGNED_IN_PAGE
        ),
        rule(
            "payments/households/<int:pk>/enrol/",
            "GET POST",
            "Enrolling: the page offers only the programmes the user may enrol the household in; with none "
            "(the committee, or a programme that enrols by referral) it sends them back to the household page "
            "saying so, rather than a 403.",
            A_PAGE,
            path="/payments/households/{household.pk}/enrol/",
        ),
        rule(
            "payments/enrolments/<str:number>/", "GET", "An enrolment in agency X's programme.", A_PAGE, path=ENROLMENT
        ),
        rule(
            "payments/enrolments/<str:number>/move/",
            "POST",
            "Suspending is the agency's (and the ministry's) move.",
            who(LOGIN, FORBIDDEN, OK, FORBIDDEN, OK, OK, NOT_FOUND),
            path=ENROLMENT + "move/",
            body={"to_status": "suspended", "reason": "Household asked for a pause"},
        ),
        rule(
            "payments/enrolments/<str:number>/details/",
            "POST",
            "Payment details: the window or the agency.",
            who(LOGIN, OK, OK, FORBIDDEN, OK, OK, NOT_FOUND),
            path=ENROLMENT + "details/",
            body={"channel": "mobile_money", "account_number": "0977000099", "reason": "New wallet"},
        ),
        rule(
            "payments/enrolments/<str:number>/review/",
            "POST",
            "Deciding a review is the agency's (and the ministry's); this enrolment is not under review, so "
            "they get a 400.",
            who(LOGIN, FORBIDDEN, OK, FORBIDDEN, OK, OK, NOT_FOUND),
            path=ENROLMENT + "review/",
            body={"decision": "keep", "reason": "Checked at a home visit"},
        ),
        rule("payments/cycles/", "GET", "The cycles of the programmes the user sees.", SIGNED_IN_PAGE),
        rule(
            "payments/cycles/new/",
            "POST",
            "Creating a cycle: only for a programme whose payroll the user runs; for anyone else the programme "
            "is answered as not found among theirs (404), not 403.",
            who(LOGIN, NOT_FOUND, OK, NOT_FOUND, OK, OK, NOT_FOUND),
            body={"sct-programme": "{programme.code}", "sct-period_start": "2026-12"},
        ),
        rule(
            "payments/cycles/<int:pk>/",
            "GET",
            "A cycle of a programme in districts A and B: B's officer reads it with B's payments only.",
            SIGNED_IN_PAGE,
            path=CYCLE,
            witness="desk_a",
        ),
        rule(
            "payments/cycles/<int:pk>/generate/", "POST", "Running the payroll.", PAYROLL_PAGE, path=CYCLE + "generate/"
        ),
        rule(
            "payments/cycles/<int:pk>/approve/", "POST", "Approving the payroll.", PAYROLL_PAGE, path=CYCLE + "approve/"
        ),
        rule("payments/cycles/<int:pk>/reissue/", "POST", "Reissuing payments.", PAYROLL_PAGE, path=CYCLE + "reissue/"),
        rule(
            "payments/cycles/<int:pk>/export/",
            "POST",
            "The payment file lists every district: only those who run the payroll.",
            PAYROLL_PAGE,
            path=CYCLE + "export/",
            body={"channel": "mobile_money"},
        ),
        rule(
            "payments/cycles/<int:pk>/reconcile/",
            "POST",
            "Uploading the provider's file.",
            PAYROLL_PAGE,
            path=CYCLE + "reconcile/",
            body={"file": PROVIDER_FILE},
        ),
        rule(
            "payments/reconciliations/<int:pk>/report/",
            "GET",
            "The reconciliation's row report lists every district: only those who run the payroll.",
            who(LOGIN, NOT_FOUND, OK, NOT_FOUND, OK, OK, NOT_FOUND),
            path="/payments/reconciliations/{reconciliation.pk}/report/",
        ),
    ),
)

LIST = "/beneficiary-lists/{beneficiary_list.pk}/"
BENEFICIARY_LISTS = area(
    "Beneficiary lists of existing programmes",
    "A programme's list is worked on by its agency, the ministry and the window of a district where the "
    "programme runs; the committee does not work on lists (403 on the lists, 404 on one list). The list "
    "here is agency X's, for a programme that runs in A and B, so B's officer opens it too, but each row "
    "is shown only in its own district: A's row is a 404 to them and never appears on their pages.",
    (
        rule(
            "beneficiary-lists/",
            "GET",
            "The lists of the programmes the user works on.",
            REGISTRY_EDITORS_PAGE | {"officer_x": OK},
        ),
        rule("beneficiary-lists/new/", "GET POST", "Uploading a list.", REGISTRY_EDITORS_PAGE | {"officer_x": OK}),
        rule(
            "beneficiary-lists/<int:pk>/",
            "GET",
            "A list's result.",
            who(LOGIN, OK, OK, NOT_FOUND, OK, OK, OK),
            path=LIST,
        ),
        rule(
            "beneficiary-lists/<int:pk>/mapping/",
            "GET POST",
            "The mapping step (this list is done: the page sends the user to its result).",
            who(LOGIN, OK, OK, NOT_FOUND, OK, OK, OK),
            path=LIST + "mapping/",
        ),
        rule(
            "beneficiary-lists/<int:pk>/mapping/",
            "GET POST",
            "A list not yet mapped: its page shows the file's first rows, which may name anyone of any "
            "district, so only whoever uploaded it and those who see every district map it (403 for the "
            "window).",
            who(LOGIN, FORBIDDEN, OK, NOT_FOUND, OK, OK, FORBIDDEN),
            path="/beneficiary-lists/{unmapped_list.pk}/mapping/",
            case="not yet mapped",
        ),
        rule(
            "beneficiary-lists/<int:pk>/progress/",
            "GET",
            "Progress (JSON).",
            who(LOGIN, OK, OK, NOT_FOUND, OK, OK, OK),
            path=LIST + "progress/",
        ),
        rule(
            "beneficiary-lists/<int:pk>/rows/",
            "GET",
            "The rows, each in its district only.",
            who(LOGIN, OK, OK, NOT_FOUND, OK, OK, OK),
            path=LIST + "rows/",
            witness="desk_a",
        ),
        rule(
            "beneficiary-lists/<int:pk>/review/",
            "GET",
            "The rows waiting for a decision, each in its district only.",
            who(LOGIN, OK, OK, NOT_FOUND, OK, OK, OK),
            path=LIST + "review/",
            witness="desk_a",
        ),
        rule(
            "beneficiary-lists/<int:pk>/rows/<int:row_pk>/resolve/",
            "POST",
            "Deciding district A's row.",
            who(LOGIN, OK, OK, NOT_FOUND, OK, OK, NOT_FOUND),
            path=LIST + "rows/{beneficiary_row.pk}/resolve/",
        ),
        rule(
            "beneficiary-lists/<int:pk>/report.csv",
            "GET",
            "The report, each row in its district only.",
            who(LOGIN, OK, OK, NOT_FOUND, OK, OK, OK),
            path=LIST + "report.csv",
            witness="desk_a",
        ),
    ),
)

G = "grievances/<str:number>/"
GRIEVANCE = "/grievances/{grievance.number}/"
SENSITIVE = "/grievances/{sensitive.number}/"
# A sensitive grievance: designated officers (and superusers) only, whatever the role; ministry staff too
# need the designation.
SENSITIVE_ONLY = who(LOGIN, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK)
GRIEVANCES = area(
    "Grievances",
    "A grievance is scoped to its district; a programme officer sees those about their agency's "
    "programmes or assigned to it. A sensitive grievance (fraud, abuse) exists only for designated officers "
    "(permission `grievances.handle_sensitive`), superusers and whoever recorded it: for everyone else, "
    "ministry staff included, it is a 404. Working a grievance is for the window of its district, whoever "
    "it is assigned to, the committee once escalated to it, and the ministry; others who may read it get "
    "403 on the moves.",
    (
        rule("grievances/", "GET", "The worklist, scoped.", SIGNED_IN_PAGE, witness="desk_a"),
        rule(
            "grievances/new/",
            "GET POST",
            "Recording a grievance: the window and agencies' officers; not the committee.",
            who(LOGIN, OK, OK, FORBIDDEN, OK, OK, OK),
        ),
        rule(
            "grievances/open/",
            "GET",
            "Open by reference: out of scope reads as unknown.",
            who(LOGIN, OK, OK, OK, OK, OK, MISS),
            path="/grievances/open/?number={grievance.number}",
        ),
        rule(
            "grievances/open/",
            "GET",
            "A sensitive grievance's reference opens nothing for those without the designation.",
            who(LOGIN, MISS, MISS, MISS, MISS, OK, MISS, OK),
            path="/grievances/open/?number={sensitive.number}",
            case="sensitive",
        ),
        rule(
            "grievances/households/<int:pk>/new/",
            "GET POST",
            "Recording a household's grievance: the household must be in scope (404), then the role (403).",
            who(LOGIN, OK, OK, FORBIDDEN, OK, OK, NOT_FOUND),
            path="/grievances/households/{household.pk}/new/",
        ),
        rule(G, "GET", "A grievance about agency X's programme.", A_PAGE, path=GRIEVANCE),
        rule(G, "GET", "A sensitive grievance.", SENSITIVE_ONLY, path=SENSITIVE, case="sensitive"),
        rule(
            G + "move/",
            "POST",
            "Resolving: the window of A (or the ministry); the agency and the committee read it but may not.",
            who(LOGIN, OK, FORBIDDEN, FORBIDDEN, OK, OK, NOT_FOUND),
            path=GRIEVANCE + "move/",
            body={"move": "resolve", "resolution": "Paid in the December cycle."},
        ),
        rule(
            G + "move/",
            "POST",
            "Moves on a sensitive grievance: designated officers only.",
            SENSITIVE_ONLY,
            path=SENSITIVE + "move/",
            body={"move": "resolve", "resolution": "Referred to the police."},
            case="sensitive",
        ),
        rule(G + "slip/", "GET", "The acknowledgement slip, as the page.", A_PAGE, path=GRIEVANCE + "slip/"),
        rule(
            G + "slip/",
            "GET",
            "A sensitive grievance's slip.",
            SENSITIVE_ONLY,
            path=SENSITIVE + "slip/",
            case="sensitive",
        ),
        rule(
            G + "attachments/",
            "POST",
            "Adding a document: those who work the grievance.",
            who(LOGIN, OK, FORBIDDEN, FORBIDDEN, OK, OK, NOT_FOUND),
            path=GRIEVANCE + "attachments/",
            body={"attachment": LETTER, "description": "A letter"},
        ),
        rule(
            G + "attachments/",
            "POST",
            "A document on a sensitive grievance.",
            SENSITIVE_ONLY,
            path=SENSITIVE + "attachments/",
            body={"attachment": LETTER, "description": "A letter"},
            case="sensitive",
        ),
        rule(
            G + "attachments/<int:attachment_id>/",
            "GET",
            "A document is personal data: as the grievance's page.",
            A_PAGE,
            path=GRIEVANCE + "attachments/{grievance_attachment.pk}/",
        ),
        rule(
            G + "attachments/<int:attachment_id>/",
            "GET",
            "A document of a sensitive grievance.",
            SENSITIVE_ONLY,
            path=SENSITIVE + "attachments/{sensitive_attachment.pk}/",
            case="sensitive",
        ),
    ),
    actors=GRIEVANCE_ACTORS,
)

DASHBOARD_VIEWERS = who(LOGIN, FORBIDDEN, FORBIDDEN, OK, OK, OK, FORBIDDEN)
OTHER_DISTRICTS_FIGURES = who(LOGIN, FORBIDDEN, FORBIDDEN, NOT_FOUND, OK, OK, FORBIDDEN)
DASHBOARD = area(
    "District committee dashboard",
    "For committee members (their districts) and ministry staff (every district); front-desk and programme "
    "officers work from their own lists and are refused (403). Another district's figures, exports or "
    "households are a 404 to a committee member, as for a district that does not exist.",
    (
        rule(
            "dashboard/", "GET", "District A's dashboard.", DASHBOARD_VIEWERS, path="/dashboard/?district={district.pk}"
        ),
        rule(
            "dashboard/",
            "GET",
            "District B's dashboard asked by changing the address.",
            OTHER_DISTRICTS_FIGURES,
            path="/dashboard/?district={other_district.pk}",
            case="district B",
        ),
        rule(
            "dashboard/export/<slug:table>.<str:fmt>",
            "GET",
            "A table's export.",
            DASHBOARD_VIEWERS,
            path="/dashboard/export/coverage.csv?district={district.pk}",
        ),
        rule(
            "dashboard/export/<slug:table>.<str:fmt>",
            "GET",
            "District B's table exported.",
            OTHER_DISTRICTS_FIGURES,
            path="/dashboard/export/coverage.csv?district={other_district.pk}",
            case="district B",
        ),
        rule(
            "dashboard/households/",
            "GET",
            "The households behind a figure, through the registry's scope.",
            DASHBOARD_VIEWERS,
            path="/dashboard/households/?district={district.pk}&figure=households",
            witness="committee_a",
        ),
        rule(
            "dashboard/households/",
            "GET",
            "District B's households behind a figure.",
            OTHER_DISTRICTS_FIGURES,
            path="/dashboard/households/?district={other_district.pk}&figure=households",
            case="district B",
        ),
        rule(
            "dashboard/households/export.<str:fmt>",
            "GET",
            "Their export.",
            DASHBOARD_VIEWERS,
            path="/dashboard/households/export.csv?district={district.pk}&figure=households",
            witness="committee_a",
        ),
    ),
)

AH = "api/v1/households/"
API_HOUSEHOLD = "/api/v1/households/{household.pk}/"
API_MEMBER = "/api/v1/individuals/{member.pk}/"
# Registry writes over the API: the role is checked before the object, so the agency and the committee
# get 403 even for a household out of their scope; a window officer of another district gets 404.
API_REGISTRY_EDIT = who(UNAUTHENTICATED, OK, FORBIDDEN, FORBIDDEN, OK, OK, NOT_FOUND)
API_REGISTRY_CREATE = who(UNAUTHENTICATED, OK, FORBIDDEN, FORBIDDEN, OK, OK, OK)
API_REGISTRY = area(
    "API: registry and eligibility",
    "Token auth (`Authorization: Token …`); without it, 401. Reads are scoped like the pages; writes are for "
    "the window and ministry staff.",
    (
        rule(AH, "GET", "Households in scope.", SIGNED_IN_API, witness="desk_a"),
        rule(
            AH,
            "POST",
            "Registering: the window; B's officer may register in B (this body is not valid: 400).",
            API_REGISTRY_CREATE,
            path="/api/v1/households/",
        ),
        rule(AH + "<int:pk>/", "GET", "One household.", A_API, path=API_HOUSEHOLD),
        rule(
            AH + "<int:pk>/",
            "PATCH",
            "Changing a household.",
            API_REGISTRY_EDIT,
            path=API_HOUSEHOLD,
            body={"address": "Behind the clinic"},
        ),
        rule(AH + "<int:pk>/history/", "GET", "Its change history.", A_API, path=API_HOUSEHOLD + "history/"),
        rule(
            "api/v1/households/<int:pk>/eligibility/",
            "GET",
            "Its eligibility for every programme: personal data, scoped like the household.",
            A_API,
            path=API_HOUSEHOLD + "eligibility/",
        ),
        rule("api/v1/individuals/", "GET", "Members in scope.", SIGNED_IN_API, witness="desk_a"),
        rule(
            "api/v1/individuals/",
            "POST",
            "Adding a member to district A's household: for B's officer the household does not exist, a "
            "field error (400) as for an unknown number (the payments and grievances APIs answer the same "
            "case with 404).",
            who(UNAUTHENTICATED, OK, FORBIDDEN, FORBIDDEN, OK, OK, NOT_THEIRS),
            body={
                "household": "{household.number}",
                "first_name": "New",
                "last_name": "{household.head.last_name}",
                "sex": "M",
                "relationship": "child",
            },
        ),
        rule("api/v1/individuals/<int:pk>/", "GET", "One member.", A_API, path=API_MEMBER),
        rule(
            "api/v1/individuals/<int:pk>/",
            "PATCH",
            "Correcting a member.",
            API_REGISTRY_EDIT,
            path=API_MEMBER,
            body={"middle_name": "Grace"},
        ),
        rule("api/v1/programmes/", "GET", "The catalogue.", SIGNED_IN_API),
        rule(
            "api/v1/programmes/<str:code>/",
            "GET",
            "One programme.",
            SIGNED_IN_API,
            path="/api/v1/programmes/{programme.code}/",
        ),
        rule(
            "api/v1/programmes/<str:code>/preview/",
            "POST",
            "Previewing a rule over districts: ministry staff, who write the rules.",
            who(UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, FORBIDDEN, OK, OK, FORBIDDEN),
            path="/api/v1/programmes/{programme.code}/preview/",
            body={"eligibility_rule": "true"},
        ),
        rule("api/v1/agencies/", "GET", "The agencies.", SIGNED_IN_API),
        rule(
            "api/v1/agencies/<str:code>/", "GET", "One agency.", SIGNED_IN_API, path="/api/v1/agencies/{agency.code}/"
        ),
    ),
)

AR = "/api/v1/referrals/{referral.pk}/"
API_REFERRALS = area(
    "API: referrals",
    "As the pages: scoped reads, the window refers, the state machine decides each move.",
    (
        rule("api/v1/referrals/", "GET", "Referrals in scope.", SIGNED_IN_API, witness="desk_a"),
        rule(
            "api/v1/referrals/",
            "POST",
            "Referring district A's household: the window; B's officer gets 404 for the household.",
            API_REGISTRY_EDIT,
            body={"household": "{household.number}", "programme": "{other_programme.code}", "reason": "School age"},
        ),
        rule("api/v1/referrals/<int:pk>/", "GET", "A referral to agency X.", A_API, path=AR),
        rule(
            "api/v1/referrals/<int:pk>/",
            "GET",
            "A referral to agency Y.",
            who(UNAUTHENTICATED, OK, NOT_FOUND, OK, OK, OK, NOT_FOUND),
            path="/api/v1/referrals/{other_agency_referral.pk}/",
            case="agency Y",
        ),
        rule(
            "api/v1/referrals/<int:pk>/transition/",
            "POST",
            "Cancelling is the window's move.",
            who(UNAUTHENTICATED, OK, FORBIDDEN, FORBIDDEN, OK, OK, NOT_FOUND),
            path=AR + "transition/",
            body={"status": "cancelled", "reason": "Asked by the household"},
        ),
    ),
)

AE = "/api/v1/enrolments/{enrolment.pk}/"
AC = "/api/v1/payment-cycles/{cycle.pk}/"
API_PAYMENTS = area(
    "API: enrolments, payment cycles and payments",
    "As the pages. A payment cycle is read by the window of every district its programme runs in (with "
    "their own district's totals) and run by its agency and the ministry.",
    (
        rule("api/v1/enrolments/", "GET", "Enrolments in scope.", SIGNED_IN_API, witness="desk_a"),
        rule(
            "api/v1/enrolments/",
            "POST",
            "Enrolling district A's household in agency X's programme: the agency, the ministry and the window "
            "(which needs an accepted referral for a programme that enrols by referral: without one, 400); not "
            "the committee (403); for B's officer the household is not found (404).",
            who(UNAUTHENTICATED, OK, OK, FORBIDDEN, OK, OK, NOT_FOUND),
            body={
                "household": "{household.number}",
                "programme": "{programme.code}",
                "channel": "cash",
                "pay_point": "District office",
            },
        ),
        rule("api/v1/enrolments/<int:pk>/", "GET", "One enrolment.", A_API, path=AE),
        rule(
            "api/v1/enrolments/<int:pk>/transition/",
            "POST",
            "Suspending: the agency and the ministry.",
            who(UNAUTHENTICATED, FORBIDDEN, OK, FORBIDDEN, OK, OK, NOT_FOUND),
            path=AE + "transition/",
            body={"status": "suspended", "reason": "Household asked for a pause"},
        ),
        rule(
            "api/v1/enrolments/<int:pk>/payment-details/",
            "POST",
            "Payment details: the window and the agency.",
            who(UNAUTHENTICATED, OK, OK, FORBIDDEN, OK, OK, NOT_FOUND),
            path=AE + "payment-details/",
            body={"channel": "mobile_money", "account_number": "0977000099", "reason": "New wallet"},
        ),
        rule(
            "api/v1/enrolments/<int:pk>/review/",
            "POST",
            "Deciding a review: the agency and the ministry (not under review: 400 for them).",
            who(UNAUTHENTICATED, FORBIDDEN, OK, FORBIDDEN, OK, OK, NOT_FOUND),
            path=AE + "review/",
            body={"keep": True, "reason": "Checked at a home visit"},
        ),
        rule("api/v1/payment-cycles/", "GET", "Cycles in scope.", SIGNED_IN_API),
        rule(
            "api/v1/payment-cycles/",
            "POST",
            "Creating a cycle: the agency and the ministry.",
            PAYROLL_API,
            body={"programme": "{programme.code}", "period_start": "2026-12-01"},
        ),
        rule(
            "api/v1/payment-cycles/<int:pk>/",
            "GET",
            "One cycle; B's officer reads it with B's totals only.",
            SIGNED_IN_API,
            path=AC,
        ),
        rule(
            "api/v1/payment-cycles/<int:pk>/generate/",
            "POST",
            "Running the payroll.",
            PAYROLL_API,
            path=AC + "generate/",
        ),
        rule("api/v1/payment-cycles/<int:pk>/approve/", "POST", "Approving it.", PAYROLL_API, path=AC + "approve/"),
        rule("api/v1/payment-cycles/<int:pk>/reissue/", "POST", "Reissuing.", PAYROLL_API, path=AC + "reissue/"),
        rule(
            "api/v1/payment-cycles/<int:pk>/export/",
            "POST",
            "The payment file (every district).",
            PAYROLL_API,
            path=AC + "export/?channel=mobile_money",
        ),
        rule(
            "api/v1/payment-cycles/<int:pk>/reconcile/",
            "POST",
            "The provider's file.",
            PAYROLL_API,
            path=AC + "reconcile/",
            body={"file": PROVIDER_FILE},
        ),
        rule(
            "api/v1/payment-cycles/<int:pk>/reconciliations/<int:reconciliation_id>/report/",
            "GET",
            "A reconciliation's report (every district): those who run the payroll; for the others it does "
            "not exist (404).",
            who(UNAUTHENTICATED, NOT_FOUND, OK, NOT_FOUND, OK, OK, NOT_FOUND),
            path=AC + "reconciliations/{reconciliation.pk}/report/",
        ),
        rule("api/v1/payments/", "GET", "Payments in scope.", SIGNED_IN_API, witness="desk_a"),
        rule("api/v1/payments/<int:pk>/", "GET", "District A's payment.", A_API, path="/api/v1/payments/{payment.pk}/"),
    ),
)

AG = "/api/v1/grievances/{grievance.pk}/"
AS = "/api/v1/grievances/{sensitive.pk}/"
API_SENSITIVE_ONLY = who(UNAUTHENTICATED, NOT_FOUND, NOT_FOUND, NOT_FOUND, NOT_FOUND, OK, NOT_FOUND, OK)
# A move on district A's ordinary grievance: the window and the ministry work it; the agency and the
# committee read it but may not move it.
API_GRIEVANCE_WORK = who(UNAUTHENTICATED, OK, FORBIDDEN, FORBIDDEN, OK, OK, NOT_FOUND)
API_GRIEVANCE_MOVES = {
    "acknowledge": {},
    "assign": {"assigned_to": "perm_desk_a"},
    "investigated": {"findings": "The cycle was paid late."},
    "escalate": {"escalated_to": "committee", "reason": "The person does not accept."},
    "resolve": {"resolution": "Paid in the December cycle."},
    "uphold": {"resolution": "Corrected."},
    "close": {"accepted": True},
}
API_GRIEVANCES = area(
    "API: grievances",
    "As the pages; a sensitive grievance is a 404 without the designation.",
    (
        rule("api/v1/grievances/", "GET", "Grievances in scope.", SIGNED_IN_API, witness="desk_a"),
        rule(
            "api/v1/grievances/",
            "POST",
            "Recording district A's household's grievance: the window and agencies' officers, not the "
            "committee; for B's officer the household is not found (404).",
            who(UNAUTHENTICATED, OK, OK, FORBIDDEN, OK, OK, NOT_FOUND),
            body={"category": "payment", "description": "Not paid in November.", "household": "{household.number}"},
        ),
        rule("api/v1/grievances/<int:pk>/", "GET", "A grievance.", A_API, path=AG),
        rule(
            "api/v1/grievances/<int:pk>/",
            "GET",
            "A sensitive grievance.",
            API_SENSITIVE_ONLY,
            path=AS,
            case="sensitive",
        ),
        *(
            rule(
                f"api/v1/grievances/<int:pk>/{move}/",
                "POST",
                f"The {move} move: those who work the grievance; the state machine may still say 400.",
                API_GRIEVANCE_WORK,
                path=f"{AG}{move}/",
                body=body,
            )
            for move, body in API_GRIEVANCE_MOVES.items()
        ),
        rule(
            "api/v1/grievances/<int:pk>/resolve/",
            "POST",
            "A move on a sensitive grievance: designated officers only.",
            API_SENSITIVE_ONLY,
            path=AS + "resolve/",
            body={"resolution": "Referred to the police."},
            case="sensitive",
        ),
        rule(
            "api/v1/grievances/<int:pk>/attachments/",
            "POST",
            "Adding a document.",
            API_GRIEVANCE_WORK,
            path=AG + "attachments/",
            body={"attachment": LETTER},
        ),
        rule(
            "api/v1/grievances/<int:pk>/attachments/<int:attachment_id>/",
            "GET",
            "A document.",
            A_API,
            path=AG + "attachments/{grievance_attachment.pk}/",
        ),
        rule(
            "api/v1/grievances/<int:pk>/attachments/<int:attachment_id>/",
            "GET",
            "A document of a sensitive grievance.",
            API_SENSITIVE_ONLY,
            path=AS + "attachments/{sensitive_attachment.pk}/",
            case="sensitive",
        ),
    ),
    actors=GRIEVANCE_ACTORS,
)

API_DASHBOARD = area(
    "API: the dashboard",
    "As the page.",
    (
        rule(
            "api/v1/dashboard/",
            "GET",
            "District A's figures.",
            who(UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, OK, OK, OK, FORBIDDEN),
            path="/api/v1/dashboard/?district={district.pk}",
        ),
        rule(
            "api/v1/dashboard/",
            "GET",
            "District B's figures asked by a committee member of A.",
            who(UNAUTHENTICATED, FORBIDDEN, FORBIDDEN, NOT_FOUND, OK, OK, FORBIDDEN),
            path="/api/v1/dashboard/?district={other_district.pk}",
            case="district B",
        ),
    ),
)

DCI_ROUTE = "dci/(?P<path>.*?)/?$"
# A partner with every exchange gets past every check of who it is (an empty body is then a 400); a
# partner allowed only to search the registry is refused the IBR's enrolment exchanges (403).
DCI_OPEN = {"anonymous": UNAUTHENTICATED, "partner": OK, "search_only_partner": OK, "user_token": UNAUTHENTICATED}
DCI_IBR = {**DCI_OPEN, "search_only_partner": FORBIDDEN}


def dci_rule(path: str, outcomes: dict[str, str], why: str) -> Rule:
    return Rule(route=DCI_ROUTE, methods=("POST",), path=f"/dci/{path}", outcomes=outcomes, why=why, case=path)


DCI = area(
    "Partner systems over DCI (/dci/)",
    "One URL pattern answers every DCI path (so an unknown one gets DCI's error shape). Each path is a "
    "POST with a partner's bearer token; a user's API token is not a partner's and is refused (401). What a "
    "partner may read inside an exchange (its districts and programmes) is tested in `interop/tests`.",
    (
        dci_rule("registry/sync/search", DCI_OPEN, "Social registry search, answered at once."),
        dci_rule("registry/search", DCI_OPEN, "Social registry search, answered by callback."),
        dci_rule("registry/sync/txn/status", DCI_OPEN, "A transaction's status: any partner, its own."),
        dci_rule("registry/txn/status", DCI_OPEN, "The same, by callback."),
        dci_rule("registry/sync/enrolled", DCI_IBR, "Is this person enrolled: partners allowed to read enrolments."),
        dci_rule(
            "registry/sync/enrollment/updates",
            DCI_IBR,
            "Enrolment updates: partners allowed to send them.",
        ),
        dci_rule("ibr/registry/sync/enrolled", DCI_IBR, "The IBR's own path for the same."),
        dci_rule("ibr/registry/sync/enrollment/updates", DCI_IBR, "The IBR's own path for the same."),
        dci_rule("ibr/registry/sync/search", DCI_IBR, "Enrolment search: partners allowed to read enrolments."),
        dci_rule("ibr/registry/search", DCI_IBR, "The same, by callback."),
        dci_rule("ibr/registry/sync/txn/status", DCI_OPEN, "A transaction's status."),
        dci_rule("ibr/registry/txn/status", DCI_OPEN, "The same, by callback."),
        dci_rule(
            "no/such/endpoint",
            dict.fromkeys(DCI_ACTORS, NOT_FOUND),
            "Not a DCI endpoint: DCI's 404, before any token is read.",
        ),
    ),
    actors=DCI_ACTORS,
)

ADMIN_ROUTE = "admin/"
STAFF_ONLY = who(LOGIN, LOGIN, LOGIN, LOGIN, OK, OK, LOGIN)
ADMIN = area(
    "The admin (/admin/)",
    "Every admin page is for staff: anyone else is sent to the admin's login. Which rows a staff member "
    "sees there (their districts; ministry staff every district) is proved model by model in "
    "`tests/test_admin_coverage.py`; these rows stand for the whole admin.",
    (
        rule(ADMIN_ROUTE, "GET", "The admin's index.", STAFF_ONLY),
        rule(
            ADMIN_ROUTE,
            "GET",
            "District A's household in the admin.",
            STAFF_ONLY,
            path="/admin/registry/household/{household.pk}/change/",
            case="a household",
        ),
    ),
)

AREAS: tuple[Area, ...] = (
    SITE,
    FRONT_DESK,
    IMPORTS,
    PROGRAMMES,
    REFERRALS,
    PAYMENTS,
    BENEFICIARY_LISTS,
    GRIEVANCES,
    DASHBOARD,
    API_REGISTRY,
    API_REFERRALS,
    API_PAYMENTS,
    API_GRIEVANCES,
    API_DASHBOARD,
    DCI,
    ADMIN,
)
RULES: tuple[Rule, ...] = tuple(r for area in AREAS for r in area.rules)


# --- the documentation ------------------------------------------------------------------------------------

SHOWN = {
    OK: "✓",
    LOGIN: "login",
    UNAUTHENTICATED: "401",
    FORBIDDEN: "403",
    NOT_FOUND: "404",
    MISS: "not found",
    NOT_THEIRS: "400",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def permissions_markdown() -> str:
    """docs/permissions.md, generated from the table."""
    lines = [
        "# Who can do what",
        "",
        "<!-- Generated from spf/permissions_table.py by `python manage.py permissions_doc`: edit the table, "
        "not this file. -->",
        "",
        "Every URL of the site, the methods it answers and, for each kind of user, the answer they get. "
        "`tests/test_permissions_table.py` asks every row as every actor against real objects of district A "
        "and fails when an answer differs, when a refused request changed anything, or when a URL pattern has "
        "no row.",
        "",
        "- ✓: answered (for a POST or PATCH, a validation error counts: the request got past every check of "
        "who may ask).",
        "- login: sent to the login page. 401: the API or DCI without valid credentials.",
        "- 403: the role may not do this. 404: not there for this user (another district, another agency, "
        "a sensitive grievance without the designation), exactly as for something that does not exist.",
        "- 400 (in a refused cell): the body names something not theirs, refused as a field error in the "
        "same words as for something that does not exist.",
        '- not found: a look-up box that sends the user back with "no such … in your districts".',
        "",
        "Actors (the columns):",
        "",
        "- **Desk A**: a front-desk officer of district A (the window).",
        "- **Officer X**: a programme officer of agency X (whose cash transfer runs in A and B), working in A.",
        "- **Committee A**: a district committee member of A (reads, does not change).",
        "- **Ministry**: ministry staff (`is_staff`, role ministry): every district.",
        "- **Superuser**.",
        "- **Desk B on A**: a front-desk officer of district B asking for district A's objects by their "
        "addresses (URL guessing).",
        "- **Designated A**, on grievances: a front-desk officer of A who is a designated officer for sensitive "
        "grievances (permission `grievances.handle_sensitive`).",
        "- **Signed in**, on pages that do not depend on the role: any signed-in user.",
        "- On DCI: partner systems' bearer tokens, and a user's API token presented as one.",
    ]
    for area in AREAS:
        lines += ["", f"## {area.title}", "", area.intro, ""]
        keys = list(area.actors)
        lines.append("| URL | method | " + " | ".join(area.actors[k] for k in keys) + " | why |")
        lines.append("| --- | --- | " + " | ".join("---" for _ in keys) + " | --- |")
        for r in area.rules:
            address = f"`{r.path}`" + (f" ({r.case})" if r.case and r.route != DCI_ROUTE else "")
            cells = [_cell(address), " ".join(r.methods), *(SHOWN[r.outcomes[k]] for k in keys), _cell(r.why)]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
