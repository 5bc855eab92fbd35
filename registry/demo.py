"""The demo population: a synthetic but believable registry for the demo districts.

Household number `i` of a seed is a pure function of (seed, i): it draws from
its own `random.Random`, never from the global one, and looks at nothing but
the sorted village list. So a run with a larger N generates exactly the
households a fresh run of that N would have, and adding the difference to a
seeded database is the same as seeding it at once.

Writing goes straight to the tables (PostgreSQL `COPY`, SQLite `bulk_create`)
because a million households through the services would take hours; the
values written are those the services would write: the search keys come from
`registry.names` and the country's `phone_key` exactly as
`registry.services.refresh_member_keys` computes them, household numbers come
from the district's `HouseholdNumberSequence`, and each household gets one
history entry.
"""

import datetime
import io
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache

from django.db import connection, transaction
from django.utils import timezone

from . import names
from .countries import Country, current_country
from .models import (
    DISABILITY_DOMAINS,
    AttributeEntity,
    ChangeAction,
    ChangeEntry,
    Difficulty,
    Household,
    HouseholdStatus,
    Location,
    LocationLevel,
    Member,
    MemberStatus,
    Relationship,
    SchoolAttendance,
    Sex,
    WorkStatus,
)
from .services import allocate_household_numbers, locations_load

# Ages are drawn relative to a fixed day, not today, so the same seed gives the
# same dates of birth whatever day it runs.
REFERENCE_DATE = datetime.date(2026, 1, 1)
# Households registered over the three years before the reference date.
REGISTRATION_DAYS = 3 * 365

# The note of every demo household's history entry; the seed follows it, so the
# households a seed already wrote can be counted (that count is the marker that
# makes a second run add nothing).
DEMO_NOTE = "demo population"

# Households written per transaction. 5,000 households is about 22,000 members:
# a few megabytes of COPY text, small enough to keep memory flat at a million
# households, large enough that per-chunk overhead (sequence reservation, number
# allocation, the national ID check) is noise.
CHUNK_SIZE = 5000

# Household sizes 1..12 and their weights: a mean of about 4.5 (Zambia's 2022
# census gives 4.8 in rural Luapula), few living alone, a long tail of large
# households.
HOUSEHOLD_SIZE_WEIGHTS = (8, 13, 16, 17, 14, 11, 8, 5, 3.5, 2, 1.5, 1)
# Head's age 18..90: weights per decade starting at 18, a young population.
HEAD_AGE_BANDS = ((18, 24, 10), (25, 34, 28), (35, 44, 24), (45, 54, 16), (55, 64, 11), (65, 74, 7), (75, 90, 4))
# Share of heads who are women, by the head's age: widowhood makes older women heads.
FEMALE_HEAD_SHARE = ((40, 0.22), (60, 0.33), (200, 0.52))
# Chance a household is planted with a near-duplicate of a person in another
# household of its village: the registry's duplicate check is tried on these.
NEAR_DUPLICATE_SHARE = 0.01
# Where a near-duplicate's original is looked for: one of the previous households.
NEAR_DUPLICATE_LOOKBACK = 400
# National IDs: this share of adults carry one.
ADULT_ID_SHARE = 0.86
# Phones: this share of heads, and of other adults, have one.
HEAD_PHONE_SHARE = 0.78
OTHER_ADULT_PHONE_SHARE = 0.25
# Among people 60 and over, this share only know their year of birth.
OLD_ESTIMATED_BIRTH_SHARE = 0.35
# The largest number of members one household can have (sizes up to 12, plus a
# planted near-duplicate); national IDs are numbered by household and position.
MEMBER_SLOTS = 16
# Multiplier that scatters the national ID numbers (odd and not a multiple of 5,
# so it is invertible modulo any power of ten: the numbers stay unique).
ID_SCATTER = 7_919_391


