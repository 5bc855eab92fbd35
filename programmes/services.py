"""Writes of the programme catalogue and of eligibility results.

Rules change only through `programme_set_rules` / `rule_version_restore`,
which keep every version. Results change only through the two assessment
paths: one household (explained by cel-python, for the front desk and after an
edit) and bulk (compiled to SQL, for a district or the whole country).
"""

import datetime
import logging
import math
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F, FilteredRelation, Q
from django.utils import timezone

from registry.models import Household, HouseholdStatus, Location, LocationLevel
from spf.running import RunningJob, job_claim, job_is_orphaned, orphans_detectable

from .models import (
    EligibilityChange,
    EligibilityOutcome,
    EligibilityResult,
    Programme,
    ProgrammeStatus,
    RecomputeRun,
    RecomputeStatus,
    RuleVersion,
    TargetUnit,
)
from .rules import RuleError, compile_expression
from .rules.sql import household_expression

logger = logging.getLogger(__name__)

# Household ids per bulk step (per district; ids of the districts interleave, so
# about half as many households at two districts). Each step is one transaction
# evaluating every programme in one grouped query: at 1,000,000 households a
# step of 100,000 ids takes two to four seconds on a small server (progress
# still moves, a front-desk re-check waits at most that long for the programme
# locks), and ten steps instead of forty save the per-step reads of the
# members' index that the join cannot skip.
RECOMPUTE_CHUNK = 100_000


# --- rules ------------------------------------------------------------------------


def _rule_errors(field: str, problem: RuleError) -> dict[str, list[str]]:
    return {field: [str(p) for p in getattr(problem, "problems", [problem])]}


def compile_programme_rules(*, eligibility_rule: str, benefit_formula: str, target_unit: str):
    """Both expressions compiled, or ValidationError naming the field and each problem's position."""
    target = "member" if target_unit == TargetUnit.INDIVIDUAL else "household"
    errors: dict[str, list[str]] = {}
    rule = formula = None
    if not eligibility_rule.strip():
        errors["eligibility_rule"] = ["Write the eligibility rule (for everyone: true)."]
    else:
        try:
            rule = compile_expression(eligibility_rule, kind="rule", target=target)
        except RuleError as problem:
            errors.update(_rule_errors("eligibility_rule", problem))
    if benefit_formula.strip():
        try:
            formula = compile_expression(benefit_formula, kind="formula", target=target)
        except RuleError as problem:
            errors.update(_rule_errors("benefit_formula", problem))
    if errors:
        raise ValidationError(errors)
    return rule, formula


@transaction.atomic
def programme_set_rules(
    *,
    acting_user,
    programme: Programme,
    eligibility_rule: str,
    benefit_formula: str = "",
    note: str = "",
    restored_from: RuleVersion | None = None,
) -> RuleVersion:
    """Save a new version of the rule and formula (validated first) and re-assess the programme everywhere."""
    programme = Programme.objects.select_for_update().get(pk=programme.pk)
    compile_programme_rules(
        eligibility_rule=eligibility_rule, benefit_formula=benefit_formula, target_unit=programme.target_unit
    )
    current = programme.current_version
    if current and (current.eligibility_rule, current.benefit_formula) == (
        eligibility_rule.strip(),
        benefit_formula.strip(),
    ):
        return current
    last = programme.versions.order_by("-number").values_list("number", flat=True).first() or 0
    version = RuleVersion.objects.create(
        programme=programme,
        number=last + 1,
        eligibility_rule=eligibility_rule.strip(),
        benefit_formula=benefit_formula.strip(),
        note=note[:255],
        restored_from=restored_from,
        created_by=acting_user,
    )
    programme.current_version = version
    programme.save(update_fields=["current_version", "updated_at"])
    if programme.status == ProgrammeStatus.ACTIVE:
        _recompute_after_commit(
            programme_id=programme.pk, reason=f"rules changed to v{version.number}", acting_user=acting_user
        )
    return version


