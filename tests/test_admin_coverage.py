"""The whole admin, model by model: every model of the project's apps has an admin (or a reason not to),
every page of every registered model opens, and a district's staff see nothing of another district there,
even holding every Django permission of the project's apps; ministry staff see every district by their role.

A model registered without saying how its rows are scoped fails here, so a new admin cannot forget it.
"""

import html
import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.models import QuerySet
from django.test import RequestFactory
from django.urls import reverse

from payments.models import BeneficiaryList, BeneficiaryRow, BeneficiaryRowState, Payment, PaymentChannel
from payments.payroll import payment_cycle_create, payroll_approve, payroll_export, payroll_generate
from payments.tests.makers import enrol_active, first_of_month, make_cash_programme, make_household, make_officer
from programmes.models import ReferralDelivery
from programmes.services import eligibility_recompute_household, recompute_run_create
from referrals.models import Delivery, DeliveryAttempt, DeliveryStatus, EligibilitySweep, Notification
from referrals.services import referral_attachment_add, referral_create
from referrals.tests.makers import make_agency, make_programme
from registry.models import AttributeDefinition, AttributeEntity, AttributeType, ChangeEntry, ImportJob
from registry.tests.factories import UserFactory
from spf.models import OutboxJob, Role, User

# The apps whose every model must be in the admin, and say how it is scoped.
PROJECT_APPS = ("spf", "registry", "programmes", "referrals", "payments")

# Models of those apps deliberately not in the admin: "app_label.model_name": why.
NOT_IN_THE_ADMIN: dict[str, str] = {}

# Scoped models: the path from the model to the district that decides who sees a row. A district's staff
# must see no row whose district (by this path) is not theirs.
SCOPED_BY_DISTRICT = {
    "registry.location": "district",
    "registry.household": "district",
    "registry.member": "household__district",
    "registry.changeentry": "household__district",
    "registry.householdnumbersequence": "district",
    "programmes.programmedistrict": "district",
    "programmes.recomputerun": "district",
    "programmes.eligibilityresult": "household__district",
    "programmes.eligibilitychange": "household__district",
    "referrals.referral": "district",
    "referrals.referralevent": "referral__district",
    "referrals.referralattachment": "referral__district",
    "referrals.delivery": "referral__district",
    "referrals.deliveryattempt": "delivery__referral__district",
    "payments.enrolment": "district",
    "payments.enrolmentevent": "enrolment__district",
    "payments.payment": "district",
    "payments.paymentevent": "payment__district",
    "payments.beneficiaryrow": "district",
    # A payment cycle is a programme's, for every district it runs in: seen where the programme runs.
    "payments.paymentcycle": "programme__coverage__district",
    "payments.cycleevent": "cycle__programme__coverage__district",
    "payments.beneficiarylist": "programme__coverage__district",
}


def _users_out_of_scope(rows: QuerySet, user: User, district_ids: list[int]) -> QuerySet:
    return rows.exclude(districts__in=district_ids).exclude(pk=user.pk)


def _notifications_out_of_scope(rows: QuerySet, user: User, district_ids: list[int]) -> QuerySet:
    # One's own notices are one's own, whatever they are about.
    return rows.exclude(recipient=user).exclude(referral__district__in=district_ids)


def _import_jobs_out_of_scope(rows: QuerySet, user: User, district_ids: list[int]) -> QuerySet:
    # A job is its districts': it may not have written anywhere else; one the user started is theirs.
    wrote_elsewhere = ChangeEntry.objects.filter(import_job__isnull=False).exclude(household__district__in=district_ids)
    wrote_here = ChangeEntry.objects.filter(import_job__isnull=False, household__district__in=district_ids)
    return rows.filter(pk__in=wrote_elsewhere.values("import_job_id")) | rows.exclude(created_by=user).exclude(
        pk__in=wrote_here.values("import_job_id")
    )


def _provider_files_out_of_scope(rows: QuerySet, user: User, district_ids: list[int]) -> QuerySet:
    # The provider's file lists every district's payments: window staff (the user here) see none of it.
    assert user.role == Role.FRONT_DESK
    return rows


SCOPED_OTHERWISE = {
    "spf.user": _users_out_of_scope,
    "payments.reconciliation": _provider_files_out_of_scope,
    "payments.reconciliationrow": _provider_files_out_of_scope,
    "referrals.notification": _notifications_out_of_scope,
    "registry.importjob": _import_jobs_out_of_scope,
}