@dataclass(slots=True)
class DemoPerson:
    first_name: str
    middle_name: str
    last_name: str
    sex: str
    date_of_birth: datetime.date
    date_of_birth_estimated: bool
    relationship: str
    national_id: str | None = None
    phone: str = ""
    disabilities: tuple = (None,) * len(DISABILITY_DOMAINS)
    chronic_illness: bool | None = None
    school_attendance: str = ""
    work_status: str = ""

    @property
    def age(self) -> int:
        return age_on(self.date_of_birth, REFERENCE_DATE)


@dataclass(slots=True)
class DemoHousehold:
    index: int
    village_code: str
    address: str
    registration_date: datetime.date
    people: list[DemoPerson] = field(default_factory=list)
    # The index of the household whose member was copied, misspelt, into this one.
    near_duplicate_of: int | None = None

    @property
    def head(self) -> DemoPerson:
        return self.people[0]

    @property
    def phone(self) -> str:
        return self.head.phone


def age_on(born: datetime.date, day: datetime.date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


@dataclass(frozen=True)
class DemoVillage:
    code: str
    name: str
    district_code: str


class PopulationGenerator:
    """Households of one seed over the given villages, each a pure function of its index."""

    def __init__(self, *, seed: int, villages: list[DemoVillage], country: Country):
        if not villages:
            raise ValueError("The demo needs at least one village in the demo districts.")
        self.seed = seed
        self.country = country
        self.villages = sorted(villages, key=lambda v: v.code)
        pool = country.names()
        self.female_first = list(pool["female_first"])
        self.male_first = list(pool["male_first"])
        self.last = list(pool["last"])
        # Only the spellings the registry's sound keys treat as the same name
        # (Mwansa/Mwanza, not Musonda/Musoda): the planted near-duplicates are
        # there for the duplicate check to find, and it looks people up by those keys.
        self.variants = {
            name: kept
            for name, spellings in sorted(pool.get("spelling_variants", {}).items())
            if (kept := [s for s in spellings if names.sound_key(s) == names.sound_key(name)])
        }
        self.phone_prefixes = list(pool.get("phone_prefixes") or ["0"])
        # Villages differ in size; the weights come from the seed so they too are repeatable.
        village_rng = random.Random(f"villages:{seed}")
        self.village_weights = [village_rng.uniform(0.4, 2.0) for _ in self.villages]
        self._cum_village_weights = _cumulative(self.village_weights)
        self._cum_sizes = _cumulative(HOUSEHOLD_SIZE_WEIGHTS)
        self._cum_head_ages = _cumulative([band[2] for band in HEAD_AGE_BANDS])
        self._id_digits = sum(ch.isdigit() for ch in country.national_id_example)

    # --- the public face -----------------------------------------------------------

    def households(self, start: int, stop: int) -> Iterator[DemoHousehold]:
        for index in range(start, stop):
            yield self.household(index)

    def household(self, index: int) -> DemoHousehold:
        rng = self._rng(index)
        planted = rng.random() < NEAR_DUPLICATE_SHARE and index > 0
        household = self._base(index, rng)
        if planted:
            self._plant_near_duplicate(household, rng)
        self._number_ids(household)
        return household

    # --- one household -----------------------------------------------------------------

    def _rng(self, index: int) -> random.Random:
        return random.Random(self.seed * 100_000_007 + index)

    def _is_planted(self, index: int) -> bool:
        return index > 0 and self._rng(index).random() < NEAR_DUPLICATE_SHARE

    def _base(self, index: int, rng: random.Random) -> DemoHousehold:
        village = rng.choices(self.villages, cum_weights=self._cum_village_weights)[0]
        registered = REFERENCE_DATE - datetime.timedelta(days=rng.randrange(1, REGISTRATION_DAYS))
        household = DemoHousehold(
            index=index,
            village_code=village.code,
            address=f"Plot {rng.randint(1, 450)}, {village.name}",
            registration_date=registered,
        )
        size = rng.choices(range(1, len(HOUSEHOLD_SIZE_WEIGHTS) + 1), cum_weights=self._cum_sizes)[0]
        low, high, _ = rng.choices(HEAD_AGE_BANDS, cum_weights=self._cum_head_ages)[0]
        head_age = rng.randint(low, high)
        female_share = next(share for limit, share in FEMALE_HEAD_SHARE if head_age < limit)
        head_sex = Sex.FEMALE if rng.random() < female_share else Sex.MALE
        surname = rng.choice(self.last)
        people = household.people
        people.append(self._person(rng, sex=head_sex, age=head_age, last=surname, relationship=Relationship.HEAD))

        # Most men who head a household live with a wife; most women who do, do not.
        spouse_chance = (0.82 if head_age < 65 else 0.6) if head_sex == Sex.MALE else 0.12
        if size >= 2 and rng.random() < spouse_chance:
            spouse_sex = Sex.FEMALE if head_sex == Sex.MALE else Sex.MALE
            spouse_age = max(18, head_age + (rng.randint(-12, 0) if spouse_sex == Sex.FEMALE else rng.randint(0, 10)))
            spouse_last = surname if rng.random() < 0.7 else rng.choice(self.last)
            people.append(
                self._person(rng, sex=spouse_sex, age=spouse_age, last=spouse_last, relationship=Relationship.SPOUSE)
            )

        # A grandparent living with a younger couple.
        if len(people) < size and head_age < 50 and rng.random() < 0.14:
            elder_age = min(95, head_age + rng.randint(20, 35))
            elder_sex = Sex.FEMALE if rng.random() < 0.7 else Sex.MALE
            people.append(
                self._person(
                    rng, sex=elder_sex, age=elder_age, last=rng.choice(self.last), relationship=Relationship.PARENT
                )
            )

        mother_age = next(
            (p.age for p in people if p.sex == Sex.FEMALE and p.relationship in ("head", "spouse")), head_age
        )
        while len(people) < size:
            sex = Sex.FEMALE if rng.random() < 0.5 else Sex.MALE
            if head_age >= 50 and rng.random() < 0.45:
                # Grandchildren raised by their grandparents, a common arrangement.
                age = rng.randint(0, min(17, head_age - 36))
                relationship = Relationship.GRANDCHILD
            elif rng.random() < 0.06:
                age = rng.randint(5, 40)
                relationship = Relationship.OTHER_RELATIVE
            else:
                oldest = max(0, min(mother_age - 15, 35))
                # Older children have often left home: ages skew young, not as far as the minimum of two draws.
                age = (
                    rng.randint(0, oldest)
                    if rng.random() < 0.6
                    else min(rng.randint(0, oldest), rng.randint(0, oldest))
                )
                relationship = Relationship.CHILD
            people.append(self._person(rng, sex=sex, age=age, last=surname, relationship=relationship))
        return household

    def _person(self, rng: random.Random, *, sex: str, age: int, last: str, relationship: str) -> DemoPerson:
        firsts = self.female_first if sex == Sex.FEMALE else self.male_first
        first = rng.choice(firsts)
        middle = rng.choice(firsts) if rng.random() < 0.3 else ""
        if middle == first:
            middle = ""
        estimated = age >= 60 and rng.random() < OLD_ESTIMATED_BIRTH_SHARE
        if estimated:
            born = datetime.date(REFERENCE_DATE.year - age - 1, 7, 1)
        else:
            born = REFERENCE_DATE - datetime.timedelta(days=age * 365 + rng.randrange(1, 365) + age // 4)
        person = DemoPerson(
            first_name=first,
            middle_name=middle,
            last_name=last,
            sex=sex,
            date_of_birth=born,
            date_of_birth_estimated=estimated,
            relationship=relationship,
        )
        age = person.age
        if age >= 5:  # the Washington Group questions are asked from age 5
            person.disabilities = self._disabilities(rng, age)
        person.chronic_illness = rng.random() < (0.03 if age < 18 else 0.08 if age < 50 else 0.22)
        if 5 <= age <= 17:
            roll = rng.random()
            attending_share = 0.9 if age <= 13 else 0.72
            person.school_attendance = (
                SchoolAttendance.ATTENDING
                if roll < attending_share
                else SchoolAttendance.NOT_ATTENDING
                if roll < attending_share + 0.7 * (1 - attending_share)
                else SchoolAttendance.NEVER
            )
        if age >= 18:
            person.work_status = self._work_status(rng, age)
            if rng.random() < ADULT_ID_SHARE:
                person.national_id = ""  # numbered once the household is complete
            phone_share = HEAD_PHONE_SHARE if relationship == Relationship.HEAD else OTHER_ADULT_PHONE_SHARE
            if rng.random() < phone_share:
                person.phone = self._phone(rng)
        return person

    def _disabilities(self, rng: random.Random, age: int) -> tuple:
        # Chance of a lot of difficulty (or cannot) in some domain, and of some
        # difficulty, by age: about 3% of everyone, far more among the old.
        severe = 0.012 if age < 18 else 0.02 if age < 50 else 0.06 if age < 65 else 0.16 if age < 80 else 0.35
        some = 0.05 if age < 40 else 0.12 if age < 60 else 0.3
        degrees = [Difficulty.NONE] * len(DISABILITY_DOMAINS)
        if rng.random() < some:
            degrees[self._domain(rng, age)] = Difficulty.SOME
        if rng.random() < severe:
            degrees[self._domain(rng, age)] = Difficulty.A_LOT if rng.random() < 0.7 else Difficulty.CANNOT
        return tuple(int(d) for d in degrees)

    @staticmethod
    def _domain(rng: random.Random, age: int) -> int:
        # seeing, hearing, walking, cognition, self_care, communication
        weights = (3, 2, 4, 2, 1, 1) if age >= 50 else (2, 2, 3, 2, 1, 2)
        return rng.choices(range(len(DISABILITY_DOMAINS)), weights=weights)[0]

    @staticmethod
    def _work_status(rng: random.Random, age: int) -> str:
        if age >= 65:
            options = ((WorkStatus.SELF_EMPLOYED, 40), (WorkStatus.RETIRED, 25), (WorkStatus.INACTIVE, 35))
        elif age <= 24:
            options = ((WorkStatus.SELF_EMPLOYED, 35), (WorkStatus.STUDENT, 25), (WorkStatus.UNEMPLOYED, 20),
                       (WorkStatus.EMPLOYED, 8), (WorkStatus.INACTIVE, 12))  # fmt: skip
        else:
            options = ((WorkStatus.SELF_EMPLOYED, 58), (WorkStatus.EMPLOYED, 13), (WorkStatus.UNEMPLOYED, 12),
                       (WorkStatus.INACTIVE, 17))  # fmt: skip
        return str(rng.choices([o[0] for o in options], weights=[o[1] for o in options])[0])

    def _phone(self, rng: random.Random) -> str:
        prefix = rng.choice(self.phone_prefixes)
        # The national significant number plus its leading trunk 0.
        rest = self.country.phone_national_digits + 1 - len(prefix)
        digits = f"{rng.randrange(10**rest):0{rest}d}"
        return f"{prefix} {digits[:3]} {digits[3:]}" if rest > 3 else prefix + digits

    def _plant_near_duplicate(self, household: DemoHousehold, rng: random.Random) -> None:
        """Add a person who is a misspelling of someone in an earlier household of the village chosen here."""
        for _ in range(8):
            source_index = household.index - 1 - rng.randrange(min(household.index, NEAR_DUPLICATE_LOOKBACK))
            if self._is_planted(source_index):
                continue  # its own stored village may differ from its base one
            source = self._base(source_index, self._rng_after_plant_roll(source_index))
            originals = [p for p in source.people if p.age >= 10 and self._variant_of(p, rng=None) is not None]
            if not originals:
                continue
            original = rng.choice(originals)
            first, last = self._variant_of(original, rng=rng)
            household.village_code = source.village_code
            household.address = f"Plot {rng.randint(1, 450)}, {source.address.split(', ', 1)[-1]}"
            shift = rng.choice((0, 0, 0, 1, -2, 5, 14, -30))
            household.people.append(
                DemoPerson(
                    first_name=first,
                    middle_name="",
                    last_name=last,
                    sex=original.sex,
                    date_of_birth=original.date_of_birth + datetime.timedelta(days=shift),
                    date_of_birth_estimated=original.date_of_birth_estimated,
                    relationship=Relationship.OTHER_RELATIVE,
                    disabilities=original.disabilities,
                    chronic_illness=original.chronic_illness,
                    school_attendance=original.school_attendance,
                    work_status=original.work_status,
                )
            )
            household.near_duplicate_of = source_index
            return

    def _rng_after_plant_roll(self, index: int) -> random.Random:
        rng = self._rng(index)
        rng.random()  # the planting roll `household` draws first
        return rng

    def _variant_of(self, person: DemoPerson, *, rng: random.Random | None) -> tuple[str, str] | None:
        """(first, last) with one of them respelt, or None if neither name has a known variant."""
        choices = []
        if person.last_name in self.variants:
            choices += [(person.first_name, variant) for variant in self.variants[person.last_name]]
        if person.first_name in self.variants:
            choices += [(variant, person.last_name) for variant in self.variants[person.first_name]]
        if not choices:
            return None
        return choices[0] if rng is None else rng.choice(choices)

    def _number_ids(self, household: DemoHousehold) -> None:
        """Give each adult marked for an ID a unique number in the country's format.

        The number is the household's index and the person's position, scattered
        by an invertible multiplication so neighbours do not get neighbouring IDs.
        """
        modulus = 10**self._id_digits
        for slot, person in enumerate(household.people):
            if person.national_id is None:
                continue
            serial = (household.index * MEMBER_SLOTS + slot + self.seed * 7_777) % modulus
            person.national_id = self._format_id(serial * ID_SCATTER % modulus)

    def _format_id(self, number: int) -> str:
        digits = iter(f"{number:0{self._id_digits}d}")
        return "".join(next(digits) if ch.isdigit() else ch for ch in self.country.national_id_example)


def _cumulative(weights) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


# --- search keys, exactly as the services compute them ------------------------------


@cache
def member_name_keys(first_name: str, middle_name: str, last_name: str, other_names: str = "") -> tuple[str, str]:
    """(search_name, name_keys) as `refresh_member_keys` sets them; cached, the names repeat endlessly."""
    search_name = names.plain(" ".join((first_name, middle_name, last_name, other_names)))[:400]
    return search_name, names.name_keys_text(first_name, middle_name, last_name, other_names)[:400]


# --- what is already seeded -------------------------------------------------------------


def demo_note(seed: int) -> str:
    return f"{DEMO_NOTE} (seed {seed})"


def seeded_household_count(*, seed: int) -> int:
    """How many households of this seed the database holds: the marker that makes seeding idempotent.

    Each chunk is written in one transaction, households in index order, so
    the count is also the index of the next household to write.
    """
    return ChangeEntry.objects.filter(
        note=demo_note(seed), action=ChangeAction.CREATE, entity=AttributeEntity.HOUSEHOLD
    ).count()


def demo_villages(country: Country) -> list[DemoVillage]:
    rows = (
        Location.objects.filter(level=LocationLevel.VILLAGE, district__code__in=country.demo_districts)
        .order_by("code")
        .values_list("code", "name", "district__code")
    )
    return [DemoVillage(code, name, district_code) for code, name, district_code in rows]


def demo_locations_ensure(country: Country) -> int:
    """Load the country's locations unless its demo districts are already there; returns locations created."""
    present = Location.objects.filter(level=LocationLevel.DISTRICT, code__in=country.demo_districts).count()
    if present == len(country.demo_districts) and demo_villages(country):
        return 0
    return locations_load(rows=country.location_rows())["created"]


# --- writing ------------------------------------------------------------------------------


@dataclass
class SeedReport:
    seed: int
    wanted: int
    already: int
    households_added: int = 0
    members_added: int = 0


def population_seed(
    *,
    households: int,
    seed: int,
    chunk_size: int = CHUNK_SIZE,
    registered_by: dict[str, int] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SeedReport:
    """Bring the demo population of `seed` up to `households` households; adds only what is missing.

    `registered_by` maps a district code to the id of the user recorded in the
    history as having registered its households (the district's front desk).
    """
    country = current_country()
    demo_locations_ensure(country)
    villages = demo_villages(country)
    generator = PopulationGenerator(seed=seed, villages=villages, country=country)
    already = seeded_household_count(seed=seed)
    report = SeedReport(seed=seed, wanted=households, already=already)
    locations = {
        loc.code: loc
        for loc in Location.objects.filter(code__in={v.code for v in villages} | {v.district_code for v in villages})
    }
    district_of = {v.code: v.district_code for v in villages}
    write = _write_chunk_copy if connection.vendor == "postgresql" else _write_chunk_orm
    for start in range(already, households, chunk_size):
        stop = min(households, start + chunk_size)
        chunk = list(generator.households(start, stop))
        with transaction.atomic():
            rows = _numbered(chunk, locations, district_of)
            _drop_taken_national_ids(chunk)
            members = write(rows, note=demo_note(seed), phone_key=country.phone_key, actors=registered_by or {})
        report.households_added += len(chunk)
        report.members_added += members
        if progress:
            progress(stop - already, households - already)
    if report.households_added and connection.vendor == "postgresql":
        _tidy_after_bulk_load()
    return report


def _tidy_after_bulk_load() -> None:
    """Merge the GIN indexes' pending lists and refresh the planner's statistics.

    Rows COPYed into a table with a GIN index wait in the index's pending list
    until a vacuum merges them, and every search scans that list row by row:
    at a million households the name-key lookup took 30 ms with 74,000 rows
    pending and 13 ms after the merge (docs/benchmarks.md).
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT gin_clean_pending_list(i.indexrelid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam "
            "WHERE a.amname = 'gin' AND i.indrelid IN ('registry_member'::regclass, 'registry_household'::regclass)"
        )
        for table in ("registry_household", "registry_member", "registry_changeentry"):
            cursor.execute(f"ANALYZE {table}")  # noqa: S608


@dataclass
class _Row:
    household: DemoHousehold
    number: str
    village: Location
    district: Location


def _numbered(chunk: list[DemoHousehold], locations: dict, district_of: dict) -> list["_Row"]:
    """Household numbers from each district's sequence, in index order within the chunk."""
    by_district: dict[str, list[DemoHousehold]] = {}
    for household in chunk:
        by_district.setdefault(district_of[household.village_code], []).append(household)
    numbers: dict[int, str] = {}
    for district_code in sorted(by_district):
        members = by_district[district_code]
        for household, number in zip(
            members, allocate_household_numbers(locations[district_code], len(members)), strict=True
        ):
            numbers[household.index] = number
    return [_Row(h, numbers[h.index], locations[h.village_code], locations[district_of[h.village_code]]) for h in chunk]


def _drop_taken_national_ids(chunk: list[DemoHousehold]) -> None:
    """A national ID someone already holds (registered by hand, another seed) is left off the demo person."""
    wanted = [p.national_id for h in chunk for p in h.people if p.national_id]
    taken: set[str] = set()
    for start in range(0, len(wanted), 5000):
        taken.update(
            Member.objects.filter(national_id__in=wanted[start : start + 5000]).values_list("national_id", flat=True)
        )
    if taken:
        for household in chunk:
            for person in household.people:
                if person.national_id in taken:
                    person.national_id = None


def _history_changes(row: _Row, head_id: int | None, head_label: str) -> dict:
    household = row.household
    changes = {
        "village": [None, {"id": row.village.pk, "label": str(row.village)}],
        "address": [None, household.address],
        "registration_date": [None, household.registration_date.isoformat()],
        "status": [None, HouseholdStatus.ACTIVE.value],
        "head": [None, {"id": head_id, "label": head_label}],
    }
    if household.phone:
        changes["phone"] = [None, household.phone]
    return changes


def _history_at(household: DemoHousehold) -> datetime.datetime:
    # Office hours on the registration day; the minute comes from the index so it is repeatable.
    minutes = 8 * 60 + (household.index * 37) % (8 * 60)
    naive = datetime.datetime.combine(household.registration_date, datetime.time(minutes // 60, minutes % 60))
    return timezone.make_aware(naive)


def _full_name(person: DemoPerson) -> str:
    return " ".join(part for part in (person.first_name, person.middle_name, person.last_name) if part)


def _write_chunk_orm(rows: list[_Row], *, note: str, phone_key: Callable[[str], str], actors: dict[str, int]) -> int:
    """SQLite and other databases: bulk_create in the chunk's transaction (ids come back on SQLite 3.35+)."""
    now = timezone.now()
    households = Household.objects.bulk_create(
        [
            Household(
                number=row.number,
                district=row.district,
                village=row.village,
                address=row.household.address,
                phone=row.household.phone,
                phone_key=phone_key(row.household.phone),
                registration_date=row.household.registration_date,
                status=HouseholdStatus.ACTIVE,
                created_at=now,
                updated_at=now,
            )
            for row in rows
        ]
    )
    members = []
    for household, row in zip(households, rows, strict=True):
        for person in row.household.people:
            members.append(_member(person, household_id=household.pk, phone_key=phone_key))
    Member.objects.bulk_create(members, batch_size=2000)
    heads = []
    cursor = iter(members)
    history = []
    for household, row in zip(households, rows, strict=True):
        people = [next(cursor) for _ in row.household.people]
        household.head_id = people[0].pk
        heads.append(household)
        history.append(
            ChangeEntry(
                household=household,
                entity=AttributeEntity.HOUSEHOLD,
                entity_id=household.pk,
                action=ChangeAction.CREATE,
                changes=_history_changes(row, people[0].pk, people[0].full_name),
                note=note,
                actor_id=actors.get(row.district.code),
                at=_history_at(row.household),
            )
        )
    Household.objects.bulk_update(heads, ["head"], batch_size=2000)
    ChangeEntry.objects.bulk_create(history, batch_size=2000)
    return len(members)


def _member(person: DemoPerson, *, household_id: int, phone_key: Callable[[str], str]) -> Member:
    search_name, name_keys = member_name_keys(person.first_name, person.middle_name, person.last_name, "")
    now = timezone.now()
    member = Member(
        household_id=household_id,
        first_name=person.first_name,
        middle_name=person.middle_name,
        last_name=person.last_name,
        sex=person.sex,
        date_of_birth=person.date_of_birth,
        date_of_birth_estimated=person.date_of_birth_estimated,
        relationship=person.relationship,
        national_id=person.national_id or None,
        phone=person.phone,
        phone_key=phone_key(person.phone),
        chronic_illness=person.chronic_illness,
        school_attendance=person.school_attendance,
        work_status=person.work_status,
        status=MemberStatus.PRESENT,
        search_name=search_name,
        name_keys=name_keys,
        created_at=now,
        updated_at=now,
    )
    for domain, degree in zip(DISABILITY_DOMAINS, person.disabilities, strict=True):
        setattr(member, f"disability_{domain}", degree)
    return member


# PostgreSQL COPY text format: tab-separated, \N for NULL, backslash escapes.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"
HOUSEHOLD_COLUMNS = (
    "id", "number", "district_id", "village_id", "address", "phone", "phone_key", "registration_date", "status",
    "head_id", "attributes", "created_at", "updated_at",
)  # fmt: skip
MEMBER_COLUMNS = (
    "id", "household_id", "first_name", "middle_name", "last_name", "other_names", "sex", "date_of_birth",
    "date_of_birth_estimated", "relationship", "national_id", "phone", "phone_key",
    *(f"disability_{domain}" for domain in DISABILITY_DOMAINS), "chronic_illness", "school_attendance",
    "work_status", "status", "attributes", "search_name", "name_keys", "created_at", "updated_at",
)  # fmt: skip
HISTORY_COLUMNS = ("household_id", "entity", "entity_id", "action", "changes", "note", "actor_id", "at")


def _text(value: str) -> str:
    return value.translate(_COPY_ESCAPES)


def _maybe(value) -> str:
    if value is None:
        return _NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


def _reserve_ids(cursor, table: str, count: int) -> list[int]:
    """Ids taken from the table's own sequence, so the rows can reference each other before they exist."""
    cursor.execute(
        f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)",  # noqa: S608
        [count],
    )
    return [row[0] for row in cursor.fetchall()]


def _write_chunk_copy(rows: list[_Row], *, note: str, phone_key: Callable[[str], str], actors: dict[str, int]) -> int:
    """PostgreSQL: reserve ids, then COPY households, members and history in the chunk's transaction.

    The household's head is written with the household: the foreign key to the
    member is checked at commit (Django makes it DEFERRABLE INITIALLY DEFERRED),
    when the member exists. That saves rewriting every household row to set it.
    """
    now = timezone.now().isoformat()
    member_total = sum(len(row.household.people) for row in rows)
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        household_ids = _reserve_ids(cursor, "registry_household", len(rows))
        member_ids = iter(_reserve_ids(cursor, "registry_member", member_total))
        households, members, history = io.StringIO(), io.StringIO(), io.StringIO()
        for household_id, row in zip(household_ids, rows, strict=True):
            demo = row.household
            ids = [next(member_ids) for _ in demo.people]
            for member_id, person in zip(ids, demo.people, strict=True):
                search_name, name_keys = member_name_keys(person.first_name, person.middle_name, person.last_name, "")
                members.write(
                    "\t".join(
                        (
                            str(member_id),
                            str(household_id),
                            _text(person.first_name),
                            _text(person.middle_name),
                            _text(person.last_name),
                            "",
                            person.sex,
                            person.date_of_birth.isoformat(),
                            "t" if person.date_of_birth_estimated else "f",
                            person.relationship,
                            person.national_id or _NULL,
                            person.phone,
                            phone_key(person.phone),
                            *(_maybe(degree) for degree in person.disabilities),
                            _maybe(person.chronic_illness),
                            person.school_attendance,
                            person.work_status,
                            MemberStatus.PRESENT,
                            "{}",
                            _text(search_name),
                            _text(name_keys),
                            now,
                            now,
                        )
                    )
                    + "\n"
                )
            households.write(
                "\t".join(
                    (
                        str(household_id),
                        row.number,
                        str(row.district.pk),
                        str(row.village.pk),
                        _text(demo.address),
                        demo.phone,
                        phone_key(demo.phone),
                        demo.registration_date.isoformat(),
                        HouseholdStatus.ACTIVE,
                        str(ids[0]),
                        "{}",
                        now,
                        now,
                    )
                )
                + "\n"
            )
            changes = json.dumps(_history_changes(row, ids[0], _full_name(demo.head)))
            history.write(
                "\t".join(
                    (
                        str(household_id),
                        AttributeEntity.HOUSEHOLD,
                        str(household_id),
                        ChangeAction.CREATE,
                        _text(changes),
                        _text(note),
                        _maybe(actors.get(row.district.code)),
                        _history_at(demo).isoformat(),
                    )
                )
                + "\n"
            )
        for table, columns, buffer in (
            ("registry_household", HOUSEHOLD_COLUMNS, households),
            ("registry_member", MEMBER_COLUMNS, members),
            ("registry_changeentry", HISTORY_COLUMNS, history),
        ):
            buffer.seek(0)
            cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
    return member_total
