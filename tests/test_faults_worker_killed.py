"""A Celery worker killed (SIGKILL) in the middle of a job: after a new worker starts, the job is complete,
nothing doubled and nothing lost.

Each test runs real workers as processes of their own (tests/fault_worker.py) on a private Redis and the
test database, kills the first one at a known point of the job, starts a second one, and reads the result
in the database. How each job comes back differs, and each test shows one way (docs/operations.md):

- a recompute run marked running whose lock nobody holds is queued again by the new worker as it connects;
- a payroll generation's message, never acknowledged, is handed to the new worker by Redis once its
  visibility timeout has passed (a short one here; an hour in production);
- a referral delivery's lease runs out and the deliveries sweep sends it again, with the same
  Idempotency-Key, so the agency acts on it once.
"""

import pytest
from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from payments.models import CycleStatus, Enrolment, Payment
from payments.payroll import payment_cycle_create, payroll_generate_queue
from payments.tests.makers import enrol_active, first_of_month, make_cash_programme, make_officer
from programmes.models import EligibilityChange, EligibilityResult, Programme, ProgrammeStatus, RecomputeStatus
from programmes.services import programme_set_rules, recompute_run_create
from programmes.tasks import recompute_run_execute
from referrals.delivery import ATTEMPT_UNFINISHED, DELIVERY_LEASE
from referrals.models import Delivery, DeliveryStatus
from referrals.services import referral_create
from referrals.tests.delivery_receiver import Receiver, household_in, programme_of, push_agency
from referrals.tests.makers import make_agency, make_household, make_programme
from spf.outbox import job_queue
from spf.running import RunningJob, job_is_orphaned

from .faults import PrivateRedis, WorkerProcess, celery_broker, tasks_in_process, unacked_older_than, wait_for

pytestmark = [
    pytest.mark.celery_worker,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not settings.CELERY_BROKER_URL, reason="needs Redis (set CELERY_BROKER_URL)"),
]

# The payroll test's visibility timeout: a killed worker's message goes back to the queue this long after
# it was taken. Short, so the test does not wait an hour; the production value and why: the settings.
SHORT_VISIBILITY_SECONDS = 2


@pytest.fixture
def redis_server():
    server = PrivateRedis().start()
    yield server
    server.stop()


@pytest.fixture
def start_worker(redis_server, tmp_path):
    """Start a worker process on the private Redis; every one started is stopped at the end of the test."""
    started = []

    def start(**options) -> WorkerProcess:
        worker = WorkerProcess(broker_url=redis_server.url, log=tmp_path / f"worker-{len(started) + 1}.log", **options)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.stop()


def _programme_with_rule(code: str, *, agency, districts, rule: str, ministry_user) -> Programme:
    """An active programme with a rule, set while it was a draft so that nothing is assessed yet."""
    programme = make_programme(code=code, agency=agency, districts=districts)
    Programme.objects.filter(pk=programme.pk).update(status=ProgrammeStatus.DRAFT)
    programme_set_rules(
        acting_user=ministry_user, programme=Programme.objects.get(pk=programme.pk), eligibility_rule=rule
    )
    Programme.objects.filter(pk=programme.pk).update(status=ProgrammeStatus.ACTIVE)
    return programme


def test_a_recompute_killed_between_steps_is_taken_up_again_and_assesses_every_household_once(
    redis_server,
    start_worker,
    samfya,
    lunga,
    samfya_village,
    lunga_village,
    samfya_officer,
    lunga_officer,
    ministry_user,
):
    with tasks_in_process():
        households = [
            make_household(officer=samfya_officer, village=samfya_village, last_name=name)
            for name in ("Mwansa", "Banda", "Phiri")
        ]
        households += [
            make_household(officer=lunga_officer, village=lunga_village, last_name=name)
            for name in ("Lungu", "Tembo", "Zulu")
        ]
        agency = make_agency("MCDSS")
        for code, rule in (("SCT", "household.size >= 2"), ("HGSF", "true")):
            _programme_with_rule(code, agency=agency, districts=[samfya, lunga], rule=rule, ministry_user=ministry_user)
    assert not EligibilityResult.objects.exists()

    with celery_broker(redis_server.url):
        # As the nightly job and the admin's "recompute" do: the run and its job in one transaction.
        with transaction.atomic():
            run = recompute_run_create(acting_user=ministry_user, reason="every programme, every district")
            job_queue(task=recompute_run_execute, args=[run.pk])
        first = start_worker(pause_at="recompute_step")
        first.wait_until_paused()
        assert not job_is_orphaned(RunningJob.RECOMPUTE_RUN, run.pk)  # the worker holds the run while on it
        first.kill()

        run.refresh_from_db()
        assert run.status == RecomputeStatus.RUNNING
        # One district's step was written before the worker died (two programmes, three households), not more.
        done = EligibilityResult.objects.values_list("household__district", flat=True).distinct()
        assert EligibilityResult.objects.count() == 6 and len(done) == 1
        # PostgreSQL ends the dead worker's session, and with it the run's lock: the run has no worker now.
        wait_for(lambda: job_is_orphaned(RunningJob.RECOMPUTE_RUN, run.pk), what="the killed worker's lock to go")

        second = start_worker()
        wait_for(
            lambda: _run_status(run) == RecomputeStatus.DONE,
            what="the new worker to take the run up again and finish it",
            logs=second.log,
        )

    run.refresh_from_db()
    assert "Taken up again" in run.message
    assert (run.done_steps, run.total_steps, run.households_assessed) == (4, 4, 12)
    # Every household has its result for every programme (one each: the database allows no more).
    assert EligibilityResult.objects.count() == 12
    assert set(EligibilityResult.objects.values_list("household", flat=True)) == {h.pk for h in households}
    # Each household's first assessment per programme recorded once: the step done twice changed nothing.
    changes = EligibilityChange.objects.values("household", "programme").annotate(n=Count("pk"))
    assert len(changes) == 12 and {change["n"] for change in changes} == {1}
    assert run.outcomes_changed == 12


