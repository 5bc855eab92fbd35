"""The ministry's catalogue admin: programmes and agencies, the rule editor
(save through the service, errors with their position, preview, history,
restore), bulk runs, and the read-only, district-scoped eligibility."""

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from programmes.models import (
    Agency,
    EligibilityOutcome,
    EligibilityResult,
    Programme,
    RecomputeRun,
    RecomputeStatus,
    RuleVersion,
)
from programmes.services import eligibility_recompute_household
from registry.tests.factories import UserFactory
from spf.models import Role, User

from .catalogue_helpers import (
    BENEFIT,
    ELDERLY_LARGE,
    grandmother_and_two,
    make_agency,
    make_programme,
    unknown_ages,
    young_couple,
)


def rules_url(programme: Programme) -> str:
    return reverse("admin:programmes_programme_rules", args=[programme.pk])


@pytest.fixture
def ministry(client, ministry_user):
    client.force_login(ministry_user)
    return client


@pytest.fixture
def sct(samfya, lunga, ministry_user):
    return make_programme(code="SCT", name="Social Cash Transfer", districts=[samfya, lunga], acting_user=ministry_user)


def draft(rule: str = ELDERLY_LARGE, formula: str = BENEFIT, note: str = "", action: str = "_save") -> dict:
    return {"eligibility_rule": rule, "benefit_formula": formula, "note": note, action: "1"}


# --- agencies and programmes ------------------------------------------------------------


def test_ministry_staff_list_and_search_agencies_by_their_role(ministry, db):
    make_agency("MCDSS", "Ministry of Community Development")
    make_agency("MOE", "Ministry of Education")
    page = ministry.get(reverse("admin:programmes_agency_changelist"), {"q": "educ"})
    assert page.status_code == 200
    assert "Ministry of Education" in page.text
    assert "Ministry of Community Development" not in page.text
    assert ministry.get(reverse("admin:programmes_agency_changelist"), {"kind__exact": "ministry"}).status_code == 200


def test_a_new_programme_takes_the_country_currency_and_one_document_per_line(ministry, samfya):
    agency = make_agency()
    form = ministry.get(reverse("admin:programmes_programme_add"))
    assert form.context["adminform"].form.initial["currency"] == "ZMW"

    response = ministry.post(
        reverse("admin:programmes_programme_add"),
        {
            "code": "hgsf",
            "name": "Home Grown School Feeding",
            "agency": agency.pk,
            "description": "A hot meal every school day for children in school.",
            "kind": "school_feeding",
            "target_unit": "individual",
            "status": "active",
            "frequency": "termly",
            "currency": "ZMW",
            "enrolment_mode": "direct",
            "documents": "School enrolment letter\n\n  Child's birth certificate  \n",
            "coverage-TOTAL_FORMS": "1",
            "coverage-INITIAL_FORMS": "0",
            "coverage-0-district": samfya.pk,
            "coverage-0-capacity": "1200",
            "coverage-0-budget": "150000.00",
        },
    )
    programme = Programme.objects.get(code="HGSF")
    # Straight on to writing its rule: a programme without one assesses nobody.
    assert response.status_code == 302 and response["Location"] == rules_url(programme)
    assert programme.documents == ["School enrolment letter", "Child's birth certificate"]
    assert programme.coverage.get().capacity == 1200
    assert programme.current_version is None


def test_the_change_page_shows_the_rules_in_force_and_links_to_the_editor(ministry, sct):
    page = ministry.get(reverse("admin:programmes_programme_change", args=[sct.pk]))
    assert page.status_code == 200
    assert "household.size &gt;= 3" in page.text
    assert rules_url(sct) in page.text
    assert "National registration card of the head" in page.text  # documents, one per line


def test_a_front_desk_officer_cannot_open_the_admin(client, samfya_officer, sct):
    client.force_login(samfya_officer)
    assert client.get(rules_url(sct)).status_code == 302  # to the admin's login


def test_staff_of_another_role_without_permissions_cannot_edit_rules(client, samfya, sct):
    clerk = UserFactory(username="clerk", role=Role.COMMITTEE, is_staff=True, districts=[samfya])
    client.force_login(clerk)
    assert client.get(rules_url(sct)).status_code == 403
    assert client.post(rules_url(sct), draft("true")).status_code == 403
    assert sct.versions.count() == 1


