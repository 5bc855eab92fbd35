"""CSRF on every form: every template's POST form carries the token, every page of the site renders its POST
forms with it, a POST without it is refused; session-authenticated API writes need it too, token-authenticated
ones (a partner's system, no cookies) do not."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from grievances.models import GrievanceCategory
from grievances.services import grievance_register
from payments.models import BeneficiaryList, BeneficiaryRow, Enrolment, PaymentCycle, Reconciliation
from referrals.models import Referral, ReferralAttachment
from registry.models import ImportJob
from registry.tests.factories import UserFactory
from spf.models import Role

from .test_admin_coverage import world  # noqa: F401 - the fixture: a row of every model in two districts

ROOT = Path(settings.BASE_DIR)
TOKEN_FIELD = "csrfmiddlewaretoken"


def project_python_files() -> list[Path]:
    """The project's own Python, tests aside (not the virtualenv, not collected static files)."""
    folders = [
        p
        for p in ROOT.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and p.name not in ("staticfiles", "media", "test-artifacts", "node_modules")
    ]
    return [path for folder in folders for path in folder.rglob("*.py") if "tests" not in path.parts]


# --- every template ---------------------------------------------------------------------------------------------


def project_template_files() -> list[Path]:
    folders = [Path(folder) for folder in settings.TEMPLATES[0]["DIRS"]]
    folders += [
        Path(config.path) / "templates"
        for config in apps.get_app_configs()
        if Path(config.path).is_relative_to(ROOT) and ".venv" not in Path(config.path).parts
    ]
    return sorted({file for folder in folders if folder.is_dir() for file in folder.rglob("*.html")})


FORM_TAG = re.compile(r"<form\b([^>]*)>(.*?)</form>", re.S | re.I)
POST = re.compile(r"""method\s*=\s*["']?post""", re.I)


def test_every_post_form_in_every_template_has_the_csrf_token():
    files = project_template_files()
    assert len(files) > 40, "the walk found the project's templates"
    missing, post_forms = [], 0
    for file in files:
        for attributes, body in FORM_TAG.findall(file.read_text(encoding="utf-8")):
            if not POST.search(attributes):
                continue
            post_forms += 1
            if "{% csrf_token %}" not in body:
                missing.append(f"{file.relative_to(ROOT)}: <form{attributes}>")
    assert post_forms > 30
    assert not missing, f"POST forms without {{% csrf_token %}}: {missing}"


def test_no_python_code_writes_a_post_form_by_hand():
    """Forms made in Python (format_html in an admin column) would escape the template walk above."""
    offenders = [
        str(path.relative_to(ROOT))
        for path in project_python_files()
        if re.search(r"<form\b", path.read_text(encoding="utf-8"), re.I)
    ]
    assert not offenders


# --- every page, rendered -------------------------------------------------------------------------------------------


class FormCollector(HTMLParser):
    """The POST forms of a page, each with whether it carries the CSRF token."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._open: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form":
            self._open = {
                "action": attributes.get("action", ""),
                "method": (attributes.get("method") or "get").lower(),
                "token": False,
            }
        elif (
            tag == "input"
            and self._open is not None
            and attributes.get("name") == TOKEN_FIELD
            and attributes.get("value")
        ):
            self._open["token"] = True

    def handle_endtag(self, tag):
        if tag == "form" and self._open is not None:
            self.forms.append(self._open)
            self._open = None


def post_forms(page: str) -> list[dict]:
    collector = FormCollector()
    collector.feed(page)
    return [form for form in collector.forms if form["method"] == "post"]


def site_patterns(resolver=None, prefix="", namespace=""):
    """("namespace:name", pattern) of every page outside the admin, the API and DCI."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            if route.startswith(("admin/", "api/", "dci/")):
                continue
            child_namespace = entry.namespace or namespace
            yield from site_patterns(entry, route, child_namespace)
        elif isinstance(entry, URLPattern) and not route.startswith(("api/", "^api/")):
            yield f"{namespace}:{entry.name}" if namespace else entry.name, entry