def rule_version_restore(*, acting_user, version: RuleVersion) -> RuleVersion:
    """Bring back an old version: a new version with its text, saying where it came from."""
    return programme_set_rules(
        acting_user=acting_user,
        programme=version.programme,
        eligibility_rule=version.eligibility_rule,
        benefit_formula=version.benefit_formula,
        note=f"Restored from v{version.number}",
        restored_from=version,
    )


def _recompute_after_commit(*, programme_id: int | None, reason: str, acting_user=None) -> None:
    from spf.outbox import job_queue

    from .tasks import recompute_run_execute

    run = RecomputeRun.objects.create(programme_id=programme_id, reason=reason, started_by=acting_user)
    job_queue(task=recompute_run_execute, args=[run.pk])


def recompute_run_create(
    *, acting_user=None, programme: Programme | None = None, district: Location | None = None, reason: str = ""
) -> RecomputeRun:
    return RecomputeRun.objects.create(programme=programme, district=district, reason=reason, started_by=acting_user)


# A pending run this old whose job neither waits in the outbox nor was taken up was lost with the broker's
# data (a Redis restarted without its append-only file): it is queued again. Far longer than a run waits
# behind a busy queue, so a run merely waiting is not queued twice (which would be harmless, only wasteful).
RECOMPUTE_PENDING_LOST_AFTER = datetime.timedelta(minutes=30)


def recompute_runs_resume(*, now: datetime.datetime | None = None) -> list[int]:
    """Queue again the runs nobody would carry out otherwise; returns their ids (docs/operations.md).

    A run marked running whose lock nobody holds lost its worker; a pending run older than
    RECOMPUTE_PENDING_LOST_AFTER with no job waiting in the outbox lost its message. Beat runs this every
    five minutes, and each worker as it connects to the broker.
    """
    from spf.outbox import job_is_waiting, job_queue

    from .tasks import recompute_run_execute as task

    if not orphans_detectable():
        return []
    now = now or timezone.now()
    running = RecomputeRun.objects.filter(status=RecomputeStatus.RUNNING).values_list("pk", flat=True)
    lost = [run_id for run_id in running if job_is_orphaned(RunningJob.RECOMPUTE_RUN, run_id)]
    pending = RecomputeRun.objects.filter(
        status=RecomputeStatus.PENDING, created_at__lt=now - RECOMPUTE_PENDING_LOST_AFTER
    ).values_list("pk", flat=True)
    lost += [run_id for run_id in pending if not job_is_waiting(task=task, args=[run_id])]
    for run_id in lost:
        logger.warning("Recompute run %s has no worker and no queued job: queued again", run_id)
        job_queue(task=task, args=[run_id])
    return lost


# --- one household ---------------------------------------------------------------


@dataclass
class Assessment:
    programme: Programme
    outcome: str
    amount: object
    reasons: list
    missing: list
    eligible_members: list


def programmes_for_household(household: Household):
    """Active programmes running in the household's district, with a current rule."""
    return (
        Programme.objects.filter(
            status=ProgrammeStatus.ACTIVE, coverage__district_id=household.district_id, current_version__isnull=False
        )
        .select_related("current_version", "agency")
        .order_by("pk")
    )


def _outcome_of(value) -> str:
    if value is None:
        return EligibilityOutcome.NEEDS_INFORMATION
    return EligibilityOutcome.ELIGIBLE if value else EligibilityOutcome.NOT_ELIGIBLE


def assess_household(*, household: Household, programme: Programme, reference_date: datetime.date) -> Assessment:
    """Explain one household against one programme's current rule (no writes)."""
    version = programme.current_version
    rule, formula = compile_programme_rules(
        eligibility_rule=version.eligibility_rule,
        benefit_formula=version.benefit_formula,
        target_unit=programme.target_unit,
    )
    explained = rule.explain(household, reference_date=reference_date)
    outcome = explained.outcome
    amount = None
    missing = list(explained.missing)
    if outcome == EligibilityOutcome.ELIGIBLE and formula is not None:
        benefit = formula.explain(household, reference_date=reference_date)
        amount = benefit.value
        if amount is None:
            missing += [m for m in benefit.missing if m not in missing]
    if amount is not None:
        amount = round(amount, 2)
    return Assessment(
        programme=programme,
        outcome=outcome,
        amount=amount,
        reasons=list(explained.clauses),
        missing=missing,
        eligible_members=list(getattr(explained, "eligible_members", []) or []),
    )


