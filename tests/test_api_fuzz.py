"""Bad input never crashes the API: schemathesis generates requests from /api/schema/ for every operation,
as ministry staff and as a front-desk officer of one district (so the scoped paths are exercised too), and
every answer must be no 5xx, a documented status code with a body that matches the schema, and an error in
the one JSON shape (`spf/api/errors.py`).

The app is called in-process through its WSGI handler (no server, no network), inside the test's
transaction, on a small world seeded here: path ids hit real objects some of the time.

Bounded for CI: FUZZ_EXAMPLES examples per operation and generation mode (default 4), derandomized, no
shrinking. Run it longer locally: `FUZZ_EXAMPLES=500 .venv/bin/pytest -q tests/test_api_fuzz.py`; other
requests than CI's with FUZZ_SEED=<n>; one operation with FUZZ_ONLY="POST /api/v1/households/" (see
docs/api.md).
"""

import os

import pytest
import schemathesis
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from grievances.services import grievance_attachment_add, grievance_register
from payments.payroll import payment_cycle_create, payroll_approve, payroll_export, payroll_generate
from payments.reconciliation import reconciliation_import
from payments.tests.makers import enrol_active, first_of_month, make_cash_programme, make_officer
from referrals.services import referral_create
from referrals.tests.makers import make_agency, make_household, make_programme
from registry.tests.factories import UserFactory, make_district, make_village
from spf.celery import app as celery_app
from spf.models import Role

pytestmark = pytest.mark.postgres

# Examples per operation and generation mode (positive, negative). Four keeps the whole run (two users, about
# fifty operations) within a couple of minutes on a shared 2-core machine; raise it to hunt.
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
# The same requests on every run (derandomized); FUZZ_SEED=<n> explores others.
FUZZ_SEED = os.environ.get("FUZZ_SEED")
# Only the operations whose label ("POST /api/v1/households/") contains this, to chase one failure.
FUZZ_ONLY = os.environ.get("FUZZ_ONLY", "")


@pytest.fixture
def tasks_run_in_process():
    """A task queued by a request runs in the test's process, never on a broker (the fuzz run needs no worker)."""
    before = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = before


@pytest.fixture
def fuzz_world(db, tasks_run_in_process, settings, tmp_path):
    """Two districts, a household in each, a programme with an active enrolment, a referral, an exported and
    reconciled payment cycle, a grievance with a document: what the path ids can point at."""
    settings.MEDIA_ROOT = tmp_path
    samfya, lunga = make_district("SAM", "Samfya"), make_district("LUN", "Lunga")
    samfya_village, lunga_village = make_village(samfya), make_village(lunga)
    ministry = UserFactory(username="fuzz_ministry", role=Role.MINISTRY, is_staff=True)
    frontdesk = UserFactory(username="fuzz_frontdesk", role=Role.FRONT_DESK, districts=[samfya])
    agency = make_agency("MCDSS")
    maker = make_officer(agency, [samfya, lunga], name="maker")
    checker = make_officer(agency, [samfya, lunga], name="checker")
    programme = make_cash_programme(agency=agency, districts=[samfya, lunga], ministry_user=ministry)
    referral_programme = make_programme(code="HGSF", agency=agency, districts=[samfya, lunga])
    households = {
        "samfya": make_household(officer=frontdesk, village=samfya_village),
        "lunga": make_household(officer=ministry, village=lunga_village, last_name="Banda"),
    }
    referral = referral_create(acting_user=frontdesk, household=households["samfya"], programme=referral_programme)
    enrolments = [
        enrol_active(household=household, programme=programme, maker=maker, checker=checker)
        for household in households.values()
    ]
    cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())
    payroll_generate(acting_user=maker, cycle=cycle)
    payroll_approve(acting_user=checker, cycle=cycle)
    payroll_export(acting_user=maker, cycle=cycle, channel="mobile_money")
    payment = cycle.payments.order_by("pk").first()
    reconciliation = reconciliation_import(
        acting_user=maker,
        cycle=cycle,
        file_name="provider.csv",
        content=(
            "reference,status,amount,paid_at,transaction_id\n"
            f"{payment.reference},paid,{payment.amount},2026-11-15 10:00,TX-1\n"
        ).encode(),
    )
    grievance = grievance_register(
        acting_user=frontdesk,
        category="payment",
        description="The payment did not arrive.",
        household=households["samfya"],
        complainant=households["samfya"].head,
    )
    attachment = grievance_attachment_add(
        acting_user=frontdesk,
        grievance=grievance,
        file=SimpleUploadedFile("letter.pdf", b"%PDF-1.4\n%%EOF\n", content_type="application/pdf"),
    )
    members = [household.head_id for household in households.values()]
    return {
        "tokens": {
            "ministry": Token.objects.create(user=ministry).key,
            "frontdesk": Token.objects.create(user=frontdesk).key,
        },
        # Real ids and codes per path parameter; the generated ones are mixed in with them.
        "ids": {
            "/api/v1/households/": [h.pk for h in households.values()],
            "/api/v1/individuals/": members,
            "/api/v1/enrolments/": [e.pk for e in enrolments],
            "/api/v1/referrals/": [referral.pk],
            "/api/v1/payment-cycles/": [cycle.pk],
            "/api/v1/payments/": list(cycle.payments.values_list("pk", flat=True)),
            "/api/v1/grievances/": [grievance.pk],
            "/api/v1/programmes/": [programme.code, referral_programme.code],
            "/api/v1/agencies/": [agency.code],
        },
        "attachment_ids": [attachment.pk],
        "reconciliation_ids": [reconciliation.pk],
    }