# --- the rule editor ---------------------------------------------------------------------------


def test_the_editor_shows_the_current_rule_and_formula_in_code_boxes(ministry, sct):
    page = ministry.get(rules_url(sct))
    assert page.status_code == 200
    form = page.context["form"]
    assert form["eligibility_rule"].value() == ELDERLY_LARGE
    assert form["benefit_formula"].value() == BENEFIT
    assert 'class="rule-text"' in page.text
    assert "dependency_ratio" in page.text  # the reference of fields a rule can use


def test_saving_a_rule_makes_a_new_version_by_whom_with_the_note(ministry, ministry_user, sct):
    response = ministry.post(rules_url(sct), draft("household.size >= 4", note="Cabinet decision"))
    assert response.status_code == 302
    sct.refresh_from_db()
    version = sct.current_version
    assert (version.number, version.eligibility_rule, version.note) == (2, "household.size >= 4", "Cabinet decision")
    assert version.created_by == ministry_user
    # The service queued the re-assessment of the programme everywhere.
    assert RecomputeRun.objects.filter(programme=sct, reason__contains="v2").exists()
    follow = ministry.get(response["Location"])
    assert "Saved as version 2" in follow.text


def test_saving_the_same_text_makes_no_version(ministry, sct):
    ministry.post(rules_url(sct), draft())
    assert sct.versions.count() == 1


def test_a_syntax_error_is_shown_on_the_rule_with_line_and_column_and_nothing_is_saved(ministry, sct):
    page = ministry.post(rules_url(sct), draft("household.size >= 3 &&\n  household.members.exists(m, m.age >= )"))
    assert page.status_code == 400
    errors = page.context["form"].errors["eligibility_rule"]
    assert errors and all(message.startswith("line ") and ", column " in message for message in errors)
    assert any(message.startswith("line 2,") for message in errors)
    # The line it points at is shown with a caret under the column.
    pointer = page.context["rule_pointers"][0]
    assert pointer["source"] == "  household.members.exists(m, m.age >= )"
    assert pointer["caret"].endswith("^")
    assert sct.versions.count() == 1


def test_an_unknown_field_in_the_formula_is_shown_on_the_formula(ministry, sct):
    page = ministry.post(rules_url(sct), draft(formula="200 * household.children_count"))
    assert page.status_code == 400
    form = page.context["form"]
    assert "eligibility_rule" not in form.errors
    assert "children_count" in " ".join(form.errors["benefit_formula"])
    assert "line 1, column" in form.errors["benefit_formula"][0]
    assert sct.versions.count() == 1


def test_preview_counts_each_district_under_the_draft_without_saving(ministry, sct, samfya_village, lunga_village):
    eligible = grandmother_and_two(samfya_village)
    young_couple(samfya_village)
    unknown_ages(samfya_village)
    young_couple(lunga_village)
    eligibility_recompute_household(household_id=eligible.pk)

    # Under the draft every household of two or more qualifies.
    page = ministry.post(rules_url(sct), draft("household.size >= 2", action="_preview"))
    assert page.status_code == 200
    rows = {row.district.code: row for row in page.context["preview"]}
    samfya_row, lunga_row = rows["SAM"], rows["LUN"]
    assert (samfya_row.households, samfya_row.eligible_now, samfya_row.eligible_draft) == (3, 1, 3)
    assert samfya_row.needs_information_draft == 0
    # The eligible household stays eligible; the two never assessed change.
    assert samfya_row.would_change == 2
    assert (lunga_row.households, lunga_row.eligible_draft, lunga_row.would_change) == (1, 1, 1)
    assert page.context["totals"]["eligible_draft"] == 4
    assert "Preview of the draft" in page.text
    # The draft stays in the boxes, and nothing was saved.
    assert page.context["form"]["eligibility_rule"].value() == "household.size >= 2"
    assert sct.versions.count() == 1


def test_preview_of_a_draft_with_unknowns_counts_needs_information(ministry, sct, samfya_village):
    unknown_ages(samfya_village)
    page = ministry.post(rules_url(sct), draft(action="_preview"))
    samfya_row = next(row for row in page.context["preview"] if row.district.code == "SAM")
    assert (samfya_row.eligible_draft, samfya_row.needs_information_draft) == (0, 1)