# Not scoped, each with why: no household data and no district.
NOT_SCOPED = {
    "registry.attributedefinition": "the country's extra fields: a catalogue, the same for every district",
    "programmes.agency": "the catalogue of agencies, public",
    "programmes.programme": "the catalogue of programmes, public (where each runs is scoped: programmedistrict)",
    "programmes.ruleversion": "the programmes' published rules",
    "referrals.eligibilitysweep": "a job's watermark: one number, no district",
    "spf.outboxjob": "a queued background job: a task's name and record ids, no personal data, no district",
    "spf.personaldataexport": "the audit of exports: who took which kind of file and when, described in the page's "
    "words; no household's data, and no district of its own (an export may cover several)",
}

# The marker of the other district's rows in any page: its household numbers.
OTHER_DISTRICT_MARKER = "LUN-0"


def label_of(model) -> str:
    return f"{model._meta.app_label}.{model._meta.model_name}"


def project_models():
    return [model for app in PROJECT_APPS for model in apps.get_app_config(app).get_models()]


def registered_models():
    return sorted(admin.site._registry, key=label_of)


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def as_request(user: User):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def out_of_scope(model, rows: QuerySet, user: User, district_ids: list[int]) -> QuerySet:
    label = label_of(model)
    if label in SCOPED_OTHERWISE:
        return SCOPED_OTHERWISE[label](rows, user, district_ids)
    return rows.exclude(**{f"{SCOPED_BY_DISTRICT[label]}__in": district_ids})


def is_scoped(model) -> bool:
    return label_of(model) in SCOPED_BY_DISTRICT or label_of(model) in SCOPED_OTHERWISE


def filter_links(page: str) -> list[str]:
    """The links of the changelist's filter sidebar ("?status__exact=sent", ...)."""
    sidebar = re.search(r'id="changelist-filter".*?</nav>', page, re.S)
    if not sidebar:
        return []
    return sorted({html.unescape(link) for link in re.findall(r'href="(\?[^"]*)"', sidebar.group(0))})


# --- the world: a row of every model in Samfya and in Lunga ------------------------------------------------


