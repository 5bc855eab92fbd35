"""Reads of the catalogue and of eligibility, for pages, the admin and the API."""

import datetime
from dataclasses import dataclass, field

from django.db.models import Count, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from registry.models import Household, HouseholdStatus, Location

from .models import (
    EligibilityOutcome,
    EligibilityResult,
    Programme,
    ProgrammeDistrict,
    ProgrammeStatus,
    RecomputeRun,
    RuleVersion,
)
from .services import compile_programme_rules


def programme_catalogue(*, district: Location | None = None, include_inactive: bool = False) -> QuerySet[Programme]:
    """Programmes as a citizen or an officer reads them: active ones, with their agency and where they run."""
    programmes = Programme.objects.select_related("agency", "current_version").prefetch_related(
        Prefetch("coverage", queryset=ProgrammeDistrict.objects.select_related("district"))
    )
    if not include_inactive:
        programmes = programmes.filter(status=ProgrammeStatus.ACTIVE)
    if district is not None:
        programmes = programmes.filter(coverage__district=district)
    return programmes.order_by("name")


@dataclass
class PanelEntry:
    programme: Programme
    outcome: str | None
    amount: object = None
    reasons: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    evaluated_at: datetime.datetime | None = None
    rule_version: int | None = None


@dataclass
class ProgrammePanel:
    eligible: list[PanelEntry] = field(default_factory=list)
    needs_information: list[PanelEntry] = field(default_factory=list)
    not_eligible: list[PanelEntry] = field(default_factory=list)
    enrolled: list[PanelEntry] = field(default_factory=list)
    not_assessed: list[PanelEntry] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not any((self.eligible, self.needs_information, self.not_eligible, self.enrolled, self.not_assessed))


def household_programme_panel(*, household: Household) -> ProgrammePanel:
    """Every active programme in the household's district, grouped by the stored outcome.

    Two queries whatever the number of programmes. Enrolments join the panel
    when the payments part exists.
    """
    panel = ProgrammePanel()
    programmes = list(
        Programme.objects.filter(status=ProgrammeStatus.ACTIVE, coverage__district_id=household.district_id)
        .select_related("agency", "current_version")
        .order_by("name")
    )
    results = {
        r.programme_id: r for r in EligibilityResult.objects.filter(household=household).select_related("rule_version")
    }
    for programme in programmes:
        result = results.get(programme.pk)
        if result is None:
            panel.not_assessed.append(PanelEntry(programme, None))
            continue
        entry = PanelEntry(
            programme,
            result.outcome,
            result.amount,
            result.reasons,
            result.missing,
            result.evaluated_at,
            result.rule_version.number,
        )
        getattr(panel, result.outcome).append(entry)
    return panel


@dataclass
class DistrictPreview:
    district: Location
    households: int
    eligible_now: int
    eligible_draft: int
    needs_information_draft: int
    would_change: int


def rule_preview(
    *,
    programme: Programme,
    eligibility_rule: str,
    benefit_formula: str = "",
    reference_date: datetime.date | None = None,
) -> list[DistrictPreview]:
    """How many households in each district would be eligible under a draft, and how many would change outcome.

    One aggregate query per district, set-based; raises ValidationError for a draft that does not compile.
    """
    reference_date = reference_date or timezone.localdate()
    rule, _ = compile_programme_rules(
        eligibility_rule=eligibility_rule, benefit_formula=benefit_formula, target_unit=programme.target_unit
    )
    current = EligibilityResult.objects.filter(programme=programme, household=OuterRef("pk")).values("outcome")[:1]
    previews = []
    for coverage in programme.coverage.select_related("district").order_by("district__name"):
        households = Household.objects.filter(district=coverage.district, status=HouseholdStatus.ACTIVE).order_by()
        annotated = households.annotate(
            draft=rule.sql(reference_date=reference_date),
            now=Coalesce(Subquery(current), Value("")),
        ).annotate(
            draft_outcome=_draft_outcome(),
        )
        counts = annotated.aggregate(
            households=Count("pk"),
            eligible_now=Count("pk", filter=Q(now=EligibilityOutcome.ELIGIBLE)),
            eligible_draft=Count("pk", filter=Q(draft=True)),
            needs_information_draft=Count("pk", filter=Q(draft__isnull=True)),
            would_change=Count("pk", filter=~Q(now=F("draft_outcome"))),
        )
        previews.append(DistrictPreview(district=coverage.district, **counts))
    return previews


def _draft_outcome():
    from django.db.models import Case, CharField, When

    return Case(
        When(Q(draft__isnull=True), then=Value(EligibilityOutcome.NEEDS_INFORMATION)),
        When(Q(draft=True), then=Value(EligibilityOutcome.ELIGIBLE)),
        default=Value(EligibilityOutcome.NOT_ELIGIBLE),
        output_field=CharField(),
    )


# --- the catalogue's pages, the admin's rule editor and the API -------------------------


def programme_by_code(*, code: str, include_inactive: bool = False) -> Programme:
    """One programme of the catalogue by its code (any case); DoesNotExist when unknown or not shown."""
    return programme_catalogue(include_inactive=include_inactive).get(code=code.strip().upper())


def programme_versions(*, programme: Programme) -> QuerySet[RuleVersion]:
    """Every version of a programme's rules, newest first, with who wrote it and what it restored."""
    return programme.versions.select_related("created_by", "restored_from").order_by("-number")


def programme_recent_runs(*, programme: Programme, limit: int = 5) -> list[RecomputeRun]:
    """The latest bulk re-assessments touching a programme (its own and the all-programme ones)."""
    return list(
        RecomputeRun.objects.filter(Q(programme=programme) | Q(programme__isnull=True))
        .select_related("district", "started_by")
        .order_by("-created_at")[:limit]
    )


def household_stored_outcomes(*, household_id: int) -> dict[int, str]:
    """Programme id → the household's stored outcome, to say what a re-check changed."""
    return dict(EligibilityResult.objects.filter(household_id=household_id).values_list("programme_id", "outcome"))


def household_eligibility(*, household: Household) -> QuerySet[EligibilityResult]:
    """The stored results of one household (the caller has already checked the household is in scope)."""
    return (
        EligibilityResult.objects.filter(household=household)
        .select_related("programme", "programme__agency", "rule_version")
        .order_by("programme__name")
    )