@transaction.atomic
def eligibility_recompute_household(
    *, household_id: int, reference_date: datetime.date | None = None
) -> list[Assessment]:
    """Re-assess one household for every programme in its district and store what changed, with reasons."""
    reference_date = reference_date or timezone.localdate()
    household = Household.objects.select_related("district").prefetch_related("members").get(pk=household_id)
    programmes = list(programmes_for_household(household)) if household.status == HouseholdStatus.ACTIVE else []
    # The same lock order as a bulk step (programme rows by pk), so the two
    # never record the same change twice nor deadlock.
    # Programmes it has results for but no longer qualifies to be assessed in
    # are locked too: every writer of a change holds its programme's row, which
    # is what lets the referral sweep read changes up to a watermark safely.
    stale_ids = EligibilityResult.objects.filter(household=household).values_list("programme_id", flat=True)
    list(
        Programme.objects.select_for_update()
        .filter(pk__in={p.pk for p in programmes} | set(stale_ids))
        .order_by("pk")
        .values_list("pk")
    )
    now = timezone.now()
    existing = {r.programme_id: r for r in EligibilityResult.objects.select_for_update().filter(household=household)}
    assessments = []
    for programme in programmes:
        assessment = assess_household(household=household, programme=programme, reference_date=reference_date)
        assessments.append(assessment)
        result = existing.pop(programme.pk, None)
        if result is None:
            EligibilityResult.objects.create(
                household=household,
                programme=programme,
                outcome=assessment.outcome,
                amount=assessment.amount,
                reasons=assessment.reasons,
                missing=assessment.missing,
                eligible_members=assessment.eligible_members,
                rule_version=programme.current_version,
                evaluated_at=now,
                outcome_since=now,
            )
            EligibilityChange.objects.create(
                household=household,
                programme=programme,
                previous_outcome="",
                outcome=assessment.outcome,
                rule_version=programme.current_version,
                at=now,
            )
            continue
        changed = result.outcome != assessment.outcome
        if changed:
            EligibilityChange.objects.create(
                household=household,
                programme=programme,
                previous_outcome=result.outcome,
                outcome=assessment.outcome,
                rule_version=programme.current_version,
                at=now,
            )
            result.outcome_since = now
        result.outcome, result.amount = assessment.outcome, assessment.amount
        result.reasons, result.missing, result.eligible_members = (
            assessment.reasons,
            assessment.missing,
            assessment.eligible_members,
        )
        result.rule_version, result.evaluated_at = programme.current_version, now
        result.save()
    # Programmes that no longer apply (suspended, left the district, household dissolved).
    for result in existing.values():
        EligibilityChange.objects.create(
            household=household,
            programme_id=result.programme_id,
            previous_outcome=result.outcome,
            outcome="",
            rule_version=None,
            at=now,
        )
        result.delete()
    return assessments


# --- bulk ------------------------------------------------------------------------


def _json_literal() -> str:
    return "CAST('[]' AS jsonb)" if connection.vendor == "postgresql" else "'[]'"


@dataclass
class _BulkProgramme:
    """A programme of a bulk step with its rule and formula compiled once for the run."""

    programme: Programme
    rule: object
    formula: object