def test_preview_of_a_bad_draft_shows_the_error_instead_of_counts(ministry, sct):
    page = ministry.post(rules_url(sct), draft("household.size >>= 3", action="_preview"))
    assert page.status_code == 400
    assert page.context["preview"] is None
    assert "No preview: the draft has errors" in page.text
    assert "line 1, column" in page.context["form"].errors["eligibility_rule"][0]


# --- history and restore ----------------------------------------------------------------------------


def test_the_history_lists_every_version_and_one_can_be_viewed(ministry, ministry_user, sct):
    ministry.post(rules_url(sct), draft("household.size >= 4", note="Tighter"))
    page = ministry.get(rules_url(sct))
    assert [v.number for v in page.context["versions"]] == [2, 1]
    assert "Tighter" in page.text
    old = ministry.get(reverse("admin:programmes_programme_version", args=[sct.pk, 1]))
    assert old.status_code == 200
    assert "household.size &gt;= 3 &amp;&amp;" in old.text
    assert "Restore version 1" in old.text
    assert ministry.get(reverse("admin:programmes_programme_version", args=[sct.pk, 9])).status_code == 404


def test_restoring_an_old_version_makes_a_new_one_that_says_where_it_came_from(ministry, ministry_user, sct):
    ministry.post(rules_url(sct), draft("household.size >= 4"))
    restore = reverse("admin:programmes_programme_restore", args=[sct.pk, 1])
    assert ministry.get(restore).status_code == 405  # a change is never a GET
    response = ministry.post(restore)
    assert response.status_code == 302
    sct.refresh_from_db()
    current = sct.current_version
    assert current.number == 3
    assert current.eligibility_rule == ELDERLY_LARGE
    assert current.restored_from == RuleVersion.objects.get(programme=sct, number=1)
    assert current.created_by == ministry_user
    assert "restored as version 3" in ministry.get(response["Location"]).text


def test_restoring_the_version_in_force_changes_nothing(ministry, sct):
    ministry.post(reverse("admin:programmes_programme_restore", args=[sct.pk, 1]))
    assert sct.versions.count() == 1


# --- bulk runs ----------------------------------------------------------------------------------


def test_recompute_now_creates_a_run_and_queues_it_after_commit(
    ministry, ministry_user, sct, django_capture_on_commit_callbacks
):
    before = RecomputeRun.objects.count()
    with django_capture_on_commit_callbacks() as queued:
        response = ministry.post(reverse("admin:programmes_programme_recompute", args=[sct.pk]))
    assert response.status_code == 302
    run = RecomputeRun.objects.latest("created_at")
    assert RecomputeRun.objects.count() == before + 1
    assert (run.programme, run.started_by, run.reason) == (sct, ministry_user, "requested in the admin")
    assert len(queued) == 1


def test_the_list_action_recomputes_only_active_programmes_with_a_rule(ministry, samfya, ministry_user, sct):
    draft_programme = make_programme(
        code="DRAFT", districts=[samfya], acting_user=ministry_user, rule=None, status="draft"
    )
    before = RecomputeRun.objects.count()
    response = ministry.post(
        reverse("admin:programmes_programme_changelist"),
        {"action": "recompute_now", "_selected_action": [sct.pk, draft_programme.pk]},
        follow=True,
    )
    assert RecomputeRun.objects.count() == before + 1
    assert "1 programme(s) skipped" in response.text


def test_runs_are_listed_read_only_with_their_progress(ministry, sct):
    run = RecomputeRun.objects.create(
        programme=sct, reason="test", status=RecomputeStatus.RUNNING, total_steps=4, done_steps=1
    )
    page = ministry.get(reverse("admin:programmes_recomputerun_changelist"))
    assert page.status_code == 200
    assert "25%" in page.text
    assert ministry.get(reverse("admin:programmes_recomputerun_add")).status_code == 403
    detail = ministry.get(reverse("admin:programmes_recomputerun_change", args=[run.pk]))
    assert detail.status_code == 200 and "Save" not in detail.text


