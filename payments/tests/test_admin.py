"""Enrolments, payment cycles and payments in the admin: every page opens, rows
change only through actions that call the services (maker-checker included),
and nobody sees beyond their scope, not even by typing an id."""

import pytest
from django.contrib.auth.models import Permission

from payments.models import (
    CycleEvent,
    CycleStatus,
    Enrolment,
    EnrolmentEvent,
    EnrolmentSource,
    EnrolmentStatus,
    Payment,
    PaymentChannel,
    PaymentCycle,
    PaymentEvent,
    Reconciliation,
    ReconciliationRow,
)
from payments.payroll import payment_cycle_create, payroll_approve, payroll_export, payroll_generate
from payments.services import enrolment_apply, enrolment_transition, payment_dispute_raise
from registry.tests.factories import UserFactory
from spf.models import Role, User

from .makers import enrol_active, first_of_month, make_agency, make_household, make_officer

E = EnrolmentStatus
MODELS = (
    "enrolment",
    "enrolmentevent",
    "paymentcycle",
    "cycleevent",
    "payment",
    "paymentevent",
    "reconciliation",
    "reconciliationrow",
)


def staff(user: User) -> User:
    """The user let into the admin with Django's view permission on every payments model."""
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="payments", codename__startswith="view_")
    )
    return User.objects.get(pk=user.pk)  # permissions are cached per instance


def page(client, user, path: str, **params) -> str:
    client.force_login(user)
    response = client.get(path, params)
    assert response.status_code == 200, (path, response.status_code)
    return response.content.decode()


def run_action(client, user, model: str, action: str, objects) -> list[str]:
    """Run an admin action on `objects` as `user`; the messages it left."""
    client.force_login(user)
    response = client.post(
        f"/admin/payments/{model}/",
        {"action": action, "_selected_action": [str(obj.pk) for obj in objects]},
        follow=True,
    )
    assert response.status_code == 200
    return [str(message) for message in response.context["messages"]]


@pytest.fixture
def lunga_household(lunga_officer, lunga_village):
    return make_household(officer=lunga_officer, village=lunga_village, last_name="Lungu")


@pytest.fixture
def enrolled(household, lunga_household, programme, maker, checker):
    return {
        "samfya": enrol_active(household=household, programme=programme, maker=maker, checker=checker),
        "lunga": enrol_active(
            household=lunga_household, programme=programme, maker=maker, checker=checker, account_number="0977000002"
        ),
    }


@pytest.fixture
def reconciled(maker, checker, programme, enrolled):
    """A cycle generated, approved, exported and reconciled: a row in every model."""
    from payments.reconciliation import reconciliation_import

    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    payroll_approve(acting_user=checker, cycle=cycle)
    payroll_export(acting_user=maker, cycle=cycle, channel=PaymentChannel.MOBILE_MONEY)
    paid = Payment.objects.get(enrolment=enrolled["samfya"])
    content = f"reference,status,amount,paid_at,transaction_id\n{paid.reference},paid,150.00,2026-11-05 10:00,TX-1\n"
    reconciliation_import(acting_user=maker, cycle=cycle, file_name="provider.csv", content=content.encode())
    return cycle


@pytest.fixture
def samfya_staff(samfya_officer):
    return staff(samfya_officer)


def _one_of_each(cycle: PaymentCycle, enrolment: Enrolment) -> dict[str, int]:
    payment = Payment.objects.get(cycle=cycle, enrolment=enrolment)
    reconciliation = Reconciliation.objects.get(cycle=cycle)
    return {
        "enrolment": enrolment.pk,
        "enrolmentevent": EnrolmentEvent.objects.filter(enrolment=enrolment).first().pk,
        "paymentcycle": cycle.pk,
        "cycleevent": CycleEvent.objects.filter(cycle=cycle).first().pk,
        "payment": payment.pk,
        "paymentevent": PaymentEvent.objects.filter(payment=payment).first().pk,
        "reconciliation": reconciliation.pk,
        "reconciliationrow": ReconciliationRow.objects.filter(reconciliation=reconciliation).first().pk,
    }


# --- pages ---------------------------------------------------------------------------------------


def test_ministry_staff_open_every_list_and_every_page(client, ministry_user, enrolled, reconciled):
    assert "Payments" in page(client, ministry_user, "/admin/")
    ids = _one_of_each(reconciled, enrolled["samfya"])
    for model in MODELS:
        page(client, ministry_user, f"/admin/payments/{model}/")
        page(client, ministry_user, f"/admin/payments/{model}/{ids[model]}/change/")