@pytest.fixture
def every_object(world):  # noqa: F811 - the fixture imported above
    household = world["households"][world["samfya"]]
    referral = Referral.objects.filter(district=world["samfya"]).first()
    grievance = grievance_register(
        acting_user=world["ministry"],
        category=GrievanceCategory.choices[0][0],
        description="The transfer did not arrive.",
        household=household,
        complainant_name="Mary Mwansa",
    )
    beneficiary_list = BeneficiaryList.objects.order_by("pk").first()
    return {
        "household": household,
        "member": household.members.order_by("pk").first(),
        "referral": referral,
        "referral_attachment": ReferralAttachment.objects.filter(referral=referral).first(),
        "enrolment": Enrolment.objects.filter(district=world["samfya"]).first(),
        "cycle": PaymentCycle.objects.order_by("pk").first(),
        "reconciliation": Reconciliation.objects.first(),
        "import_job": ImportJob.objects.order_by("pk").first(),
        "beneficiary_list": beneficiary_list,
        "beneficiary_row": BeneficiaryRow.objects.filter(beneficiary_list=beneficiary_list).first(),
        "grievance": grievance,
        "programme": referral.programme,
    }


def arguments_for(name: str, objects: dict) -> dict | None:
    """What to put in a page's address; None for what is not a page (downloads, JSON progress)."""
    household, member = objects["household"].pk, objects["member"].pk
    by_name = {
        "frontdesk:household": {"pk": household},
        "frontdesk:household-edit": {"pk": household},
        "frontdesk:household-move": {"pk": household},
        "frontdesk:household-head": {"pk": household},
        "frontdesk:household-status": {"pk": household},
        "frontdesk:member-add": {"pk": household},
        "frontdesk:member-move-in": {"pk": household},
        "frontdesk:member-edit": {"pk": household, "member_pk": member},
        "frontdesk:member-death": {"pk": household, "member_pk": member},
        "frontdesk:member-move-out": {"pk": household, "member_pk": member},
        "imports:detail": {"pk": objects["import_job"].pk},
        "imports:progress": None,
        "imports:report": None,
        "programmes:household-recheck": {"pk": household},
        "programmes:programme": {"code": objects["programme"].code},
        "referrals:refer": {"pk": household},
        "referrals:household-slip": {"pk": household},
        "referrals:referral": {"number": objects["referral"].number},
        "referrals:move": {"number": objects["referral"].number},
        "referrals:slip": {"number": objects["referral"].number},
        "referrals:attachment": None,
        "payments:enrol": {"pk": household},
        "payments:enrolment": {"number": objects["enrolment"].number},
        "payments:enrolment-move": {"number": objects["enrolment"].number},
        "payments:enrolment-details": {"number": objects["enrolment"].number},
        "payments:enrolment-review": {"number": objects["enrolment"].number},
        "payments:cycle": {"pk": objects["cycle"].pk},
        "payments:cycle-generate": {"pk": objects["cycle"].pk},
        "payments:cycle-approve": {"pk": objects["cycle"].pk},
        "payments:cycle-reissue": {"pk": objects["cycle"].pk},
        "payments:cycle-export": {"pk": objects["cycle"].pk},
        "payments:cycle-reconcile": {"pk": objects["cycle"].pk},
        "payments:reconciliation-report": None,
        "beneficiary_lists:detail": {"pk": objects["beneficiary_list"].pk},
        "beneficiary_lists:mapping": {"pk": objects["beneficiary_list"].pk},
        "beneficiary_lists:progress": None,
        "beneficiary_lists:rows": {"pk": objects["beneficiary_list"].pk},
        "beneficiary_lists:review": {"pk": objects["beneficiary_list"].pk},
        "beneficiary_lists:resolve": {"pk": objects["beneficiary_list"].pk, "row_pk": objects["beneficiary_row"].pk},
        "beneficiary_lists:report": None,
        "grievances:record-household": {"pk": household},
        "grievances:grievance": {"number": objects["grievance"].number},
        "grievances:move": {"number": objects["grievance"].number},
        "grievances:slip": {"number": objects["grievance"].number},
        "grievances:attachment-add": {"number": objects["grievance"].number},
        "grievances:attachment": None,
        "dashboard:export": None,
        "dashboard:households-export": None,
    }
    if name not in by_name:
        raise KeyError(name)
    return by_name[name]


