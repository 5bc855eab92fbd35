"""Search: the Social Registry's households and members, the Integrated
Beneficiary Registry's enrolments, for one partner within its scope.

A message carries a batch of search requests; each is answered on its own
(its status, reason and records), so one bad request does not spoil the
others. Everything read goes through the project's scoped selectors with the
partner's service user: a partner scoped to one district never receives
another's household, whatever it asks.
"""

from __future__ import annotations

import datetime

from django.db.models import Count, F, FloatField, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, NullIf
from django.utils import timezone

from payments.api.selectors import enrolments_for
from programmes.rules import compile_expression
from registry.models import Household, HouseholdStatus, Member, MemberStatus
from registry.selectors import households_for, members_for

from ..models import Api, Partner
from .config import ANSWER_LOCALE, DCI_VERSION, DEFAULT_PAGE_SIZE, MAX_MATCHES, MAX_PAGE_SIZE, poverty_score_attribute
from .envelope import now_iso, parse_timestamp
from .queries import (
    CRITERIA_INVALID,
    GROUP,
    MEMBER,
    PAGINATION_INVALID,
    SORT_INVALID,
    QueryProblem,
    compile_enrolment_query,
    compile_query,
)
from .records import (
    beneficiary_record,
    enrolments_for_records,
    group_record,
    households_for_records,
    member_search_record,
    members_for_records,
)
from .results import REJECTED, SUCCEEDED, ItemResult, Outcome

TOO_MANY = "rjct.search.too_many_records_found"
REFERENCE_INVALID = "rjct.reference_id.invalid"
REFERENCE_DUPLICATE = "rjct.reference_id.duplicate"
TIMESTAMP_INVALID = "rjct.timestamp.invalid"

# reg_event_type: the specification's values, the samples' SEARCH, and the IBR's
# misspelt "enrollement" with its correct spellings. A search answers with the
# current records whatever the event type; it matters for subscriptions.
SOCIAL_EVENT_TYPES = {"register", "newhouseholdmember", "search"}
IBR_EVENT_TYPES = {
    "enrollement",
    "enrollement_status_change",
    "enrollment",
    "enrollment_status_change",
    "enrolment",
    "enrolment_status_change",
    "register",
    "search",
}
ENTITY_NAMES = {
    "group": GROUP,
    "household": GROUP,
    "member": MEMBER,
    "person": MEMBER,
    "individual": MEMBER,
    "srperson": MEMBER,
}


# --- reading a request ----------------------------------------------------------------------


def read_pagination(value) -> tuple[int, int]:
    """(page_size, page_number) from the request's pagination; QueryProblem (pagination) if it is wrong."""
    if value in (None, "", {}):
        return DEFAULT_PAGE_SIZE, 1

    def whole(key: str, default: int | None) -> int:
        raw = value.get(key, default)
        if raw is None:
            raise QueryProblem(f"pagination.{key}: required.", PAGINATION_INVALID)
        if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
            raise QueryProblem(f"pagination.{key}: must be a whole number.", PAGINATION_INVALID)
        try:
            number = float(raw)
        except ValueError:
            raise QueryProblem(f"pagination.{key}: '{raw}' is not a whole number.", PAGINATION_INVALID)
        if not number.is_integer() or number < 1:
            raise QueryProblem(f"pagination.{key}: must be a whole number from 1.", PAGINATION_INVALID)
        return int(number)

    if not isinstance(value, dict):
        raise QueryProblem("pagination: must be an object with page_size and page_number.", PAGINATION_INVALID)
    size, number = whole("page_size", None), whole("page_number", 1)
    if size > MAX_PAGE_SIZE:
        raise QueryProblem(f"pagination.page_size: at most {MAX_PAGE_SIZE} records a page.", PAGINATION_INVALID)
    return size, number


def _poverty_score(attributes: str = "attributes"):
    return Cast(NullIf(KeyTextTransform(poverty_score_attribute(), attributes), Value("")), FloatField())


def _household_poverty_score():
    return _poverty_score("household__attributes")


