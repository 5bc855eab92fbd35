"""The Integrated Beneficiary Registry's enrolled check: is this person (or household) enrolled
in this programme? Answered yes or no, within the partner's districts and programmes."""

from __future__ import annotations

from django.db.models import Q

from payments.models import PLACE_STATUSES
from registry.models import MemberStatus

from ..models import Partner
from .envelope import now_iso
from .people import find
from .queries import (
    IDENTIFIERS,
    PROGRAMME_NAMES,
    Combination,
    Leaf,
    QueryProblem,
    _leaves,
    _scalar,
    _values,
    read_query,
)
from .records import enrolment_status_word
from .results import REJECTED, SUCCEEDED, ItemResult, Outcome
from .search import partner_enrolments

NOT_FOUND = "No such person or household among the households this partner may see."


def _read(criteria: dict) -> tuple[list[tuple[str, str]], list[str]]:
    """(identifiers, programme codes) the criteria name; QueryProblem for anything else."""
    tree = read_query(criteria.get("query_type") or "expression", criteria.get("query"))
    leaves = tree.children if isinstance(tree, Combination) and tree.kind == "and" else [tree]
    if not all(isinstance(leaf, Leaf) for leaf in leaves):
        raise QueryProblem("query: an enrolled check names a person (or household) and a programme, joined by and.")
    identifiers, programmes = [], []
    for leaf in _leaves(tree):
        name = leaf.attribute.strip().lower()
        if leaf.operator not in ("eq", "in"):
            raise QueryProblem(f"{leaf.where}: use eq (or in), not '{leaf.operator}'.")
        values = _values(leaf.value, leaf.where) if leaf.operator == "in" else [_scalar(leaf.value, leaf.where)]
        if name in IDENTIFIERS:
            identifiers += [(name, str(v).strip()) for v in values]
        elif name in PROGRAMME_NAMES:
            programmes += [str(v).strip().upper() for v in values]
        else:
            raise QueryProblem(
                f"{leaf.where}: '{leaf.attribute}' is neither an identifier (person_identifier, UIN, NID, HHID) "
                "nor a programme (programme_identifier)."
            )
    if not identifiers:
        raise QueryProblem("query: name the person (person_identifier, UIN or NID) or the household (HHID).")
    return identifiers, programmes


def enrolled_outcome(*, partner: Partner, message: dict, correlation_id: str) -> Outcome:
    criteria = message["enrolled_criteria"]
    reference_id = str(criteria.get("reference_id") or message.get("reference_id") or "")

    def answer(status: str, text: str, enrolled: bool, code: str = "") -> Outcome:
        item = {
            "reference_id": reference_id,
            "timestamp": now_iso(),
            "status": status,
            "status_reason_message": text[:999],
            "enrolled_status": "yes" if enrolled else "no",
        }
        result = ItemResult(reference_id, status, reason_code=code, reason_message=text, answer=item)
        body = {
            "transaction_id": str(message.get("transaction_id") or ""),
            "correlation_id": correlation_id,
            "enrolled_response": [item],
        }
        return Outcome(body, [result])

    try:
        identifiers, codes = _read(criteria)
    except QueryProblem as problem:
        return answer(REJECTED, f"enrolled_criteria.{problem}", False, problem.code)
    allowed = {p.code: p for p in partner.programmes.all()}
    unknown = [code for code in codes if code not in allowed]
    if unknown:
        return answer(
            REJECTED,
            f"enrolled_criteria.query: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not among the "
            "programmes this partner may ask about.",
            False,
            "rjct.search_criteria.invalid",
        )
    found = find(partner, identifiers)
    if found.household is None:
        return answer(SUCCEEDED, NOT_FOUND, False)
    enrolments = partner_enrolments(partner).filter(status__in=PLACE_STATUSES)
    if codes:
        enrolments = enrolments.filter(programme__code__in=codes)
    if found.member is None:
        enrolments = enrolments.filter(household=found.household)
    else:
        # The person's own enrolment, or their household's while they live in it.
        household_wide = Q(member__isnull=True, household=found.household)
        enrolments = enrolments.filter(
            Q(member=found.member) | household_wide
            if found.member.status == MemberStatus.PRESENT
            else Q(member=found.member)
        )
    current = list(enrolments.select_related("programme").order_by("programme__code"))
    if not current:
        where = f" in {', '.join(codes)}" if codes else " in any programme this partner may see"
        return answer(SUCCEEDED, f"Not enrolled{where}.", False)
    listed = "; ".join(f"{e.programme.code} ({enrolment_status_word(e).lower()}, {e.number})" for e in current)
    return answer(SUCCEEDED, f"Enrolled: {listed}.", True)