def test_the_lists_search_and_filter(client, ministry_user, enrolled, reconciled):
    samfya, lunga = enrolled["samfya"], enrolled["lunga"]
    for term in (samfya.number, str(samfya.pk), samfya.household.number):
        listed = page(client, ministry_user, "/admin/payments/enrolment/", q=term)
        assert samfya.household.number in listed and lunga.household.number not in listed
    paid = Payment.objects.get(enrolment=samfya)
    listed = page(client, ministry_user, "/admin/payments/payment/", status="paid")
    assert paid.reference in listed and Payment.objects.get(enrolment=lunga).reference not in listed
    assert paid.reference in page(client, ministry_user, "/admin/payments/payment/", q="TX-1")
    assert paid.reference in page(client, ministry_user, "/admin/payments/payment/", cycle__id__exact=reconciled.pk)
    assert paid.reference in page(client, ministry_user, "/admin/payments/reconciliationrow/", outcome="applied")


def test_a_cycle_page_shows_its_totals_by_district_and_its_files(client, ministry_user, enrolled, reconciled):
    shown = page(client, ministry_user, f"/admin/payments/paymentcycle/{reconciled.pk}/change/")
    assert "<td>Lunga</td>" in shown and "<td>Samfya</td>" in shown
    assert "ZMW\u00a0300.00" in shown
    assert "provider.csv" in shown


def test_rows_change_only_through_actions(client, ministry_user, enrolled, reconciled):
    client.force_login(ministry_user)
    enrolment = enrolled["samfya"]
    for model in MODELS:
        assert client.get(f"/admin/payments/{model}/add/").status_code == 403
    response = client.post(f"/admin/payments/enrolment/{enrolment.pk}/change/", {"status": "exited"})
    assert response.status_code == 403
    assert client.post(f"/admin/payments/enrolment/{enrolment.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Enrolment.objects.get(pk=enrolment.pk).status == E.ACTIVE


# --- actions -----------------------------------------------------------------------------------------


def test_the_approve_action_respects_maker_checker(client, maker, checker, household, programme):
    enrolment = enrolment_apply(
        acting_user=maker,
        household=household,
        programme=programme,
        source=EnrolmentSource.AGENCY,
        channel=PaymentChannel.CASH,
        pay_point="Samfya boma",
    )
    enrolment_transition(enrolment=enrolment, to_status=E.VERIFIED, acting_user=maker)

    refused = run_action(client, staff(maker), "enrolment", "approve_selected", [enrolment])

    assert any("Maker-checker" in message and enrolment.number in message for message in refused), refused
    assert Enrolment.objects.get(pk=enrolment.pk).status == E.VERIFIED

    done = run_action(client, staff(checker), "enrolment", "approve_selected", [enrolment])

    assert "1 enrolment(s) approved." in done
    approved = Enrolment.objects.get(pk=enrolment.pk)
    assert (approved.status, approved.approved_by) == (E.APPROVED, checker)
    assert approved.events.filter(to_status=E.APPROVED, actor=checker).count() == 1


def test_the_verify_action_names_what_the_state_machine_refuses(client, maker, enrolled):
    messages = run_action(client, staff(maker), "enrolment", "verify_selected", [enrolled["samfya"]])

    assert any("status:" in message and "it can go to" in message for message in messages), messages


@pytest.fixture
def tasks_run_in_process():
    """Queued jobs run in the test's process, after commit, even when a broker is configured."""
    from spf.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before


def test_the_cycle_actions_generate_and_approve_with_maker_checker(
    client, maker, checker, programme, enrolled, tasks_run_in_process, django_capture_on_commit_callbacks
):
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())

    with django_capture_on_commit_callbacks(execute=True):
        said = run_action(client, staff(maker), "paymentcycle", "generate_selected", [cycle])
    assert any("Payroll generation queued" in m for m in said), said
    cycle.refresh_from_db()
    assert (cycle.status, cycle.payment_count, cycle.generated_by) == (CycleStatus.GENERATED, 2, maker)
    # The request and its answer are in the cycle's history: who asked, then the generation done for them.
    assert list(cycle.events.values_list("action", "actor")) == [
        ("created", maker.pk),
        ("generation_queued", maker.pk),
        ("generated", maker.pk),
    ]

    refused = run_action(client, staff(maker), "paymentcycle", "approve_selected", [cycle])
    assert any("Maker-checker" in message for message in refused), refused
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.GENERATED

    run_action(client, staff(checker), "paymentcycle", "approve_selected", [cycle])
    cycle.refresh_from_db()
    assert (cycle.status, cycle.approved_by) == (CycleStatus.APPROVED, checker)


def test_the_window_cannot_run_a_payroll_from_the_admin(client, samfya_staff, maker, programme, enrolled):
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())

    client.force_login(samfya_staff)
    response = client.post(
        "/admin/payments/paymentcycle/", {"action": "generate_selected", "_selected_action": [cycle.pk]}, follow=True
    )

    assert response.status_code == 200
    cycle.refresh_from_db()
    assert cycle.status == CycleStatus.CREATED