# --- eligibility, read-only and scoped -------------------------------------------------------------------


@pytest.fixture
def results(sct, samfya_village, lunga_village):
    here, there = grandmother_and_two(samfya_village), grandmother_and_two(lunga_village)
    eligibility_recompute_household(household_id=here.pk)
    eligibility_recompute_household(household_id=there.pk)
    return EligibilityResult.objects.get(household=here), EligibilityResult.objects.get(household=there)


def samfya_staff(samfya) -> User:
    user = UserFactory(username="samfya_staff", role=Role.COMMITTEE, is_staff=True, districts=[samfya])
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_eligibilityresult", "view_eligibilitychange"])
    )
    return User.objects.get(pk=user.pk)


def test_results_show_their_reasons_to_ministry_staff(ministry, results):
    here, _ = results
    page = ministry.get(reverse("admin:programmes_eligibilityresult_change", args=[here.pk]))
    assert page.status_code == 200
    assert here.outcome == EligibilityOutcome.ELIGIBLE
    assert "✓" in page.text and "household.size &gt;= 3" in page.text
    assert ministry.get(reverse("admin:programmes_eligibilityresult_add")).status_code == 403


def test_results_and_changes_of_another_district_do_not_exist_for_district_staff(client, samfya, results):
    here, there = results
    client.force_login(samfya_staff(samfya))
    listing = client.get(reverse("admin:programmes_eligibilityresult_changelist"))
    assert listing.status_code == 200
    assert list(listing.context["cl"].queryset) == [here]
    assert client.get(reverse("admin:programmes_eligibilityresult_change", args=[there.pk])).status_code == 404
    changes = client.get(reverse("admin:programmes_eligibilitychange_changelist"))
    assert {c.household_id for c in changes.context["cl"].queryset} == {here.household_id}


def test_agencies_are_not_deleted_from_the_admin(ministry, db):
    agency = make_agency()
    assert ministry.get(reverse("admin:programmes_agency_delete", args=[agency.pk])).status_code == 403
    assert Agency.objects.filter(pk=agency.pk).exists()


# --- how an agency receives referrals --------------------------------------------------------------------


def agency_form(agency: Agency, **changes) -> dict:
    values = {
        "code": agency.code,
        "name": agency.name,
        "kind": agency.kind,
        "active": "on",
        "focal_point_name": agency.focal_point_name,
        "focal_point_title": "",
        "email": "",
        "phone": "",
        "address": "",
        "referral_delivery": agency.referral_delivery,
        "webhook_url": agency.webhook_url,
        "webhook_secret": "",
    }
    values.update(changes)
    return values


def test_push_delivery_needs_a_url_and_a_secret_each_named(ministry, db):
    agency = make_agency()
    url = reverse("admin:programmes_agency_change", args=[agency.pk])

    response = ministry.post(url, agency_form(agency, referral_delivery="webhook"))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "the URL each referral is POSTed to" in errors["webhook_url"][0]
    assert "shared secret" in errors["webhook_secret"][0]
    agency.refresh_from_db()
    assert agency.referral_delivery == "queue"


def test_the_webhook_secret_is_write_only_and_kept_when_left_empty(ministry, db):
    agency = make_agency()
    url = reverse("admin:programmes_agency_change", args=[agency.pk])
    ministry.post(
        url,
        agency_form(
            agency, referral_delivery="webhook", webhook_url="mcdss.example/hook", webhook_secret="s3cr3t-long"
        ),
    )
    agency.refresh_from_db()
    assert (agency.referral_delivery, agency.webhook_url, agency.webhook_secret) == (
        "webhook",
        "https://mcdss.example/hook",
        "s3cr3t-long",
    )
    page = ministry.get(url).text
    assert "s3cr3t-long" not in page and "A secret is set" in page

    assert ministry.post(url, agency_form(agency, name="Renamed")).status_code == 302

    agency.refresh_from_db()
    assert (agency.name, agency.webhook_secret) == ("Renamed", "s3cr3t-long")


# --- restore from the version list, run again, coverage --------------------------------------------------------


def run_action(client, model: str, action: str, objects) -> list[str]:
    response = client.post(
        reverse(f"admin:programmes_{model}_changelist"),
        {"action": action, "_selected_action": [str(obj.pk) for obj in objects]},
        follow=True,
    )
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


