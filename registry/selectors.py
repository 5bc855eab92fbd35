"""Every read of the registry that a page, the API or an export makes, scoped
to the user's districts."""

import datetime
import re
from dataclasses import dataclass, field

from django.contrib.postgres.fields import ArrayField
from django.db import connection
from django.db.models import F, Func, Prefetch, Q, QuerySet, TextField, Value

from spf.scope import scope_to_user

from . import names
from .countries import current_country
from .models import ChangeEntry, Household, Location, LocationLevel, Member

# The front desk reads the first screen of results; more than this and the
# query should be narrowed, not scrolled.
SEARCH_RESULT_LIMIT = 25
# Candidates fetched by name keys before ranking in Python. Enough that the
# right person is among them for a two-word name at a million households,
# few enough to rank in a millisecond or two.
NAME_CANDIDATE_LIMIT = 300
# Candidates the front-desk search ranks: it shows 25 households, and the
# people a name matches beyond the first hundred are namesakes that score the
# same; fetching and scoring 300 cost a third of the search at a million
# households (docs/benchmarks.md).
SEARCH_NAME_CANDIDATE_LIMIT = 100
# Candidates shown to the officer as possible duplicates at registration.
DUPLICATE_SHOW_SCORE = 0.55
# The most likely duplicates shown for one person, best first: at the desk and in an import's report.
# Beyond five an officer is looking at namesakes, and in a big village a common name has hundreds.
DUPLICATES_SHOWN = 5

HOUSEHOLD_NUMBER = re.compile(r"^[A-Za-z]{2,5}-\d{1,8}$")


def households_for(user) -> QuerySet[Household]:
    return scope_to_user(Household.objects.all(), user)


def members_for(user) -> QuerySet[Member]:
    return scope_to_user(Member.objects.all(), user, district_field="household__district")


def districts_for(user) -> QuerySet[Location]:
    return scope_to_user(Location.objects.filter(level=LocationLevel.DISTRICT), user, district_field="pk")


def villages_for(user) -> QuerySet[Location]:
    return scope_to_user(
        Location.objects.filter(level=LocationLevel.VILLAGE).select_related("parent", "district"), user
    ).order_by("district__name", "parent__name", "name")


def household_detail(*, user, household_id: int) -> Household:
    """The household with everything its page shows; Household.DoesNotExist outside the user's districts."""
    return (
        households_for(user)
        .select_related("village", "village__parent", "district", "head")
        .prefetch_related(Prefetch("members", queryset=Member.objects.order_by("id")))
        .get(pk=household_id)
    )


def household_by_number(*, user, number: str) -> Household:
    return households_for(user).get(number=number.strip().upper())


def household_history(*, household: Household, limit: int | None = None) -> QuerySet[ChangeEntry]:
    entries = household.history.select_related("actor", "member").order_by("-at", "-id")
    return entries[:limit] if limit else entries


@dataclass
class SearchHit:
    household: Household
    member: Member | None
    score: float
    matched_on: str
    people: list[Member] = field(default_factory=list)


_key_pairs_function: dict[str, bool] = {}


def _key_pairs_indexed() -> bool:
    """Whether this database has the name-key pairs function and index (a database migrated before they were
    added to the registry's search-index migration has not; it keeps the per-key index)."""
    if connection.alias not in _key_pairs_function:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT to_regproc('registry_name_key_pairs') IS NOT NULL"
                " AND to_regclass('registry_member_name_key_pairs_gin') IS NOT NULL"
            )
            _key_pairs_function[connection.alias] = cursor.fetchone()[0]
    return _key_pairs_function[connection.alias]


def _keys_contain(queryset: QuerySet[Member], keys: list[str]) -> QuerySet[Member]:
    """Members whose name keys include every one of `keys`, in no particular order.

    On PostgreSQL this is an array containment served by a GIN index (see the
    registry migration that creates it); elsewhere a plain text match.

    The ordering is cleared on purpose: callers take the first few hundred and
    rank them themselves. With Member's default ordering (household, id) the
    planner walks the household index and filters every row until it has
    enough: 575 ms for a common name at 100,000 households, 25 ms through the
    GIN index (EXPLAIN ANALYZE in docs/benchmarks.md).
    """
    queryset = queryset.order_by()
    if connection.vendor == "postgresql" and len(keys) > 1 and _key_pairs_indexed():
        # Containing every pair of the keys is containing every key; the pairs'
        # index has one short posting list per pair (see the registry migration).
        pairs = sorted(f"{a}+{b}" for a in keys for b in keys if a < b)
        array = Func(F("name_keys"), function="registry_name_key_pairs", output_field=ArrayField(TextField()))
        return queryset.alias(key_pairs=array).filter(key_pairs__contains=pairs)
    if connection.vendor == "postgresql":
        array = Func(
            Func(F("name_keys"), function="btrim"),
            Value(" "),
            function="string_to_array",
            output_field=ArrayField(TextField()),
        )
        return queryset.alias(key_array=array).filter(key_array__contains=keys)
    for key in keys:
        queryset = queryset.filter(name_keys__contains=f" {key} ")
    return queryset