@pytest.fixture
def world(settings, tmp_path, samfya, lunga, samfya_village, lunga_village, samfya_officer, lunga_officer):
    settings.MEDIA_ROOT = tmp_path
    ministry = UserFactory(username="ministry_world", role=Role.MINISTRY, is_staff=True)
    agency = make_agency(
        "MCDSS",
        referral_delivery=ReferralDelivery.WEBHOOK,
        webhook_url="https://mcdss.example/spf/referrals",
        webhook_secret="a-long-shared-secret",
    )
    maker = make_officer(agency, [samfya, lunga], name="maker")
    checker = make_officer(agency, [samfya, lunga], name="checker")
    cash = make_cash_programme(agency=agency, districts=[samfya, lunga], ministry_user=ministry)
    lunga_only = make_cash_programme(code="LPW", agency=agency, districts=[lunga], ministry_user=ministry)
    referred = make_programme(code="HIW", agency=agency, districts=[samfya, lunga])
    AttributeDefinition.objects.create(
        entity=AttributeEntity.HOUSEHOLD, key="water_source", label="Water source", type=AttributeType.TEXT
    )

    households = {
        samfya: make_household(officer=samfya_officer, village=samfya_village),
        lunga: make_household(officer=lunga_officer, village=lunga_village, last_name="Lungu"),
    }
    for district, household in households.items():
        officer = samfya_officer if district == samfya else lunga_officer
        eligibility_recompute_household(household_id=household.pk)
        recompute_run_create(acting_user=ministry, programme=cash, district=district, reason="test")
        job = ImportJob.objects.create(
            original_name=f"{district.code}.csv", created_by=officer, uploaded_file=f"imports/{district.code}.csv"
        )
        ChangeEntry.objects.filter(household=household).update(import_job=job)

        referral = referral_create(acting_user=officer, household=household, programme=referred)
        referral_attachment_add(
            acting_user=officer,
            referral=referral,
            file=SimpleUploadedFile(f"letter-{district.code}.pdf", b"%PDF-1.4\n"),
            description="Letter from the headman",
        )
        Notification.objects.create(recipient=officer, referral=referral, kind="overdue", message="Overdue")
        # The push to the agency's system went out after commit in real life; here it failed once.
        delivery = Delivery.objects.get(referral=referral)
        Delivery.objects.filter(pk=delivery.pk).update(status=DeliveryStatus.FAILED, attempts=1, last_error="503")
        DeliveryAttempt.objects.create(delivery=delivery, status_code=503, latency_ms=40, error="503")

        enrol_active(
            household=household,
            programme=cash,
            maker=maker,
            checker=checker,
            account_number=f"09770000{household.pk:02d}",
        )
    EligibilitySweep.objects.create(name="auto_referrals", last_change_id=0)
    # A job queued while the broker was down, still waiting in the outbox.
    OutboxJob.objects.create(
        task="programmes.tasks.recompute_households", args=[[households[lunga].pk]], last_error="Connection refused"
    )

    from payments.reconciliation import reconciliation_import

    cycle = payment_cycle_create(acting_user=maker, programme=cash, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    payroll_approve(acting_user=checker, cycle=cycle)
    payroll_export(acting_user=maker, cycle=cycle, channel=PaymentChannel.MOBILE_MONEY)
    lines = ["reference,status,amount,paid_at,transaction_id"] + [
        f"{payment.reference},paid,{payment.amount},2026-11-05 10:00,TX-{payment.pk}"
        for payment in Payment.objects.filter(cycle=cycle)
    ]
    reconciliation_import(acting_user=maker, cycle=cycle, file_name="provider.csv", content="\n".join(lines).encode())
    payment_cycle_create(acting_user=maker, programme=lunga_only, period_start=first_of_month())

    for programme, districts in ((cash, [samfya, lunga]), (lunga_only, [lunga])):
        beneficiary_list = BeneficiaryList.objects.create(
            programme=programme,
            file=f"beneficiary-lists/{programme.code}.csv",
            file_name=f"{programme.code}.csv",
            file_sha256=programme.code.ljust(64, "0"),
            uploaded_by=maker,
        )
        for line, district in enumerate(districts, start=2):
            BeneficiaryRow.objects.create(
                beneficiary_list=beneficiary_list,
                line=line,
                district=district,
                first_name="Mary",
                last_name="Mwansa",
                household=households[district],
                state=BeneficiaryRowState.ALREADY_ENROLLED,
            )
    LogEntry.objects.create(
        user=ministry,
        content_type=ContentType.objects.get_for_model(Delivery),
        object_id=str(Delivery.objects.first().pk),
        object_repr="a delivery",
        action_flag=CHANGE,
        change_message="Retry delivery",
    )
    return {"samfya": samfya, "lunga": lunga, "ministry": ministry, "households": households}


@pytest.fixture
def superuser(db):
    return UserFactory(username="root_world", role=Role.MINISTRY, is_staff=True, is_superuser=True)


@pytest.fixture
def samfya_staff_with_every_permission(samfya):
    """A front-desk officer of Samfya let into the admin with every permission of the project's apps."""
    user = UserFactory(username="samfya_all_permissions", role=Role.FRONT_DESK, districts=[samfya], is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label__in=PROJECT_APPS))
    return User.objects.get(pk=user.pk)  # permissions are cached per instance


# --- every model is there, and says how it is scoped ---------------------------------------------------------


def test_every_model_of_the_project_apps_is_in_the_admin_or_says_why_not():
    missing = [
        label_of(model)
        for model in project_models()
        if model not in admin.site._registry and label_of(model) not in NOT_IN_THE_ADMIN
    ]
    assert not missing, f"Register these in the admin, or add them to NOT_IN_THE_ADMIN with a reason: {missing}"
    labels = {label_of(model) for model in project_models()}
    registered = {label_of(model) for model in admin.site._registry}
    stale = [label for label in NOT_IN_THE_ADMIN if label not in labels or label in registered]
    assert not stale, f"NOT_IN_THE_ADMIN names models that no longer exist or are registered: {stale}"
    assert all(reason.strip() for reason in NOT_IN_THE_ADMIN.values())


def test_every_registered_model_of_the_project_apps_says_how_it_is_scoped():
    undeclared = [
        label_of(model)
        for model in registered_models()
        if model._meta.app_label in PROJECT_APPS and not is_scoped(model) and label_of(model) not in NOT_SCOPED
    ]
    assert not undeclared, f"Say how these are scoped (SCOPED_BY_DISTRICT, or NOT_SCOPED with why): {undeclared}"
    twice = [label for label in NOT_SCOPED if label in SCOPED_BY_DISTRICT or label in SCOPED_OTHERWISE]
    assert not twice


# --- every page opens ------------------------------------------------------------------------------------------