def _present_members_count():
    counted = (
        Member.objects.filter(household_id=OuterRef("pk"), status=MemberStatus.PRESENT)
        .order_by()
        .values("household_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


# The attributes a search may be sorted by, per kind of record: an ORM path, or
# an expression to annotate. Ages sort by date of birth, the other way round.
SORTS = {
    GROUP: {
        "poverty_score": _poverty_score,
        "group_size": _present_members_count,
        "household_size": _present_members_count,
        "registration_date": "registration_date",
        "hhid": "number",
        "household_number": "number",
        "household_identifier": "number",
        "group_identifier": "number",
        "district": "district__code",
        "uin": "head__national_id",
        "nid": "head__national_id",
    },
    MEMBER: {
        "uin": "national_id",
        "nid": "national_id",
        "national_id": "national_id",
        "birth_date": "date_of_birth",
        "dob": "date_of_birth",
        "age": "-date_of_birth",
        "name": "last_name",
        "surname": "last_name",
        "last_name": "last_name",
        "given_name": "first_name",
        "first_name": "first_name",
        "sex": "sex",
        "registration_date": "household__registration_date",
        "hhid": "household__number",
        "household_number": "household__number",
        "member_id": "pk",
        "poverty_score": _household_poverty_score,
    },
    "Beneficiary": {
        "enrolment_date": "activated_at",
        "enrollment_date": "activated_at",
        "registration_date": "applied_at",
        "programme": "programme__code",
        "programme_identifier": "programme__code",
        "enrolment_status": "status",
        "hhid": "household__number",
        "household_number": "household__number",
        "uin": "member__national_id",
        "nid": "member__national_id",
    },
}


def read_sort(value, entity: str) -> tuple[dict, list]:
    """(annotations, ordering) from the request's sort list; QueryProblem (sort) for what cannot be sorted."""
    if value in (None, "", []):
        return {}, ["pk"]
    if not isinstance(value, list):
        raise QueryProblem("sort: must be a list of {attribute_name, sort_order}.", SORT_INVALID)
    annotations, ordering = {}, []
    for index, entry in enumerate(value):
        where = f"sort[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("attribute_name"), str):
            raise QueryProblem(f"{where}.attribute_name: required.", SORT_INVALID)
        name = entry["attribute_name"].strip()
        order = str(entry.get("sort_order") or "asc").strip().lower()
        if order not in ("asc", "desc"):
            raise QueryProblem(f"{where}.sort_order: asc or desc, not '{order}'.", SORT_INVALID)
        target = SORTS[entity].get(name.lower())
        if target is None:
            raise QueryProblem(
                f"{where}.attribute_name: cannot sort by '{name}'; sort by one of {', '.join(sorted(SORTS[entity]))}.",
                SORT_INVALID,
            )
        if callable(target):
            alias = f"dci_sort_{index}"
            annotations[alias] = target()
            target = alias
        descending = target.startswith("-") != (order == "desc")
        target = target.lstrip("-")
        ordering.append(F(target).desc(nulls_last=True) if descending else F(target).asc(nulls_last=True))
    return annotations, [*ordering, "pk"]


def _check_criteria(criteria: dict, *, event_types: set[str]) -> None:
    version = criteria.get("version")
    if version not in (None, "", DCI_VERSION):
        raise QueryProblem(f"version: this registry reads search criteria {DCI_VERSION}, not {version}.")
    event = criteria.get("reg_event_type")
    if event not in (None, "") and str(event).strip().lower() not in event_types:
        raise QueryProblem(f"reg_event_type: '{event}' is not one of {', '.join(sorted(event_types))}.")


def _entity(criteria: dict) -> str:
    named = criteria.get("response_entity")
    if named not in (None, ""):
        entity = ENTITY_NAMES.get(str(named).strip().lower())
        if entity is None:
            raise QueryProblem(f"response_entity: '{named}' is not Group or Member.")
        return entity
    query = criteria.get("query")
    if isinstance(query, dict):
        expression = (query.get("value") or {}).get("expression") if isinstance(query.get("value"), dict) else None
        collection = str((expression or {}).get("collection") or "").strip().lower()
        if collection in ENTITY_NAMES:
            return ENTITY_NAMES[collection]
        if str(query.get("type") or "").strip().lower() in ("hhid", "household_number", "group_identifier"):
            return GROUP
    return MEMBER


def _page(queryset: QuerySet, criteria: dict, entity: str) -> tuple[QuerySet, int, int, int]:
    size, number = read_pagination(criteria.get("pagination"))
    annotations, ordering = read_sort(criteria.get("sort"), entity)
    total = queryset.count()
    if total > MAX_MATCHES:
        raise QueryProblem(
            f"query: {total:,} records match, more than the {MAX_MATCHES:,} one search may reach; narrow the query "
            "(by district, ward, age …).",
            TOO_MANY,
        )
    start = (number - 1) * size
    page = queryset.annotate(**annotations).order_by(*ordering)[start : start + size]
    return page, total, size, number


# --- the Social Registry -----------------------------------------------------------------


def registry_records(*, partner: Partner, criteria: dict, reference_date: datetime.date):
    """Group or Member records for one search request, within the partner's districts."""
    _check_criteria(criteria, event_types=SOCIAL_EVENT_TYPES)
    entity = _entity(criteria)
    compiled = compile_query(criteria.get("query_type"), criteria.get("query"), entity=entity)
    user = partner.service_user
    if entity == GROUP:
        queryset = households_for(user).filter(*compiled.identifier_filters)
        if not compiled.identifier_filters:
            queryset = queryset.filter(status=HouseholdStatus.ACTIVE)
        if compiled.rule:
            rule = compile_expression(compiled.rule, kind="rule", target="household")
            queryset = queryset.alias(dci_match=rule.sql(reference_date=reference_date)).filter(dci_match=True)
        page, total, size, number = _page(queryset, criteria, GROUP)
        records = [group_record(household) for household in households_for_records(page)]
    else:
        queryset = members_for(user).filter(*compiled.identifier_filters)
        if not compiled.identifier_filters:
            queryset = queryset.filter(status=MemberStatus.PRESENT, household__status=HouseholdStatus.ACTIVE)
        if compiled.rule:
            rule = compile_expression(compiled.rule, kind="rule", target="member")
            queryset = queryset.alias(dci_match=rule.member_sql(reference_date=reference_date)).filter(dci_match=True)
        page, total, size, number = _page(queryset, criteria, MEMBER)
        records = [member_search_record(member) for member in members_for_records(page)]
    return records, total, size, number


# --- the Integrated Beneficiary Registry ----------------------------------------------------------


def partner_enrolments(partner: Partner) -> QuerySet:
    """The enrolments a partner may see: its programmes, in its districts (and, for an agency's
    system, its agency's), read through the payments app's own scope."""
    return enrolments_for(partner.service_user).filter(programme__in=partner.programmes.all())


def enrolment_records(*, partner: Partner, criteria: dict, reference_date: datetime.date):
    """Beneficiary records (one per enrolment) for one search request."""
    _check_criteria(criteria, event_types=IBR_EVENT_TYPES)
    compiled = compile_enrolment_query(criteria.get("query_type"), criteria.get("query"))
    queryset = partner_enrolments(partner).filter(*compiled.filters)
    if compiled.household_rule:
        rule = compile_expression(compiled.household_rule, kind="rule", target="household")
        households = (
            Household.objects.filter(pk__in=queryset.values("household_id"))
            .alias(dci_match=rule.sql(reference_date=reference_date))
            .filter(dci_match=True)
        )
        queryset = queryset.filter(household__in=households.values("pk"))
    page, total, size, number = _page(queryset, criteria, "Beneficiary")
    records = [beneficiary_record(enrolment) for enrolment in enrolments_for_records(page)]
    return records, total, size, number


# --- a batch ------------------------------------------------------------------------------


def _rejected(reference_id: str, code: str, message: str) -> ItemResult:
    return ItemResult(
        reference_id=reference_id,
        status=REJECTED,
        reason_code=code,
        reason_message=message,
        answer={
            "reference_id": reference_id,
            "timestamp": now_iso(),
            "status": REJECTED,
            "status_reason_code": code,
            "status_reason_message": message[:999],
            "locale": ANSWER_LOCALE,
        },
    )


def search_one(
    *, partner: Partner, api: str, request, index: int, seen: set[str], reference_date: datetime.date
) -> ItemResult:
    where = f"search_request[{index}]"
    if not isinstance(request, dict):
        return _rejected("", CRITERIA_INVALID, f"{where}: must be an object.")
    reference_id = request.get("reference_id")
    if not isinstance(reference_id, str) or len(reference_id) > 99:
        return _rejected("", REFERENCE_INVALID, f"{where}.reference_id: required, a string of at most 99 characters.")
    if reference_id and reference_id in seen:
        return _rejected(reference_id, REFERENCE_DUPLICATE, f"{where}.reference_id: '{reference_id}' is repeated.")
    seen.add(reference_id)
    if parse_timestamp(request.get("timestamp")) is None:
        return _rejected(
            reference_id, TIMESTAMP_INVALID, f"{where}.timestamp: required, an ISO 8601 date-time with its offset."
        )
    criteria = request.get("search_criteria")
    if not isinstance(criteria, dict):
        return _rejected(reference_id, CRITERIA_INVALID, f"{where}.search_criteria: required, an object.")
    search = registry_records if api == Api.SOCIAL else enrolment_records
    try:
        records, total, size, number = search(partner=partner, criteria=criteria, reference_date=reference_date)
    except QueryProblem as problem:
        return _rejected(reference_id, problem.code, f"{where}.search_criteria.{problem}")
    return ItemResult(
        reference_id=reference_id,
        status=SUCCEEDED,
        total_count=total,
        returned_count=len(records),
        page_size=size,
        page_number=number,
        answer={
            "reference_id": reference_id,
            "timestamp": now_iso(),
            "status": SUCCEEDED,
            "data": {"version": DCI_VERSION, "reg_records": records},
            "pagination": {"page_size": size, "page_number": number, "total_count": total},
            "locale": ANSWER_LOCALE,
        },
    )


def search_outcome(*, partner: Partner, api: str, message: dict, correlation_id: str) -> Outcome:
    """The answer to a search message: every request of its batch, each with its own status."""
    reference_date = timezone.localdate()
    seen: set[str] = set()
    items = [
        search_one(partner=partner, api=api, request=request, index=index, seen=seen, reference_date=reference_date)
        for index, request in enumerate(message["search_request"])
    ]
    answer = {
        "transaction_id": str(message.get("transaction_id") or ""),
        "correlation_id": correlation_id,
        "search_response": [item.answer for item in items],
    }
    return Outcome(answer, items)


__all__ = ["enrolment_records", "partner_enrolments", "registry_records", "search_outcome"]