def test_a_version_is_restored_from_the_version_list(ministry, ministry_user, sct):
    ministry.post(rules_url(sct), draft("household.size >= 4"))
    first = RuleVersion.objects.get(programme=sct, number=1)

    said = run_action(ministry, "ruleversion", "restore_selected", [first])

    assert any("SCT v1 restored as v3" in message for message in said), said
    sct.refresh_from_db()
    assert (sct.current_version.number, sct.current_version.restored_from, sct.current_version.created_by) == (
        3,
        first,
        ministry_user,
    )


def test_two_versions_of_one_programme_are_not_restored_at_once(ministry, sct):
    ministry.post(rules_url(sct), draft("household.size >= 4"))

    said = run_action(ministry, "ruleversion", "restore_selected", list(RuleVersion.objects.filter(programme=sct)))

    assert any("choose one version" in message for message in said), said
    assert sct.versions.count() == 2


def test_staff_who_may_not_change_programmes_are_not_offered_the_restore(client, samfya, sct):
    user = UserFactory(username="reader", role=Role.COMMITTEE, is_staff=True, districts=[samfya])
    user.user_permissions.add(Permission.objects.get(codename="view_ruleversion"))
    client.force_login(User.objects.get(pk=user.pk))
    assert "restore_selected" not in client.get(reverse("admin:programmes_ruleversion_changelist")).text
    client.post(
        reverse("admin:programmes_ruleversion_changelist"),
        {"action": "restore_selected", "_selected_action": [sct.current_version_id]},
    )
    assert sct.versions.count() == 1


def test_a_failed_run_is_run_again_after_commit_and_a_running_one_is_not(
    ministry, ministry_user, sct, samfya, django_capture_on_commit_callbacks
):
    failed = RecomputeRun.objects.create(
        programme=sct, district=samfya, reason="nightly", status=RecomputeStatus.FAILED
    )
    running = RecomputeRun.objects.create(programme=sct, reason="test", status=RecomputeStatus.RUNNING)

    with django_capture_on_commit_callbacks() as queued:
        said = run_action(ministry, "recomputerun", "run_again", [failed, running])

    again = RecomputeRun.objects.latest("created_at")
    assert (again.programme, again.district, again.status, again.started_by) == (
        sct,
        samfya,
        RecomputeStatus.PENDING,
        ministry_user,
    )
    assert "was: nightly" in again.reason
    assert len(queued) == 1
    assert any("still running" in message for message in said), said


def test_runs_and_coverage_of_another_district_do_not_exist_for_district_staff(client, samfya, lunga, sct):
    here = RecomputeRun.objects.create(programme=sct, district=samfya, reason="here")
    there = RecomputeRun.objects.create(programme=sct, district=lunga, reason="there")
    national = RecomputeRun.objects.create(programme=sct, reason="national")
    user = UserFactory(username="samfya_reader", role=Role.COMMITTEE, is_staff=True, districts=[samfya])
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_recomputerun", "view_programmedistrict"]))
    client.force_login(User.objects.get(pk=user.pk))

    runs = client.get(reverse("admin:programmes_recomputerun_changelist"))
    assert list(runs.context["cl"].queryset) == [here]
    assert client.get(reverse("admin:programmes_recomputerun_change", args=[there.pk])).status_code == 404
    assert client.get(reverse("admin:programmes_recomputerun_change", args=[national.pk])).status_code == 404
    coverage = client.get(reverse("admin:programmes_programmedistrict_changelist"))
    assert [row.district for row in coverage.context["cl"].queryset] == [samfya]


def test_the_coverage_list_shows_each_programme_in_each_district_with_its_ceilings(ministry, sct, samfya):
    sct.coverage.filter(district=samfya).update(capacity=1200, budget="5760000.00")
    page = ministry.get(reverse("admin:programmes_programmedistrict_changelist"), {"district": samfya.pk}).text
    assert "1,200" in page and "ZMW\u00a05,760,000.00" in page
    assert reverse("admin:programmes_programme_change", args=[sct.pk]) in page
    assert ministry.get(reverse("admin:programmes_programmedistrict_add")).status_code == 403