def _name_candidate_scores(queryset: QuerySet[Member], text: str, *, limit: int) -> list[tuple[int, float]]:
    """(member id, 0..1 similarity) of members whose names sound like `text`, best first.

    Reads only the ids and names: building a few hundred full members (with
    their household, village and head) cost more than the query itself, and
    the caller usually shows the best 25.
    """
    keys = names.name_keys(text)
    if not keys:
        return []
    columns = ("pk", "first_name", "middle_name", "last_name", "other_names")
    # Every word must sound alike; if nobody matches all of them, settle for
    # the longest word alone (the surname typed with a first name misspelt
    # beyond its sound, say).
    found = list(_keys_contain(queryset, keys).values_list(*columns)[:limit])
    if not found and len(keys) > 1:
        longest = max(keys, key=len)
        found = list(_keys_contain(queryset, [longest]).values_list(*columns)[:limit])
    # Names repeat (a few hundred Mary Mwansas in a district): score each spelling once.
    similarity: dict[str, float] = {}
    scored = []
    for pk, first_name, middle_name, last_name, other_names in found:
        full = f"{first_name} {middle_name} {last_name} {other_names}"
        if full not in similarity:
            similarity[full] = names.name_similarity(text, full)
        scored.append((pk, similarity[full]))
    scored.sort(key=lambda pair: (-pair[1], pair[0]))
    return scored


def member_candidates_by_name(
    queryset: QuerySet[Member], text: str, *, limit: int = NAME_CANDIDATE_LIMIT
) -> list[tuple[Member, float]]:
    """Members whose names sound like `text`, best first, with a 0..1 similarity."""
    scored = _name_candidate_scores(queryset, text, limit=limit)
    members = queryset.in_bulk([pk for pk, _ in scored])
    return [(members[pk], score) for pk, score in scored]


def household_search(*, user, query: str, limit: int = SEARCH_RESULT_LIMIT) -> list[SearchHit]:
    """Front-desk search by household number, national ID, phone or a loosely typed name."""
    query = " ".join((query or "").split())
    if len(query) < 2:
        return []
    country = current_country()
    households = households_for(user).select_related("village", "village__parent", "head")
    members = members_for(user).select_related(
        "household", "household__village", "household__village__parent", "household__head"
    )

    if HOUSEHOLD_NUMBER.match(query):
        household = households.filter(number=query.upper()).first()
        if household:
            return [SearchHit(household, household.head, 1.0, "household number")]

    if country.national_id_is_valid(query.upper()):
        member = members.filter(national_id=query.upper()).first()
        return [SearchHit(member.household, member, 1.0, country.national_id_label)] if member else []

    digits = re.sub(r"\D", "", query)
    if len(digits) >= 6 and len(digits) >= len(query.replace(" ", "")) - 2:
        hits: dict[int, SearchHit] = {}
        key = country.phone_key(query)
        for household in households.filter(phone_key=key)[:limit]:
            hits[household.pk] = SearchHit(household, household.head, 1.0, "household phone")
        for member in members.filter(phone_key=key)[:limit]:
            hits.setdefault(member.household_id, SearchHit(member.household, member, 1.0, "member phone"))
        # A partly typed ID or number: prefix match on the unique indexes.
        if not hits:
            for member in members.filter(national_id__startswith=query.upper())[:limit]:
                hits.setdefault(
                    member.household_id,
                    SearchHit(member.household, member, 0.9, "start of " + country.national_id_label),
                )
        return list(hits.values())[:limit]

    hits = {}
    scored = _name_candidate_scores(members, query, limit=SEARCH_NAME_CANDIDATE_LIMIT)
    # Load the people a screen at a time, best first, until the screen is full.
    for start in range(0, len(scored), limit * 2):
        batch = scored[start : start + limit * 2]
        loaded = members.in_bulk([pk for pk, _ in batch])
        for pk, score in batch:
            member = loaded[pk]
            if member.household_id not in hits:
                hits[member.household_id] = SearchHit(member.household, member, score, "name")
            if len(hits) >= limit:
                break
        if len(hits) >= limit:
            break
    return sorted(hits.values(), key=lambda hit: -hit.score)


@dataclass
class DuplicateCandidate:
    member: Member
    score: float
    reasons: list[str]

    def as_dict(self) -> dict:
        return {
            "member_id": self.member.pk,
            "household_id": self.member.household_id,
            "household_number": self.member.household.number,
            "name": self.member.full_name,
            "date_of_birth": self.member.date_of_birth.isoformat() if self.member.date_of_birth else None,
            "village": self.member.household.village.name,
            "score": round(self.score, 2),
            "reasons": self.reasons,
        }