def test_every_page_renders_its_post_forms_with_the_csrf_token(client, every_object):
    superuser = UserFactory(username="root_csrf", role=Role.MINISTRY, is_staff=True, is_superuser=True)
    client.force_login(superuser)
    unmapped, failures, checked = [], [], {}
    for name, pattern in site_patterns():
        if pattern.pattern.regex.groupindex:
            try:
                kwargs = arguments_for(name, every_object)
            except KeyError:
                unmapped.append(name)
                continue
            if kwargs is None:
                continue
        else:
            kwargs = {}
        url = reverse(name, kwargs=kwargs)
        response = client.get(url)
        assert response.status_code < 500, (url, response.status_code)
        if response.status_code != 200 or not response.get("Content-Type", "").startswith("text/html"):
            continue
        forms = post_forms(response.content.decode())
        checked[url] = len(forms)
        failures += [f"{url}: form to {form['action'] or 'itself'}" for form in forms if not form["token"]]

    assert not unmapped, f"say what to put in these pages' addresses (arguments_for): {unmapped}"
    assert not failures, f"POST forms rendered without the CSRF token: {failures}"
    # The walk is not vacuous: the pages with the most forms were among those checked.
    household = every_object["household"].pk
    for url in (f"/households/{household}/", f"/households/{household}/edit/", "/households/new/", "/"):
        assert url in checked, url
    assert checked[f"/households/{household}/"] >= 1
    assert sum(checked.values()) >= 20, checked


def test_the_login_page_form_has_the_token(client, db):
    forms = post_forms(client.get("/accounts/login/").content.decode())

    assert len(forms) == 1 and forms[0]["token"]


# --- a POST without the token is refused ------------------------------------------------------------------------------


@pytest.fixture
def strict_client(samfya_officer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(samfya_officer)
    return client


def register_form(village) -> dict:
    return {
        "village": village.pk,
        "members-TOTAL_FORMS": "1",
        "members-INITIAL_FORMS": "0",
        "members-0-first_name": "Mary",
        "members-0-last_name": "Mwansa",
        "members-0-sex": "F",
        "members-0-relationship": "head",
        "members-0-date_of_birth": "1980-05-17",
    }


def test_registering_a_household_without_the_token_is_refused(strict_client, samfya_village):
    from registry.models import Household

    response = strict_client.post("/households/new/", register_form(samfya_village))

    assert response.status_code == 403
    assert "This form has expired" in response.text
    assert "Nothing was saved" in response.text
    assert not Household.objects.exists()


def test_the_same_form_with_the_token_gets_past_the_check(strict_client, samfya_village):
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', strict_client.get("/households/new/").text).group(
        1
    )

    response = strict_client.post("/households/new/", {**register_form(samfya_village), TOKEN_FIELD: token})

    assert response.status_code != 403


def test_logging_out_without_the_token_is_refused(strict_client):
    assert strict_client.post("/accounts/logout/").status_code == 403


# --- the API ------------------------------------------------------------------------------------------------------------


def grievance_payload(household) -> dict:
    return {
        "category": "other",
        "description": "Not paid.",
        "household": household.number,
        "complainant_name": "Mary Mwansa",
    }


@pytest.fixture
def household(samfya_officer, samfya_village):
    from referrals.tests.makers import make_household

    return make_household(officer=samfya_officer, village=samfya_village)


def test_a_session_authenticated_api_write_without_the_token_is_refused(samfya_officer, household):
    from grievances.models import Grievance

    client = APIClient(enforce_csrf_checks=True)
    client.force_login(samfya_officer)

    response = client.post("/api/v1/grievances/", grievance_payload(household), format="json")

    assert response.status_code == 403
    error = response.json()["error"]
    assert "CSRF" in error["message"]
    assert not Grievance.objects.exists()


def test_a_session_authenticated_api_write_with_the_token_goes_through(samfya_officer, household):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(samfya_officer)
    client.get("/")  # any page sets the CSRF cookie
    token = client.cookies[settings.CSRF_COOKIE_NAME].value

    response = client.post("/api/v1/grievances/", grievance_payload(household), format="json", HTTP_X_CSRFTOKEN=token)

    assert response.status_code == 201, response.content


def test_a_token_authenticated_api_write_needs_no_csrf_token(samfya_officer, household):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=samfya_officer).key}")

    response = client.post("/api/v1/grievances/", grievance_payload(household), format="json")

    assert response.status_code == 201, response.content