def _bulk_step(
    *,
    programmes: list[_BulkProgramme],
    district_id: int,
    id_from: int,
    id_to: int,
    reference_date: datetime.date,
    run: RecomputeRun | None,
) -> tuple[int, int]:
    """Assess households district_id, id in [id_from, id_to) for the given programmes in set-based SQL.

    Returns (assessments made, outcomes changed). One query evaluates every
    programme's rule and formula over one join of the households on their
    members (grouped by household), so the members are read once for all the
    programmes; the stored results of the range are read once too, and only
    the differences are written. One transaction: the results and the change
    events of a step are written together or not at all.
    """
    households = (
        Household.objects.filter(district_id=district_id, status=HouseholdStatus.ACTIVE, pk__gte=id_from, pk__lt=id_to)
        .order_by()
        # The range repeated on the members' side of the join: the planner cannot infer it, and
        # without it reads every member of the country at each step.
        .alias(
            step_members=FilteredRelation(
                "members", condition=Q(members__household_id__gte=id_from, members__household_id__lt=id_to)
            )
        )
        # The join made here, before any rule's subquery is resolved: otherwise Django
        # (5.2) may add a second, unfiltered join of the members that nothing reads.
        .alias(step_join=F("step_members__household_id"))
    )
    expressions = {}
    for index, each in enumerate(programmes):
        expressions[f"verdict_{index}"] = household_expression(
            each.rule.tree,
            kind="rule",
            target=each.rule.target,
            reference_date=reference_date,
            grouped=True,
            members="step_members",
        )
        if each.formula is not None:
            expressions[f"benefit_{index}"] = household_expression(
                each.formula.tree,
                kind="formula",
                target=each.formula.target,
                reference_date=reference_date,
                grouped=True,
                members="step_members",
            )
    select_sql, select_params = (
        households.annotate(hid=F("pk"), **expressions).values("hid", *expressions).query.sql_with_params()
    )
    suffix = uuid.uuid4().hex[:12]
    wide, new, current, diff = (f"elig_{part}_{suffix}" for part in ("wide", "new", "cur", "diff"))
    now = timezone.now()
    empty = _json_literal()
    result_table, change_table = EligibilityResult._meta.db_table, EligibilityChange._meta.db_table
    household_table = Household._meta.db_table
    programme_ids = [each.programme.pk for each in programmes]
    id_list = ", ".join(str(pk) for pk in programme_ids)
    run_id = run.pk if run else None
    with transaction.atomic(), connection.cursor() as cursor:
        _lock_for_bulk_step(cursor, programme_ids=programme_ids, district_id=district_id, id_from=id_from)
        if connection.vendor == "postgresql":
            # The step's queries are big but run once: compiling them (JIT) costs more than it saves.
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(f"CREATE TEMPORARY TABLE {wide} AS {select_sql}", select_params)
        # One row per household and programme, as the results table holds them.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {new} AS "
            + " UNION ALL ".join(
                f"SELECT w.hid AS hid, {each.programme.pk} AS programme_id, {each.programme.current_version_id} AS version_id, "
                f"CASE WHEN w.verdict_{index} IS NULL THEN 'needs_information' WHEN w.verdict_{index} THEN 'eligible' "
                f"ELSE 'not_eligible' END AS outcome, "
                + (
                    f"CASE WHEN w.verdict_{index} IS NOT NULL AND w.verdict_{index} "
                    f"THEN ROUND(CAST(w.benefit_{index} AS NUMERIC), 2) ELSE NULL END"
                    if each.formula is not None
                    else "CAST(NULL AS NUMERIC)"
                )
                + f" AS amount FROM {wide} w"
                for index, each in enumerate(programmes)
            )
        )
        cursor.execute(f"SELECT COUNT(*) FROM {new}")
        assessed = cursor.fetchone()[0]
        # What is stored now for the range, read once while the rows are locked by the programme locks above.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {current} AS "
            f"SELECT r.household_id AS hid, r.programme_id AS programme_id, r.outcome AS outcome, r.amount AS amount "
            f"FROM {result_table} r JOIN {household_table} h ON h.id = r.household_id "
            f"WHERE r.programme_id IN ({id_list}) AND h.district_id = %s AND h.id >= %s AND h.id < %s "
            f"AND r.household_id >= %s AND r.household_id < %s",
            [district_id, id_from, id_to, id_from, id_to],
        )
        # The assessments whose outcome or amount differ from what is stored: in a run where little
        # changed, the writes below read this small table, not the whole range again.
        cursor.execute(
            f"CREATE TEMPORARY TABLE {diff} AS "
            f"SELECT n.hid AS hid, n.programme_id AS programme_id, n.version_id AS version_id, n.outcome AS outcome, "
            f"n.amount AS amount, c.outcome AS previous_outcome "
            f"FROM {new} n LEFT JOIN {current} c ON c.hid = n.hid AND c.programme_id = n.programme_id "
            f"WHERE c.outcome IS NULL OR c.outcome <> n.outcome OR c.amount IS DISTINCT FROM n.amount"
        )
        cursor.execute(
            f"INSERT INTO {change_table} (household_id, programme_id, previous_outcome, outcome, rule_version_id, at, run_id) "
            f"SELECT d.hid, d.programme_id, COALESCE(d.previous_outcome, ''), d.outcome, d.version_id, %s, %s "
            f"FROM {diff} d WHERE d.previous_outcome IS NULL OR d.previous_outcome <> d.outcome",
            [now, run_id],
        )
        changed = cursor.rowcount
        # Households of this range no longer assessed (dissolved, moved away): every stored row
        # either matches an assessment (those without one are the diff's new rows) or is gone,
        # so counting says whether the anti-join below has anything to find.
        cursor.execute(
            f"SELECT (SELECT COUNT(*) FROM {current}) - %s + (SELECT COUNT(*) FROM {diff} WHERE previous_outcome IS NULL)",
            [assessed],
        )
        gone = cursor.fetchone()[0]
        if gone:
            cursor.execute(
                f"INSERT INTO {change_table} (household_id, programme_id, previous_outcome, outcome, rule_version_id, at, run_id) "
                f"SELECT c.hid, c.programme_id, c.outcome, '', NULL, %s, %s FROM {current} c "
                f"WHERE NOT EXISTS (SELECT 1 FROM {new} n WHERE n.hid = c.hid AND n.programme_id = c.programme_id)",
                [now, run_id],
            )
            changed += cursor.rowcount
            cursor.execute(
                f"DELETE FROM {result_table} WHERE programme_id IN ({id_list}) AND household_id IN ("
                f"SELECT c.hid FROM {current} c WHERE c.programme_id = {result_table}.programme_id "
                f"AND NOT EXISTS (SELECT 1 FROM {new} n WHERE n.hid = c.hid AND n.programme_id = c.programme_id))"
            )
        # Only rows whose outcome or amount changed are written.
        cursor.execute(
            f"INSERT INTO {result_table} (household_id, programme_id, outcome, amount, reasons, missing, eligible_members, "
            f"rule_version_id, evaluated_at, outcome_since) "
            f"SELECT d.hid, d.programme_id, d.outcome, d.amount, {empty}, {empty}, {empty}, d.version_id, %s, %s "
            f"FROM {diff} d WHERE 1 = 1 "
            f"ON CONFLICT (household_id, programme_id) DO UPDATE SET "
            f"outcome = excluded.outcome, amount = excluded.amount, rule_version_id = excluded.rule_version_id, "
            f"evaluated_at = excluded.evaluated_at, "
            f"outcome_since = CASE WHEN {result_table}.outcome <> excluded.outcome THEN excluded.outcome_since ELSE {result_table}.outcome_since END, "
            f"reasons = CASE WHEN {result_table}.outcome <> excluded.outcome THEN excluded.reasons ELSE {result_table}.reasons END, "
            f"missing = CASE WHEN {result_table}.outcome <> excluded.outcome THEN excluded.missing ELSE {result_table}.missing END",
            [now, now],
        )
        for table in (wide, new, current, diff):
            cursor.execute(f"DROP TABLE {table}")
    return assessed, changed