def _run_status(run) -> str:
    run.refresh_from_db(fields=["status"])
    return run.status


def test_a_payroll_generation_killed_inside_its_transaction_is_redone_with_one_payment_per_enrolment(
    redis_server,
    start_worker,
    samfya,
    lunga,
    samfya_village,
    lunga_village,
    samfya_officer,
    lunga_officer,
    ministry_user,
):
    with tasks_in_process():
        agency = make_agency("MCDSS")
        maker = make_officer(agency, [samfya, lunga], name="maker")
        checker = make_officer(agency, [samfya, lunga], name="checker")
        programme = make_cash_programme(agency=agency, districts=[samfya, lunga], ministry_user=ministry_user)
        for officer, village, name in (
            (samfya_officer, samfya_village, "Mwansa"),
            (samfya_officer, samfya_village, "Banda"),
            (lunga_officer, lunga_village, "Lungu"),
            (lunga_officer, lunga_village, "Tembo"),
        ):
            household = make_household(officer=officer, village=village, last_name=name)
            enrol_active(
                household=household,
                programme=programme,
                maker=maker,
                checker=checker,
                account_number=f"097700{household.pk:04d}",
            )
        cycle = payment_cycle_create(acting_user=maker, programme=programme, period_start=first_of_month())

    with celery_broker(redis_server.url):
        payroll_generate_queue(acting_user=maker, cycle=cycle)
        first = start_worker(pause_at="payroll", visibility_timeout=SHORT_VISIBILITY_SECONDS)
        first.wait_until_paused()
        first.kill()

        cycle.refresh_from_db()
        # Its transaction died with it: not one payment of the half-done generation is left.
        assert cycle.status == CycleStatus.CREATED and not Payment.objects.filter(cycle=cycle).exists()
        wait_for(
            lambda: unacked_older_than(redis_server, SHORT_VISIBILITY_SECONDS),
            what="the killed worker's message to outlive its visibility timeout",
        )

        second = start_worker(visibility_timeout=SHORT_VISIBILITY_SECONDS)
        wait_for(
            lambda: _cycle_status(cycle) == CycleStatus.GENERATED,
            what="the new worker to generate the payroll",
            logs=second.log,
        )

    enrolments = set(Enrolment.objects.filter(programme=programme).values_list("pk", flat=True))
    paid = list(Payment.objects.filter(cycle=cycle).values_list("enrolment", flat=True))
    assert len(enrolments) == 4 and sorted(paid) == sorted(enrolments)
    cycle.refresh_from_db()
    assert (cycle.payment_count, cycle.generated_by) == (4, maker)
    assert list(cycle.events.values_list("action", flat=True)) == ["created", "generation_queued", "generated"]


def _cycle_status(cycle) -> str:
    cycle.refresh_from_db(fields=["status"])
    return cycle.status


@pytest.fixture
def receiver():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


def test_a_referral_push_killed_while_the_agency_answers_is_delivered_once(
    redis_server, start_worker, receiver, samfya, samfya_village, samfya_officer
):
    with tasks_in_process():
        agency = push_agency(url=receiver.url)
        programme = programme_of(agency, district=samfya)
        household = household_in(samfya_village, officer=samfya_officer)

    with celery_broker(redis_server.url):
        # The agency's system takes the request and is slow to answer; the worker dies waiting.
        receiver.delay = 60
        referral = referral_create(acting_user=samfya_officer, household=household, programme=programme)
        delivery = Delivery.objects.get(referral=referral)
        first = start_worker()
        wait_for(lambda: receiver.received, what="the agency to receive the referral", logs=first.log)
        first.kill()

        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
        assert delivery.attempt_log.get().error == ATTEMPT_UNFINISHED

        receiver.delay = 0
        # The row's lease (DELIVERY_LEASE, two minutes) keeps a second worker from sending it while the first
        # may still be waiting for an answer. Rather than wait two minutes, the test lets them pass.
        assert delivery.next_attempt_at <= timezone.now() + DELIVERY_LEASE
        Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
        second = start_worker()
        wait_for(
            lambda: Delivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.DELIVERED).exists(),
            what="the new worker's sweep to deliver the referral",
            logs=second.log,
        )

    delivery.refresh_from_db()
    assert delivery.attempts == 2
    # The agency saw the same request twice, with the same Idempotency-Key, and acted on it once.
    keys = [request.headers["Idempotency-Key"] for request in receiver.received]
    assert keys == [delivery.idempotency_key] * 2
    assert receiver.received[0].body == receiver.received[1].body
    assert all(request.signature_ok for request in receiver.received)
    assert receiver.processed == [delivery.idempotency_key]