def test_the_committee_is_offered_no_actions(client, committee_samfya, enrolled):
    shown = page(client, staff(committee_samfya), "/admin/payments/enrolment/")
    assert enrolled["samfya"].number in shown
    assert "approve_selected" not in shown and "verify_selected" not in shown


# --- scope -------------------------------------------------------------------------------------------


def test_district_staff_see_their_districts_rows_and_not_others(client, samfya_staff, enrolled, reconciled):
    samfya, lunga = enrolled["samfya"], enrolled["lunga"]
    for model in ("enrolment", "enrolmentevent", "payment", "paymentevent"):
        listed = page(client, samfya_staff, f"/admin/payments/{model}/")
        assert lunga.household.number not in listed and lunga.number not in listed
        assert Payment.objects.get(enrolment=lunga).reference not in listed
    assert samfya.number in page(client, samfya_staff, "/admin/payments/enrolment/")
    ids = _one_of_each(reconciled, lunga)
    client.force_login(samfya_staff)
    for model in ("enrolment", "enrolmentevent", "payment", "paymentevent", "reconciliation", "reconciliationrow"):
        assert client.get(f"/admin/payments/{model}/{ids[model]}/change/").status_code == 404, model


def test_district_staff_read_a_cycle_with_only_their_districts_totals(
    client, samfya_staff, ministry_user, enrolled, reconciled
):
    shown = page(client, samfya_staff, f"/admin/payments/paymentcycle/{reconciled.pk}/change/")
    assert "<td>Samfya</td>" in shown and "<td>Lunga</td>" not in shown
    # The provider's file lists every district's payments: its rows are for the payroll's runners.
    reconciliation = Reconciliation.objects.get(cycle=reconciled)
    assert f"/admin/payments/reconciliation/{reconciliation.pk}/change/" in page(
        client, ministry_user, f"/admin/payments/paymentcycle/{reconciled.pk}/change/"
    )
    assert f"/admin/payments/reconciliation/{reconciliation.pk}/change/" not in shown
    assert "provider.csv" not in page(client, samfya_staff, "/admin/payments/reconciliation/")


def test_another_agencys_staff_cannot_see_or_approve_this_agencys_cycle(client, samfya, maker, programme, enrolled):
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    other = staff(make_officer(make_agency("MOE"), [samfya]))

    assert str(cycle) not in page(client, other, "/admin/payments/paymentcycle/")
    assert enrolled["samfya"].number not in page(client, other, "/admin/payments/enrolment/")
    assert client.get(f"/admin/payments/paymentcycle/{cycle.pk}/change/").status_code == 404
    assert client.get(f"/admin/payments/enrolment/{enrolled['samfya'].pk}/change/").status_code == 404
    run_action(client, other, "paymentcycle", "approve_selected", [cycle])
    run_action(client, other, "enrolment", "verify_selected", [enrolled["samfya"]])

    cycle.refresh_from_db()
    assert (cycle.status, cycle.approved_by) == (CycleStatus.GENERATED, None)
    assert not EnrolmentEvent.objects.filter(actor=other).exists()


def test_staff_without_the_view_permission_do_not_see_the_payments_admin(client, samfya_officer, enrolled):
    samfya_officer.is_staff = True
    samfya_officer.save(update_fields=["is_staff"])
    client.force_login(samfya_officer)
    assert client.get("/admin/payments/enrolment/").status_code == 403


def test_ministry_staff_see_payments_by_their_role(client, db, enrolled):
    ministry = UserFactory(username="ministry_no_perms", role=Role.MINISTRY, is_staff=True)
    ministry.user_permissions.clear()
    ministry.groups.clear()
    listed = page(client, ministry, "/admin/payments/enrolment/")
    assert enrolled["samfya"].number in listed and enrolled["lunga"].number in listed


def test_a_payment_the_household_disputes_is_found_by_the_disputed_filter(client, ministry_user, enrolled, reconciled):
    paid = Payment.objects.get(enrolment=enrolled["samfya"])
    other = Payment.objects.get(enrolment=enrolled["lunga"])
    payment_dispute_raise(acting_user=ministry_user, payment=paid, note="Never arrived on the wallet")

    listed = page(client, ministry_user, "/admin/payments/payment/", disputed="yes")

    assert paid.reference in listed and other.reference not in listed
    shown = page(client, ministry_user, f"/admin/payments/payment/{paid.pk}/change/")
    assert "Never arrived on the wallet" in shown


def test_ministry_staff_read_an_enrolments_history_by_their_role(client, db, enrolled, checker):
    ministry = UserFactory(username="ministry_history", role=Role.MINISTRY, is_staff=True)
    shown = page(client, ministry, f"/admin/payments/enrolment/{enrolled['lunga'].pk}/change/")
    assert checker.username in shown  # who approved it, from the history inline