def _lock_for_bulk_step(cursor, *, programme_ids: list[int], district_id: int, id_from: int) -> None:
    """The locks a bulk step holds until it commits.

    The programme rows in share mode (by pk, the order every writer uses):
    one-household assessments and the referral sweep take them for update, so
    they wait for the step and the step waits for them; bulk steps share them,
    so the steps of a run go in parallel on separate households. Two steps of
    the same range (two runs at once) take turns on an advisory lock of the range.
    """
    if connection.vendor != "postgresql":
        # SQLite (the embedded demo) writes one transaction at a time anyway.
        return
    cursor.execute(
        f"SELECT id FROM {Programme._meta.db_table} WHERE id IN ({', '.join(['%s'] * len(programme_ids))}) "
        f"ORDER BY id FOR SHARE",
        programme_ids,
    )
    cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [district_id, id_from % 2**31])


def _parallel_steps() -> int:
    """How many bulk steps run at once: the setting, but one on SQLite or inside a transaction
    (a test, a caller's atomic block: other connections would not see its data)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return 1
    return max(1, settings.RECOMPUTE_PARALLEL_STEPS)


def _id_ranges(district_id: int) -> list[tuple[int, int]]:
    bounds = Household.objects.filter(district_id=district_id).order_by().values_list("pk", flat=True)
    low, high = bounds.order_by("pk").first(), bounds.order_by("-pk").first()
    if low is None:
        return [(0, 1)]
    steps = max(1, math.ceil((high - low + 1) / RECOMPUTE_CHUNK))
    return [
        (low + i * RECOMPUTE_CHUNK, low + (i + 1) * RECOMPUTE_CHUNK if i < steps - 1 else high + 1)
        for i in range(steps)
    ]


def _forget_programme_outside(programme: Programme, covered_ids: list[int], run: RecomputeRun | None) -> int:
    """Results in districts where the programme no longer runs are removed, each with a change event."""
    # Found from the households outside the covered districts (few, usually none: an index
    # lookup), not from the programme's results (a read of a million rows joined to their households).
    outside = Household.objects.exclude(district_id__in=covered_ids).values("pk")
    stale = EligibilityResult.objects.filter(programme=programme, household_id__in=outside)
    if programme.status != ProgrammeStatus.ACTIVE or programme.current_version_id is None:
        stale = EligibilityResult.objects.filter(programme=programme)
    now = timezone.now()
    with transaction.atomic():
        list(Programme.objects.select_for_update().filter(pk=programme.pk).values_list("pk"))
        rows = list(stale.values_list("household_id", "outcome"))
        EligibilityChange.objects.bulk_create(
            [
                EligibilityChange(household_id=h, programme=programme, previous_outcome=o, outcome="", at=now, run=run)
                for h, o in rows
            ],
            batch_size=5000,
        )
        stale.delete()
    return len(rows)


def recompute_plan(*, programme: Programme | None, district: Location | None) -> list[tuple[Programme, int, int, int]]:
    """The steps of a bulk run: (programme, district id, id from, id to)."""
    programmes = (
        [programme]
        if programme
        else list(Programme.objects.filter(status=ProgrammeStatus.ACTIVE, current_version__isnull=False).order_by("pk"))
    )
    steps = []
    for each in programmes:
        if each.status != ProgrammeStatus.ACTIVE or each.current_version_id is None:
            continue
        districts = each.coverage.values_list("district_id", flat=True).order_by("district_id")
        if district is not None:
            districts = districts.filter(district_id=district.pk)
        for district_id in districts:
            steps.extend((each, district_id, low, high) for low, high in _id_ranges(district_id))
    return steps


def _steps_by_range(steps: list[tuple[Programme, int, int, int]]):
    """The plan's steps gathered by district and id range: every programme of a range is assessed in one query."""
    ranges: dict[tuple[int, int, int], list[Programme]] = {}
    for programme, district_id, low, high in steps:
        ranges.setdefault((district_id, low, high), []).append(programme)
    return ranges.items()


