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
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from registry.models import Household, HouseholdStatus, Location, LocationLevel

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

logger = logging.getLogger(__name__)

# Households per bulk step. Each step is one transaction of a few set-based
# statements; 50,000 keeps a step to a second or two on a small server (so
# progress moves and locks are short) while the per-step overhead stays small.
RECOMPUTE_CHUNK = 50_000


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
    from .tasks import recompute_run_execute

    run = RecomputeRun.objects.create(programme_id=programme_id, reason=reason, started_by=acting_user)
    transaction.on_commit(lambda: recompute_run_execute.delay(run.pk))


def recompute_run_create(
    *, acting_user=None, programme: Programme | None = None, district: Location | None = None, reason: str = ""
) -> RecomputeRun:
    return RecomputeRun.objects.create(programme=programme, district=district, reason=reason, started_by=acting_user)


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
    list(
        Programme.objects.select_for_update().filter(pk__in=[p.pk for p in programmes]).order_by("pk").values_list("pk")
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


def _bulk_step(
    *,
    programme: Programme,
    rule,
    formula,
    district_id: int,
    id_from: int,
    id_to: int,
    reference_date: datetime.date,
    run: RecomputeRun | None,
) -> tuple[int, int]:
    """Assess households district_id, id in [id_from, id_to) for one programme in set-based SQL.

    Returns (households assessed, outcomes changed). One transaction: the
    results and the change events of a step are written together or not at all.
    """
    version = programme.current_version
    households = Household.objects.filter(
        district_id=district_id, status=HouseholdStatus.ACTIVE, pk__gte=id_from, pk__lt=id_to
    ).order_by()
    annotated = households.annotate(hid=F("pk"), verdict=rule.sql(reference_date=reference_date))
    columns = ["hid", "verdict"]
    if formula is not None:
        annotated = annotated.annotate(benefit=formula.sql(reference_date=reference_date))
        columns.append("benefit")
    select_sql, select_params = annotated.values(*columns).query.sql_with_params()
    benefit = "ROUND(CAST(s.benefit AS NUMERIC), 2)" if formula is not None else "CAST(NULL AS NUMERIC)"
    table = f"elig_{uuid.uuid4().hex[:12]}"
    now = timezone.now()
    empty = _json_literal()
    result_table, change_table = EligibilityResult._meta.db_table, EligibilityChange._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        # Serialises bulk steps and one-household assessments of this programme.
        list(Programme.objects.select_for_update().filter(pk=programme.pk).values_list("pk"))
        cursor.execute(
            f"CREATE TEMPORARY TABLE {table} AS "
            f"SELECT s.hid AS hid, "
            f"CASE WHEN s.verdict IS NULL THEN 'needs_information' WHEN s.verdict THEN 'eligible' ELSE 'not_eligible' END AS outcome, "
            f"CASE WHEN s.verdict IS NOT NULL AND s.verdict THEN {benefit} ELSE NULL END AS amount "
            f"FROM ({select_sql}) s",
            select_params,
        )
        cursor.execute(f"SELECT COUNT(*) FROM {table}")
        assessed = cursor.fetchone()[0]
        # Changes first, while the old outcomes are still there to compare.
        cursor.execute(
            f"INSERT INTO {change_table} (household_id, programme_id, previous_outcome, outcome, rule_version_id, at, run_id, consumed_at) "
            f"SELECT c.hid, %s, COALESCE(r.outcome, ''), c.outcome, %s, %s, %s, NULL "
            f"FROM {table} c LEFT JOIN {result_table} r ON r.household_id = c.hid AND r.programme_id = %s "
            f"WHERE r.outcome IS NULL OR r.outcome <> c.outcome",
            [programme.pk, version.pk, now, run.pk if run else None, programme.pk],
        )
        changed = cursor.rowcount
        # Households of this range no longer assessed (dissolved, moved away).
        cursor.execute(
            f"INSERT INTO {change_table} (household_id, programme_id, previous_outcome, outcome, rule_version_id, at, run_id, consumed_at) "
            f"SELECT r.household_id, r.programme_id, r.outcome, '', NULL, %s, %s, NULL "
            f"FROM {result_table} r JOIN {Household._meta.db_table} h ON h.id = r.household_id "
            f"WHERE r.programme_id = %s AND h.district_id = %s AND h.id >= %s AND h.id < %s "
            f"AND NOT EXISTS (SELECT 1 FROM {table} c WHERE c.hid = r.household_id)",
            [now, run.pk if run else None, programme.pk, district_id, id_from, id_to],
        )
        changed += cursor.rowcount
        cursor.execute(
            f"DELETE FROM {result_table} WHERE programme_id = %s AND household_id IN ("
            f"SELECT h.id FROM {Household._meta.db_table} h WHERE h.district_id = %s AND h.id >= %s AND h.id < %s "
            f"AND NOT EXISTS (SELECT 1 FROM {table} c WHERE c.hid = h.id))",
            [programme.pk, district_id, id_from, id_to],
        )
        # Only rows whose outcome or amount changed are written.
        cursor.execute(
            f"INSERT INTO {result_table} (household_id, programme_id, outcome, amount, reasons, missing, eligible_members, "
            f"rule_version_id, evaluated_at, outcome_since) "
            f"SELECT c.hid, %s, c.outcome, c.amount, {empty}, {empty}, {empty}, %s, %s, %s FROM {table} c WHERE 1 = 1 "
            f"ON CONFLICT (household_id, programme_id) DO UPDATE SET "
            f"outcome = excluded.outcome, amount = excluded.amount, rule_version_id = excluded.rule_version_id, "
            f"evaluated_at = excluded.evaluated_at, "
            f"outcome_since = CASE WHEN {result_table}.outcome <> excluded.outcome THEN excluded.outcome_since ELSE {result_table}.outcome_since END, "
            f"reasons = CASE WHEN {result_table}.outcome <> excluded.outcome THEN excluded.reasons ELSE {result_table}.reasons END, "
            f"missing = CASE WHEN {result_table}.outcome <> excluded.outcome THEN excluded.missing ELSE {result_table}.missing END "
            f"WHERE {result_table}.outcome <> excluded.outcome OR {result_table}.amount IS DISTINCT FROM excluded.amount",
            [programme.pk, version.pk, now, now],
        )
        cursor.execute(f"DROP TABLE {table}")
    return assessed, changed


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
    stale = EligibilityResult.objects.filter(programme=programme).exclude(household__district_id__in=covered_ids)
    if programme.status != ProgrammeStatus.ACTIVE or programme.current_version_id is None:
        stale = EligibilityResult.objects.filter(programme=programme)
    now = timezone.now()
    with transaction.atomic():
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


def recompute_run_execute(*, run_id: int, reference_date: datetime.date | None = None, progress=None) -> RecomputeRun:
    """Carry out a bulk run step by step; safe to call twice (a run that is not pending is left alone)."""
    reference_date = reference_date or timezone.localdate()
    with transaction.atomic():
        run = RecomputeRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            logger.warning("Recompute run %s does not exist (deleted, or from another database)", run_id)
            return None
        if run.status != RecomputeStatus.PENDING:
            return run
        run.status, run.started_at = RecomputeStatus.RUNNING, timezone.now()
        run.save(update_fields=["status", "started_at"])
    try:
        steps = recompute_plan(programme=run.programme, district=run.district)
        RecomputeRun.objects.filter(pk=run.pk).update(total_steps=len(steps))
        compiled: dict[int, tuple] = {}
        for index, (programme, district_id, low, high) in enumerate(steps, start=1):
            if programme.pk not in compiled:
                version = programme.current_version
                compiled[programme.pk] = compile_programme_rules(
                    eligibility_rule=version.eligibility_rule,
                    benefit_formula=version.benefit_formula,
                    target_unit=programme.target_unit,
                )
            rule, formula = compiled[programme.pk]
            assessed, changed = _bulk_step(
                programme=programme,
                rule=rule,
                formula=formula,
                district_id=district_id,
                id_from=low,
                id_to=high,
                reference_date=reference_date,
                run=run,
            )
            RecomputeRun.objects.filter(pk=run.pk).update(
                done_steps=index,
                households_assessed=F("households_assessed") + assessed,
                outcomes_changed=F("outcomes_changed") + changed,
            )
            if progress:
                progress(index, len(steps), programme, district_id)
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


def district_codes_to_ids(codes: list[str]) -> list[int]:
    return list(Location.objects.filter(level=LocationLevel.DISTRICT, code__in=codes).values_list("pk", flat=True))