# What each kind of evidence weighs in a possible duplicate's score (they add up to 1): a name alone,
# however alike, never reaches the confirmation score (0.75); a name with a close date of birth, or with
# the same village and a date of birth within three years (or unknown), does.
DUPLICATE_WEIGHT_NAME = 0.55
DUPLICATE_WEIGHT_BIRTH = 0.3
DUPLICATE_WEIGHT_VILLAGE = 0.15


def duplicate_score(*, name: float, birth: float, same_village: bool) -> float:
    """0..1, three decimals: how likely two people are one, from their names', births' and villages' closeness."""
    village = DUPLICATE_WEIGHT_VILLAGE if same_village else 0.0
    return round(DUPLICATE_WEIGHT_NAME * name + DUPLICATE_WEIGHT_BIRTH * birth + village, 3)


def _birth_closeness(left: datetime.date | None, right: datetime.date | None) -> tuple[float, str | None]:
    if not left or not right:
        return 0.5, None
    days = abs((left - right).days)
    if days == 0:
        return 1.0, "same date of birth"
    if days <= 31:
        return 0.85, f"date of birth {days} days apart"
    if days <= 366:
        return 0.65, "date of birth within a year"
    if days <= 3 * 366:
        return 0.35, "date of birth within three years"
    return 0.0, None


def member_duplicate_candidates(
    *,
    acting_user,
    first_name: str,
    last_name: str,
    middle_name: str = "",
    other_names: str = "",
    date_of_birth: datetime.date | None = None,
    village: Location | None = None,
    exclude_member_id: int | None = None,
    limit: int = DUPLICATES_SHOWN,
) -> list[DuplicateCandidate]:
    """People already registered who may be this person, best first, with the score and the reasons.

    Looks in the user's districts only: a person registered elsewhere is not
    shown (their national ID, if given, is still refused everywhere).
    """
    full = " ".join(part for part in (first_name, middle_name, last_name) if part)
    if not full.strip():
        return []
    queryset = members_for(acting_user).select_related("household", "household__village")
    if exclude_member_id:
        queryset = queryset.exclude(pk=exclude_member_id)
    keys = names.name_keys(first_name, last_name)
    if not keys:
        return []

    # At a million households a common name matches thousands of people and
    # only NAME_CANDIDATE_LIMIT are scored: look in the same village first, then
    # the same district, then everywhere the user sees, so the person most
    # likely to be the same is never cut off by the limit.
    def near_first(candidates: QuerySet[Member]) -> list[Member]:
        found: dict[int, Member] = {}
        tiers = []
        if village is not None:
            tiers.append(candidates.filter(household__village=village))
            tiers.append(
                candidates.filter(household__district_id=village.district_id).exclude(household__village=village)
            )
        tiers.append(candidates)
        for tier in tiers:
            if len(found) >= NAME_CANDIDATE_LIMIT:
                break
            for member in tier[: NAME_CANDIDATE_LIMIT - len(found)]:
                found.setdefault(member.pk, member)
        return list(found.values())

    pool = near_first(_keys_contain(queryset, keys))
    # Someone may be registered under another of their names.
    if other_names:
        seen = {m.pk for m in pool}
        pool += [m for m in near_first(_keys_contain(queryset, names.name_keys(other_names))) if m.pk not in seen]

    candidates = []
    for member in pool:
        name_score = max(
            names.name_similarity(full, member.full_name),
            names.name_similarity(full, f"{member.first_name} {member.last_name} {member.other_names}"),
        )
        birth_score, birth_reason = _birth_closeness(date_of_birth, member.date_of_birth)
        same_village = village is not None and member.household.village_id == village.pk
        score = duplicate_score(name=name_score, birth=birth_score, same_village=same_village)
        reasons = [f"name sounds alike ({member.full_name}, {round(name_score * 100)}%)"]
        if birth_reason:
            reasons.append(birth_reason)
        if same_village:
            reasons.append(f"same village ({member.household.village.name})")
        if score >= DUPLICATE_SHOW_SCORE:
            candidates.append(DuplicateCandidate(member, score, reasons))
    candidates.sort(key=lambda c: (-c.score, c.member.pk))
    return candidates[:limit]


def household_member_counts(household_ids: list[int]) -> dict[int, int]:
    from django.db.models import Count

    rows = (
        Member.objects.filter(household_id__in=household_ids, status="present")
        .values("household_id")
        .annotate(n=Count("id"))
    )
    return {row["household_id"]: row["n"] for row in rows}


__all__ = [
    "Q",
    "SearchHit",
    "DuplicateCandidate",
    "household_search",
    "member_duplicate_candidates",
    "households_for",
    "members_for",
]