def recompute_run_execute(*, run_id: int, reference_date: datetime.date | None = None, progress=None) -> RecomputeRun:
    """Carry out a bulk run step by step; safe to call twice.

    A run that is finished, or that another worker is carrying out (it holds the run's lock), is left alone.
    A run marked running whose lock nobody holds lost its worker (killed, crashed): it is taken up again from
    its first step. Each step is one transaction that writes only differences, so the steps done before the
    worker died find nothing left to change, and nothing is written twice.
    """
    with job_claim(RunningJob.RECOMPUTE_RUN, run_id) as claimed:
        if not claimed:
            return RecomputeRun.objects.filter(pk=run_id).first()
        return _recompute_run_carry_out(run_id=run_id, reference_date=reference_date, progress=progress)


def _recompute_run_carry_out(*, run_id: int, reference_date: datetime.date | None, progress) -> RecomputeRun:
    reference_date = reference_date or timezone.localdate()
    with transaction.atomic():
        run = RecomputeRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            logger.warning("Recompute run %s does not exist (deleted, or from another database)", run_id)
            return None
        if run.status == RecomputeStatus.RUNNING and orphans_detectable():
            # We hold its lock, so no other worker runs it: the one that marked it running is gone.
            logger.warning("Recompute run %s lost its worker; taking it up again from its first step", run_id)
            run.done_steps = run.households_assessed = 0
            run.message = f"Taken up again at {timezone.localtime():%Y-%m-%d %H:%M} after its worker stopped."
            run.save(update_fields=["done_steps", "households_assessed", "message"])
        elif run.status != RecomputeStatus.PENDING:
            return run
        else:
            run.status, run.started_at = RecomputeStatus.RUNNING, timezone.now()
            run.save(update_fields=["status", "started_at"])
    try:
        steps = recompute_plan(programme=run.programme, district=run.district)
        RecomputeRun.objects.filter(pk=run.pk).update(total_steps=len(steps))
        compiled: dict[int, _BulkProgramme] = {}
        ranges = list(_steps_by_range(steps))
        for _, programmes in ranges:
            for programme in programmes:
                if programme.pk not in compiled:
                    # Once a run: compiling reads the attribute definitions from the database.
                    version = programme.current_version
                    compiled[programme.pk] = _BulkProgramme(
                        programme,
                        *compile_programme_rules(
                            eligibility_rule=version.eligibility_rule,
                            benefit_formula=version.benefit_formula,
                            target_unit=programme.target_unit,
                        ),
                    )

        def step(district_id: int, low: int, high: int, programmes: list[Programme]) -> list[Programme]:
            assessed, changed = _bulk_step(
                programmes=[compiled[programme.pk] for programme in programmes],
                district_id=district_id,
                id_from=low,
                id_to=high,
                reference_date=reference_date,
                run=run,
            )
            RecomputeRun.objects.filter(pk=run.pk).update(
                done_steps=F("done_steps") + len(programmes),
                households_assessed=F("households_assessed") + assessed,
                outcomes_changed=F("outcomes_changed") + changed,
            )
            return programmes

        done = 0

        def report(district_id: int, programmes: list[Programme]) -> None:
            nonlocal done
            for programme in programmes:
                done += 1
                if progress:
                    progress(done, len(steps), programme, district_id)

        workers = _parallel_steps()
        if workers == 1:
            for (district_id, low, high), programmes in ranges:
                report(district_id, step(district_id, low, high, programmes))
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="recompute") as pool:
                futures = {
                    pool.submit(_in_own_connection, step, district_id, low, high, programmes): district_id
                    for (district_id, low, high), programmes in ranges
                }
                try:
                    for future in as_completed(futures):
                        report(futures[future], future.result())
                except BaseException:
                    pool.shutdown(cancel_futures=True)
                    raise
        targets = [run.programme] if run.programme else Programme.objects.all()
        if run.district is None:
            for programme in targets:
                covered = list(programme.coverage.values_list("district_id", flat=True))
                removed = _forget_programme_outside(programme, covered, run)
                if removed:
                    RecomputeRun.objects.filter(pk=run.pk).update(outcomes_changed=F("outcomes_changed") + removed)
    except Exception as problem:
        logger.exception("Recompute run %s failed", run.pk)
        RecomputeRun.objects.filter(pk=run.pk).update(
            status=RecomputeStatus.FAILED,
            finished_at=timezone.now(),
            message=f"{problem.__class__.__name__}: {problem}",
        )
        raise
    RecomputeRun.objects.filter(pk=run.pk).update(status=RecomputeStatus.DONE, finished_at=timezone.now())
    run.refresh_from_db()
    return run


def _in_own_connection(function, *args):
    """Run `function` in this worker thread's own database connection, closed afterwards."""
    try:
        return function(*args)
    finally:
        connection.close()


def district_codes_to_ids(codes: list[str]) -> list[int]:
    return list(Location.objects.filter(level=LocationLevel.DISTRICT, code__in=codes).values_list("pk", flat=True))