def test_a_superuser_opens_every_list_filter_search_add_and_change_page(client, world, superuser):
    client.force_login(superuser)
    request = as_request(superuser)
    for model in registered_models():
        model_admin = admin.site._registry[model]
        label = label_of(model)
        listed = client.get(admin_url(model, "changelist"))
        assert listed.status_code == 200, label
        for link in filter_links(listed.content.decode()):
            assert client.get(admin_url(model, "changelist") + link).status_code == 200, (label, link)
        if model_admin.get_search_fields(request):
            assert client.get(admin_url(model, "changelist"), {"q": "SAM"}).status_code == 200, label
        if model_admin.has_add_permission(request):
            assert client.get(admin_url(model, "add")).status_code == 200, label
        obj = model._default_manager.order_by("pk").first()
        if obj is None:
            assert model._meta.app_label not in PROJECT_APPS, f"the world has no {label}: add one"
            continue
        assert client.get(admin_url(model, "change", obj.pk)).status_code == 200, label
        assert client.get(admin_url(model, "history", obj.pk)).status_code == 200, label


def test_ministry_staff_see_every_district_in_every_list_by_their_role(client, world):
    ministry = world["ministry"]
    assert not ministry.user_permissions.exists() and not ministry.groups.exists()
    client.force_login(ministry)
    request = as_request(ministry)
    for model in registered_models():
        if model._meta.app_label not in PROJECT_APPS:
            continue
        label = label_of(model)
        assert client.get(admin_url(model, "changelist")).status_code == 200, label
        visible = admin.site._registry[model].get_queryset(request)
        assert visible.count() == model._default_manager.count(), label
        obj = model._default_manager.order_by("-pk").first()
        assert client.get(admin_url(model, "change", obj.pk)).status_code == 200, label


# --- and a district's staff see their district only -------------------------------------------------------------------


def test_district_staff_with_every_permission_see_nothing_of_another_district(
    client, world, samfya_staff_with_every_permission
):
    user = samfya_staff_with_every_permission
    district_ids = [world["samfya"].pk]
    client.force_login(user)
    request = as_request(user)
    lunga_number = world["households"][world["lunga"]].number
    for model in registered_models():
        model_admin = admin.site._registry[model]
        label = label_of(model)
        listed = client.get(admin_url(model, "changelist"))
        # Every permission of the project's apps, none of Django's own (groups, tokens, the admin's log);
        # another app's admin may let them in by their role, or not.
        assert listed.status_code == 200 if model._meta.app_label in PROJECT_APPS else listed.status_code in (200, 403)
        if listed.status_code == 403:
            continue
        assert OTHER_DISTRICT_MARKER not in listed.content.decode(), label
        for link in filter_links(listed.content.decode()):
            filtered = client.get(admin_url(model, "changelist") + link)
            assert filtered.status_code == 200, (label, link)
            assert OTHER_DISTRICT_MARKER not in filtered.content.decode(), (label, link)
        if model_admin.get_search_fields(request):
            searched = client.get(admin_url(model, "changelist"), {"q": lunga_number})
            assert searched.status_code == 200, label
            if is_scoped(model):
                found = searched.context["cl"].queryset
                assert not out_of_scope(model, found, user, district_ids).exists(), label
        if model_admin.has_add_permission(request):
            assert client.get(admin_url(model, "add")).status_code == 200, label
        if not is_scoped(model):
            continue

        visible = model_admin.get_queryset(request)
        assert not out_of_scope(model, visible, user, district_ids).exists(), label
        elsewhere = out_of_scope(model, model._default_manager.all(), user, district_ids).order_by("pk").first()
        assert elsewhere is not None, f"the world has no {label} outside Samfya: add one"
        assert client.get(admin_url(model, "change", elsewhere.pk)).status_code == 404, label
        assert client.get(admin_url(model, "history", elsewhere.pk)).status_code == 404, label
        own = visible.order_by("pk").first()
        if own is not None:
            page = client.get(admin_url(model, "change", own.pk))
            assert page.status_code == 200, label
            assert OTHER_DISTRICT_MARKER not in page.content.decode(), label


def test_district_staff_see_their_own_districts_rows(client, world, samfya_staff_with_every_permission):
    """The other half of scoping: the lists are not simply empty."""
    request = as_request(samfya_staff_with_every_permission)
    samfya_number = world["households"][world["samfya"]].number
    for label in ("registry.household", "referrals.referral", "payments.enrolment", "payments.payment"):
        model = apps.get_model(label)
        assert admin.site._registry[model].get_queryset(request).exists(), label
    client.force_login(samfya_staff_with_every_permission)
    assert samfya_number in client.get(admin_url(apps.get_model("registry.household"), "changelist")).text