def _real_path_parameters(operation, world) -> dict[str, list]:
    """The ids and codes of seeded objects that `operation`'s path parameters can take."""
    prefix = "/" + "/".join(operation.path.strip("/").split("/")[:3]) + "/"
    names = {parameter.name for parameter in operation.path_parameters}
    real = {}
    for name in names & {"id", "code"}:
        if prefix in world["ids"]:
            real[name] = world["ids"][prefix]
    if "attachment_id" in names:
        real["attachment_id"] = world["attachment_ids"]
    if "reconciliation_id" in names:
        real["reconciliation_id"] = world["reconciliation_ids"]
    return real


def _can_be_invalid(operation) -> bool:
    """Whether a request to `operation` can break its schema at all: a path of plain text cannot."""
    if any(len(list(part)) for part in (operation.body, operation.query, operation.headers, operation.cookies)):
        return True
    return any(parameter.definition.get("schema") != {"type": "string"} for parameter in operation.path_parameters)


def _cases(operation, mode, world):
    """Generated cases; half of them with path ids of objects that exist, so the handlers behind the 404 run."""
    generated = operation.as_strategy(generation_mode=mode)
    real = _real_path_parameters(operation, world)
    if not real:
        return generated
    chosen = st.fixed_dictionaries({name: st.sampled_from(values) for name, values in real.items()})
    return st.one_of(
        generated,
        chosen.flatmap(lambda parameters: operation.as_strategy(generation_mode=mode, path_parameters=parameters)),
    )


@schemathesis.check
def error_shape(ctx, response, case):
    """Every 4xx in the one shape: {"error": {"code", "message", "fields"}}."""
    if response.status_code < 400:
        return None
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, f"not the error shape: {body!r}"
    error = body["error"]
    assert {"code", "message", "fields"} <= set(error), f"error without code, message or fields: {error!r}"
    assert isinstance(error["message"], str) and error["message"], f"error without a message: {error!r}"
    assert isinstance(error["fields"], dict), f"fields is not an object: {error!r}"
    return None


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    error_shape,
]


@pytest.fixture
def wsgi_app_in_test_transaction():
    """The WSGI handler as the server runs it, less what Django's own test client also leaves out: closing the
    database connection at the end of each request would close the test's transaction with it."""
    from spf.wsgi import application

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield application
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.parametrize("user", ["ministry", "frontdesk"])
def test_no_request_makes_the_api_fail_or_break_its_contract(fuzz_world, wsgi_app_in_test_transaction, user):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app_in_test_transaction)
    # The token is the request's credentials: no generated cookies or tokens beside it.
    schema.config.generation.update(with_security_parameters=False)
    headers = {"Authorization": f"Token {fuzz_world['tokens'][user]}"}
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if FUZZ_ONLY and FUZZ_ONLY not in operation.label:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if mode == GenerationMode.NEGATIVE and not _can_be_invalid(operation):
                continue

            @settings(
                max_examples=FUZZ_EXAMPLES,
                derandomize=FUZZ_SEED is None,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failing request is reported
                suppress_health_check=list(HealthCheck),
                verbosity=Verbosity.quiet,
            )
            @given(case=_cases(operation, mode, fuzz_world))
            def request_is_answered_well(case):
                # Each request starts from the seeded world, and a failed one cannot poison the next.
                with transaction.atomic():
                    case.call_and_validate(headers=headers, checks=CHECKS)
                    transaction.set_rollback(True)

            if FUZZ_SEED is not None:
                request_is_answered_well = seed(int(FUZZ_SEED))(request_is_answered_well)

            try:
                request_is_answered_well()
            except Unsatisfiable:
                continue  # nothing is invalid about, say, a code in a path: no negative requests to make
            except (Exception, BaseExceptionGroup) as failure:  # noqa: BLE001 - every operation is fuzzed; all failures are reported
                failures.append(f"{operation.label} ({mode}): {failure}")
                print(f"FUZZ FAILURE as {user}: {failures[-1]}", flush=True)  # seen at once with -s on long runs
    assert not failures, f"{len(failures)} operations failed as {user}:\n\n" + "\n\n".join(failures)
