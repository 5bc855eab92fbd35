"""Every write to the registry: one function per change, one transaction each,
each recording who did it, when, and the old and new values.

Views, the API, admin actions, imports and tasks call these; none of them
saves a household or member directly.
"""

import datetime
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from spf.idempotency.services import AlreadySubmitted, submission_claim, submission_record
from spf.scope import user_may_see_district

from . import names
from .attributes import clean_attributes
from .countries import current_country
from .models import (
    DISABILITY_DOMAINS,
    AttributeEntity,
    ChangeAction,
    ChangeEntry,
    Household,
    HouseholdNumberSequence,
    HouseholdStatus,
    ImportJob,
    Location,
    LocationLevel,
    Member,
    MemberStatus,
    Relationship,
)
from .signals import announce_households_changed

HOUSEHOLD_FIELDS = (
    "village",
    "address",
    "gps_latitude",
    "gps_longitude",
    "phone",
    "registration_date",
    "status",
)
MEMBER_FIELDS = (
    "first_name",
    "middle_name",
    "last_name",
    "other_names",
    "sex",
    "date_of_birth",
    "date_of_birth_estimated",
    "relationship",
    "national_id",
    "phone",
    *(f"disability_{domain}" for domain in DISABILITY_DOMAINS),
    "chronic_illness",
    "school_attendance",
    "work_status",
)
# Set only through a life event, never through a plain edit.
MEMBER_EVENT_FIELDS = ("status", "status_date")

# A likely duplicate at or above this score stops registration until the
# officer confirms; below it the person is new. 0.75 was chosen on the demo's
# planted near-duplicates: every one scores above it, distinct people with a
# common surname in the same village score below.
DUPLICATE_CONFIRM_SCORE = 0.75


class AlreadyRegistered(Exception):
    """The registration form was sent before (a double click, a browser sending it again): `household` is
    what the first sending registered."""

    def __init__(self, household: Household):
        self.household = household
        super().__init__(f"Household {household.number} was registered by this form already.")


class DuplicateSuspected(Exception):
    """Registration stopped: the people in `candidates` may already be registered."""

    def __init__(self, candidates: list):
        self.candidates = candidates
        super().__init__(f"{len(candidates)} possible duplicate(s) found")


# --- small helpers -----------------------------------------------------------


def _as_json(value: Any) -> Any:
    if isinstance(value, models.Model):
        return {"id": value.pk, "label": str(value)}
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _changes(before: dict, after: dict) -> dict:
    return {
        field: [_as_json(before.get(field)), _as_json(after.get(field))]
        for field in after
        if _comparable(before.get(field)) != _comparable(after.get(field))
    }


def _comparable(value: Any) -> Any:
    if isinstance(value, models.Model):
        return value.pk
    if value == "":
        return None
    if isinstance(value, Decimal):
        return value.normalize()
    return value


def _snapshot(instance: models.Model, fields) -> dict:
    return {field: getattr(instance, field) for field in fields}


def _record(
    household: Household,
    *,
    actor,
    action: str,
    entity: str,
    entity_id: int,
    changes: dict,
    member: Member | None = None,
    note: str = "",
    import_job: ImportJob | None = None,
) -> ChangeEntry:
    announce_households_changed([household.pk])
    return ChangeEntry.objects.create(
        household=household,
        member=member,
        entity=entity,
        entity_id=entity_id,
        action=action,
        changes=changes,
        note=note[:255],
        actor=actor,
        import_job=import_job,
    )


def _require_district(acting_user, district: Location) -> None:
    if acting_user is not None and not user_may_see_district(acting_user, district.pk):
        raise PermissionDenied("This household is outside your districts.")


def _require_editor(acting_user) -> None:
    if acting_user is not None and not acting_user.can_edit_registry:
        raise PermissionDenied("Your role cannot change the registry.")


def refresh_member_keys(member: Member) -> None:
    """Recompute the search keys and normalised values a member carries."""
    country = current_country()
    member.national_id = (member.national_id or "").strip().upper() or None
    member.phone = (member.phone or "").strip()
    member.phone_key = country.phone_key(member.phone)
    for field in ("first_name", "middle_name", "last_name", "other_names"):
        setattr(member, field, " ".join((getattr(member, field) or "").split()))
    member.search_name = names.plain(
        " ".join((member.first_name, member.middle_name, member.last_name, member.other_names))
    )[:400]
    member.name_keys = names.name_keys_text(
        member.first_name, member.middle_name, member.last_name, member.other_names
    )[:400]


def validate_member(member: Member, *, exclude: tuple[str, ...] = ()) -> None:
    """Field-level checks of a member before it is written; raises ValidationError naming each field."""
    country = current_country()
    errors: dict[str, list[str]] = {}
    try:
        member.full_clean(exclude=["household", *exclude], validate_constraints=False)
    except ValidationError as problem:
        errors.update(problem.message_dict)
    if member.national_id:
        if not country.national_id_is_valid(member.national_id):
            errors.setdefault("national_id", []).append(
                f"{country.national_id_label} must look like {country.national_id_example}."
            )
        elif Member.objects.filter(national_id=member.national_id).exclude(pk=member.pk).exists():
            errors.setdefault("national_id", []).append(
                f"A person with {country.national_id_label} {member.national_id} is already registered."
            )
    today = timezone.localdate()
    if member.date_of_birth and member.date_of_birth > today:
        errors.setdefault("date_of_birth", []).append("Date of birth cannot be in the future.")
    if member.date_of_birth and member.date_of_birth.year < today.year - 125:
        errors.setdefault("date_of_birth", []).append("Date of birth is more than 125 years ago.")
    if member.date_of_birth_estimated and not member.date_of_birth:
        errors.setdefault("date_of_birth", []).append("Give the estimated year when the date is estimated.")
    if member.status_date and member.status_date > today:
        errors.setdefault("status_date", []).append("The date cannot be in the future.")
    if errors:
        raise ValidationError(errors)


def _save_member(member: Member) -> None:
    """Save, turning a lost race on the national ID into the same message a person gets from validation."""
    try:
        with transaction.atomic():
            member.save()
    except IntegrityError as problem:
        if "national_id" in str(problem):
            country = current_country()
            raise ValidationError(
                {
                    "national_id": [
                        f"A person with {country.national_id_label} {member.national_id} is already registered."
                    ]
                }
            ) from problem
        raise


def validate_household(household: Household) -> None:
    errors: dict[str, list[str]] = {}
    try:
        household.full_clean(exclude=["number", "district", "head"], validate_constraints=False)
    except ValidationError as problem:
        errors.update(problem.message_dict)
    village = getattr(household, "village", None) if household.village_id else None
    if village is not None and village.level != LocationLevel.VILLAGE:
        errors.setdefault("village", []).append("Choose a village, not a ward or district.")
    if (household.gps_latitude is None) != (household.gps_longitude is None):
        errors.setdefault("gps_latitude", []).append("Give both latitude and longitude, or neither.")
    if household.registration_date and household.registration_date > timezone.localdate():
        errors.setdefault("registration_date", []).append("Registration date cannot be in the future.")
    if errors:
        raise ValidationError(errors)


def allocate_household_numbers(district: Location, count: int = 1) -> list[str]:
    """Reserve `count` consecutive household numbers in a district (call inside a transaction)."""
    HouseholdNumberSequence.objects.get_or_create(district=district)
    sequence = HouseholdNumberSequence.objects.select_for_update().get(district=district)
    first = sequence.last_number + 1
    sequence.last_number += count
    sequence.save(update_fields=["last_number"])
    return [f"{district.code}-{n:06d}" for n in range(first, first + count)]


# --- locations -----------------------------------------------------------------


@transaction.atomic
def locations_load(*, rows: list[dict]) -> dict[str, int]:
    """Create or update locations from rows of level, code, name, parent_code; returns counts.

    Parents must come before children (the order of the data files). Running it
    again with the same rows changes nothing.
    """
    order = list(LocationLevel.values)
    existing = {loc.code: loc for loc in Location.objects.all()}
    created = updated = 0
    errors = []
    for row in sorted(rows, key=lambda r: order.index(r["level"])):
        code, name, level, parent_code = (
            row["code"].strip(),
            row["name"].strip(),
            row["level"].strip(),
            row.get("parent_code", "").strip(),
        )
        parent = existing.get(parent_code) if parent_code else None
        if level not in order:
            errors.append(f"{code}: level {level!r} is not one of {', '.join(order)}")
            continue
        if level != LocationLevel.PROVINCE and parent is None:
            errors.append(f"{code}: parent {parent_code!r} not found")
            continue
        if parent is not None and order.index(parent.level) != order.index(level) - 1:
            errors.append(f"{code}: a {level} must sit under a {order[order.index(level) - 1]}, not a {parent.level}")
            continue
        district = None
        if level == LocationLevel.DISTRICT:
            district = None  # set to itself after save
        elif level in (LocationLevel.WARD, LocationLevel.VILLAGE):
            district = parent.district
        location = existing.get(code)
        if location is None:
            location = Location.objects.create(code=code, name=name, level=level, parent=parent, district=district)
            created += 1
        elif (location.name, location.level, location.parent_id, location.district_id) != (
            name,
            level,
            parent.pk if parent else None,
            district.pk if district else location.district_id if level == LocationLevel.DISTRICT else None,
        ):
            location.name, location.level, location.parent, location.district = name, level, parent, district
            location.save()
            updated += 1
        if level == LocationLevel.DISTRICT and location.district_id != location.pk:
            location.district = location
            location.save(update_fields=["district"])
            HouseholdNumberSequence.objects.get_or_create(district=location)
        existing[code] = location
    if errors:
        raise ValidationError(errors)
    return {"created": created, "updated": updated}


# --- households ------------------------------------------------------------------


@dataclass
class MemberInput:
    """What a person tells the window about one member."""

    values: dict
    attributes: dict | None = None


def _new_member(household: Household | None, values: dict, attributes: dict | None) -> Member:
    unknown = set(values) - set(MEMBER_FIELDS)
    if unknown:
        raise ValidationError({field: ["This field cannot be set here."] for field in sorted(unknown)})
    member = Member(household=household, **values)
    member.attributes = clean_attributes(AttributeEntity.MEMBER, attributes)
    refresh_member_keys(member)
    return member


@transaction.atomic
def household_register(
    *,
    acting_user,
    village: Location,
    members: list[MemberInput],
    address: str = "",
    phone: str = "",
    gps_latitude: Decimal | None = None,
    gps_longitude: Decimal | None = None,
    registration_date: datetime.date | None = None,
    attributes: dict | None = None,
    duplicates_confirmed: bool = False,
    submission_token: uuid.UUID | None = None,
) -> Household:
    """Register a household and its members in one go.

    The first member whose relationship is 'head' heads it (the first member if
    none is marked). Raises ValidationError with field names (`members.<i>.<field>`
    for members) or DuplicateSuspected when a member is probably already
    registered and the officer has not confirmed.

    `submission_token` is the registration form's one-time token: the same form
    sent again (a double click, a retry, at the same moment or later) raises
    AlreadyRegistered with the household the first sending registered, and
    registers nothing. It is about the same submission, not the same person: the
    duplicate check is for a person registered before by another form.
    """
    from .selectors import member_duplicate_candidates

    _require_editor(acting_user)
    if village.level != LocationLevel.VILLAGE:
        raise ValidationError({"village": ["Choose a village, not a ward or district."]})
    _require_district(acting_user, village.district)
    # First: a copy of this form in flight waits here until the first copy is done.
    try:
        submission = submission_claim(token=submission_token, acting_user=acting_user, action="household_register")
    except AlreadySubmitted as done:
        earlier = done.submission
        household = Household.objects.filter(pk=earlier.object_id).first() if earlier.object_id else None
        if household is None or earlier.user_id != getattr(acting_user, "pk", None):
            raise ValidationError("This form was sent already. Open the registration page again to register.") from None
        raise AlreadyRegistered(household) from None
    errors: dict[str, list[str]] = {}
    if not members:
        errors["members"] = ["A household needs at least one member."]

    household = Household(
        village=village,
        district=village.district,
        address=address.strip(),
        phone=phone.strip(),
        gps_latitude=gps_latitude,
        gps_longitude=gps_longitude,
        registration_date=registration_date or timezone.localdate(),
    )
    household.phone_key = current_country().phone_key(household.phone)
    try:
        household.attributes = clean_attributes(AttributeEntity.HOUSEHOLD, attributes)
    except ValidationError as problem:
        errors.update(problem.message_dict)
    try:
        validate_household(household)
    except ValidationError as problem:
        errors.update(problem.message_dict)

    built: list[Member] = []
    seen_ids: dict[str, int] = {}
    for index, member_input in enumerate(members):
        try:
            member = _new_member(None, member_input.values, member_input.attributes)
            validate_member(member)
        except ValidationError as problem:
            for field, messages in problem.message_dict.items():
                errors[f"members.{index}.{field}"] = messages
            continue
        if member.national_id:
            if member.national_id in seen_ids:
                errors[f"members.{index}.national_id"] = [
                    f"The same ID is given for member {seen_ids[member.national_id] + 1}."
                ]
            seen_ids[member.national_id] = index
        built.append(member)
    if errors:
        raise ValidationError(errors)

    if not duplicates_confirmed:
        suspects = []
        for member in built:
            found = member_duplicate_candidates(
                acting_user=acting_user,
                first_name=member.first_name,
                middle_name=member.middle_name,
                last_name=member.last_name,
                other_names=member.other_names,
                date_of_birth=member.date_of_birth,
                village=village,
            )
            suspects.extend(c for c in found if c.score >= DUPLICATE_CONFIRM_SCORE)
        if suspects:
            raise DuplicateSuspected(suspects)

    household.number = allocate_household_numbers(village.district)[0]
    household.save()
    head = next((m for m in built if m.relationship == Relationship.HEAD), built[0])
    head.relationship = Relationship.HEAD
    for member in built:
        member.household = household
        _save_member(member)
    household.head = head
    household.save(update_fields=["head"])

    _record(
        household,
        actor=acting_user,
        action=ChangeAction.CREATE,
        entity=AttributeEntity.HOUSEHOLD,
        entity_id=household.pk,
        changes=_changes(
            {}, {**_snapshot(household, HOUSEHOLD_FIELDS), "attributes": household.attributes, "head": head}
        ),
        note="Registered with duplicates confirmed by the officer" if duplicates_confirmed else "",
    )
    for member in built:
        _record(
            household,
            actor=acting_user,
            action=ChangeAction.CREATE,
            entity=AttributeEntity.MEMBER,
            entity_id=member.pk,
            member=member,
            changes=_changes({}, {**_snapshot(member, MEMBER_FIELDS), "attributes": member.attributes}),
        )
    submission_record(submission, created=household)
    return household


@transaction.atomic
def household_update(
    *, acting_user, household: Household, values: dict, attributes: dict | None = None, note: str = ""
) -> Household:
    """Edit a household's own fields (not its members); moving village is `household_move`."""
    _require_editor(acting_user)
    household = Household.objects.select_for_update().get(pk=household.pk)
    _require_district(acting_user, household.district)
    unknown = set(values) - set(HOUSEHOLD_FIELDS) | ({"village"} & set(values))
    if unknown:
        raise ValidationError({field: ["Change this through a life event, not an edit."] for field in sorted(unknown)})
    before = {**_snapshot(household, HOUSEHOLD_FIELDS), "attributes": dict(household.attributes)}
    for field, value in values.items():
        setattr(household, field, value.strip() if isinstance(value, str) else value)
    errors: dict[str, list[str]] = {}
    if attributes is not None:
        try:
            household.attributes = clean_attributes(
                AttributeEntity.HOUSEHOLD, attributes, existing=household.attributes
            )
        except ValidationError as problem:
            errors.update(problem.message_dict)
    try:
        validate_household(household)
    except ValidationError as problem:
        errors.update(problem.message_dict)
    if errors:
        raise ValidationError(errors)
    household.phone_key = current_country().phone_key(household.phone)
    changes = _changes(before, {**_snapshot(household, HOUSEHOLD_FIELDS), "attributes": household.attributes})
    if changes:
        household.save()
        _record(
            household,
            actor=acting_user,
            action=ChangeAction.UPDATE,
            entity=AttributeEntity.HOUSEHOLD,
            entity_id=household.pk,
            changes=changes,
            note=note,
        )
    return household


@transaction.atomic
def household_move(
    *,
    acting_user,
    household: Household,
    village: Location,
    address: str = "",
    gps_latitude=None,
    gps_longitude=None,
    note: str = "",
) -> Household:
    """The household moved to another village (possibly another district, if the officer may see both)."""
    _require_editor(acting_user)
    household = Household.objects.select_for_update().get(pk=household.pk)
    _require_district(acting_user, household.district)
    if village.level != LocationLevel.VILLAGE:
        raise ValidationError({"village": ["Choose a village, not a ward or district."]})
    _require_district(acting_user, village.district)
    before = _snapshot(household, ("village", "address", "gps_latitude", "gps_longitude"))
    household.village, household.district = village, village.district
    household.address, household.gps_latitude, household.gps_longitude = address.strip(), gps_latitude, gps_longitude
    validate_household(household)
    household.save()
    _record(
        household,
        actor=acting_user,
        action=ChangeAction.HOUSEHOLD_MOVE,
        entity=AttributeEntity.HOUSEHOLD,
        entity_id=household.pk,
        changes=_changes(before, _snapshot(household, ("village", "address", "gps_latitude", "gps_longitude"))),
        note=note,
    )
    return household


@transaction.atomic
def household_change_head(*, acting_user, household: Household, new_head: Member, note: str = "") -> Household:
    _require_editor(acting_user)
    household = Household.objects.select_for_update().get(pk=household.pk)
    _require_district(acting_user, household.district)
    if new_head.household_id != household.pk:
        raise ValidationError({"head": ["The new head must be a member of this household."]})
    if new_head.status != MemberStatus.PRESENT:
        raise ValidationError({"head": ["The new head must live in the household."]})
    old_head = household.head
    if old_head and old_head.pk == new_head.pk:
        return household
    if old_head is not None and old_head.relationship == Relationship.HEAD:
        Member.objects.filter(pk=old_head.pk).update(
            relationship=Relationship.OTHER_RELATIVE, updated_at=timezone.now()
        )
    Member.objects.filter(pk=new_head.pk).update(relationship=Relationship.HEAD, updated_at=timezone.now())
    household.head = new_head
    household.save(update_fields=["head", "updated_at"])
    _record(
        household,
        actor=acting_user,
        action=ChangeAction.HEAD_CHANGE,
        entity=AttributeEntity.HOUSEHOLD,
        entity_id=household.pk,
        changes={"head": [_as_json(old_head), _as_json(new_head)]},
        note=note,
    )
    return household


@transaction.atomic
def household_set_status(*, acting_user, household: Household, status: str, note: str = "") -> Household:
    """Mark a household moved away or dissolved (households are never deleted: their history stays)."""
    _require_editor(acting_user)
    household = Household.objects.select_for_update().get(pk=household.pk)
    _require_district(acting_user, household.district)
    if status not in HouseholdStatus.values:
        raise ValidationError({"status": [f"Status must be one of {', '.join(HouseholdStatus.values)}."]})
    if status == household.status:
        return household
    before = household.status
    household.status = status
    household.save(update_fields=["status", "updated_at"])
    _record(
        household,
        actor=acting_user,
        action=ChangeAction.UPDATE,
        entity=AttributeEntity.HOUSEHOLD,
        entity_id=household.pk,
        changes={"status": [before, status]},
        note=note,
    )
    return household


# --- members -------------------------------------------------------------------


@transaction.atomic
def member_add(
    *,
    acting_user,
    household: Household,
    values: dict,
    attributes: dict | None = None,
    event: str = ChangeAction.CREATE,
    note: str = "",
) -> Member:
    """Add a member: a birth, a person moving in, or one missed at registration."""
    _require_editor(acting_user)
    household = Household.objects.select_for_update().get(pk=household.pk)
    _require_district(acting_user, household.district)
    if event not in (ChangeAction.CREATE, ChangeAction.BIRTH, ChangeAction.MOVE_IN):
        raise ValidationError({"event": ["A member is added by registration, birth or moving in."]})
    if values.get("relationship") == Relationship.HEAD and household.head_id:
        raise ValidationError({"relationship": ["The household has a head; use 'change head' to change it."]})
    member = _new_member(household, values, attributes)
    if event == ChangeAction.BIRTH:
        if not member.date_of_birth:
            raise ValidationError({"date_of_birth": ["A birth needs the date of birth."]})
        if member.age_on(timezone.localdate()) > 1:
            raise ValidationError(
                {"date_of_birth": ["A birth is recorded within a year; add an older child as a member."]}
            )
    validate_member(member)
    _save_member(member)
    if household.head_id is None:
        household.head = member
        household.save(update_fields=["head", "updated_at"])
    _record(
        household,
        actor=acting_user,
        action=event,
        entity=AttributeEntity.MEMBER,
        entity_id=member.pk,
        member=member,
        changes=_changes({}, {**_snapshot(member, MEMBER_FIELDS), "attributes": member.attributes}),
        note=note,
    )
    return member


@transaction.atomic
def member_update(
    *, acting_user, member: Member, values: dict, attributes: dict | None = None, note: str = ""
) -> Member:
    _require_editor(acting_user)
    member = Member.objects.select_for_update().select_related("household").get(pk=member.pk)
    _require_district(acting_user, member.household.district)
    unknown = set(values) - set(MEMBER_FIELDS)
    if unknown:
        raise ValidationError({field: ["Change this through a life event, not an edit."] for field in sorted(unknown)})
    if values.get("relationship") == Relationship.HEAD and member.household.head_id != member.pk:
        raise ValidationError({"relationship": ["Use 'change head' to make this member the head."]})
    if member.household.head_id == member.pk and values.get("relationship", Relationship.HEAD) != Relationship.HEAD:
        raise ValidationError({"relationship": ["This member heads the household; change the head first."]})
    before = {**_snapshot(member, MEMBER_FIELDS), "attributes": dict(member.attributes)}
    for field, value in values.items():
        setattr(member, field, value)
    errors: dict[str, list[str]] = {}
    if attributes is not None:
        try:
            member.attributes = clean_attributes(AttributeEntity.MEMBER, attributes, existing=member.attributes)
        except ValidationError as problem:
            errors.update(problem.message_dict)
    refresh_member_keys(member)
    try:
        validate_member(member)
    except ValidationError as problem:
        errors.update(problem.message_dict)
    if errors:
        raise ValidationError(errors)
    changes = _changes(before, {**_snapshot(member, MEMBER_FIELDS), "attributes": member.attributes})
    if changes:
        _save_member(member)
        _record(
            member.household,
            actor=acting_user,
            action=ChangeAction.UPDATE,
            entity=AttributeEntity.MEMBER,
            entity_id=member.pk,
            member=member,
            changes=changes,
            note=note,
        )
    return member


def _member_leaves(*, acting_user, member: Member, status: str, on: datetime.date, action: str, note: str) -> Member:
    _require_editor(acting_user)
    member = Member.objects.select_for_update().select_related("household").get(pk=member.pk)
    _require_district(acting_user, member.household.district)
    if member.status != MemberStatus.PRESENT:
        raise ValidationError(
            {"status": [f"{member.full_name} is already recorded as {member.get_status_display().lower()}."]}
        )
    if on > timezone.localdate():
        raise ValidationError({"status_date": ["The date cannot be in the future."]})
    if member.date_of_birth and on < member.date_of_birth:
        raise ValidationError({"status_date": ["The date is before the person was born."]})
    member.status, member.status_date = status, on
    member.save(update_fields=["status", "status_date", "updated_at"])
    household = member.household
    _record(
        household,
        actor=acting_user,
        action=action,
        entity=AttributeEntity.MEMBER,
        entity_id=member.pk,
        member=member,
        changes={"status": [MemberStatus.PRESENT, status], "status_date": [None, on.isoformat()]},
        note=note,
    )
    if household.head_id == member.pk:
        household.head = None
        household.save(update_fields=["head", "updated_at"])
        _record(
            household,
            actor=acting_user,
            action=ChangeAction.HEAD_CHANGE,
            entity=AttributeEntity.HOUSEHOLD,
            entity_id=household.pk,
            changes={"head": [_as_json(member), None]},
            note="The head left the household; choose a new head.",
        )
    return member


@transaction.atomic
def member_record_death(*, acting_user, member: Member, date_of_death: datetime.date, note: str = "") -> Member:
    return _member_leaves(
        acting_user=acting_user,
        member=member,
        status=MemberStatus.DECEASED,
        on=date_of_death,
        action=ChangeAction.DEATH,
        note=note,
    )


@transaction.atomic
def member_move_out(*, acting_user, member: Member, moved_on: datetime.date, note: str = "") -> Member:
    return _member_leaves(
        acting_user=acting_user,
        member=member,
        status=MemberStatus.MOVED_OUT,
        on=moved_on,
        action=ChangeAction.MOVE_OUT,
        note=note,
    )


@transaction.atomic
def member_transfer(
    *, acting_user, member: Member, to_household: Household, relationship: str, note: str = ""
) -> Member:
    """A registered person moves into another registered household: one person, two histories."""
    _require_editor(acting_user)
    households = {
        h.pk: h
        for h in Household.objects.select_for_update()
        .filter(pk__in=[member.household_id, to_household.pk])
        .order_by("pk")
    }
    member = Member.objects.select_for_update().get(pk=member.pk)
    source, target = households[member.household_id], households[to_household.pk]
    _require_district(acting_user, source.district)
    _require_district(acting_user, target.district)
    if source.pk == target.pk:
        raise ValidationError({"household": ["The person already belongs to this household."]})
    if member.status == MemberStatus.DECEASED:
        raise ValidationError({"status": ["A deceased person cannot move."]})
    if relationship == Relationship.HEAD:
        raise ValidationError({"relationship": ["Move the person in first, then change the head."]})
    if relationship not in Relationship.values:
        raise ValidationError({"relationship": ["Choose a relationship to the head."]})
    before_relationship = member.relationship
    member.household, member.relationship = target, relationship
    member.status, member.status_date = MemberStatus.PRESENT, None
    member.save(update_fields=["household", "relationship", "status", "status_date", "updated_at"])
    _record(
        source,
        actor=acting_user,
        action=ChangeAction.MOVE_OUT,
        entity=AttributeEntity.MEMBER,
        entity_id=member.pk,
        member=member,
        changes={"household": [source.number, target.number], "relationship": [before_relationship, None]},
        note=note,
    )
    _record(
        target,
        actor=acting_user,
        action=ChangeAction.MOVE_IN,
        entity=AttributeEntity.MEMBER,
        entity_id=member.pk,
        member=member,
        changes={"household": [source.number, target.number], "relationship": [None, relationship]},
        note=note,
    )
    if source.head_id == member.pk:
        source.head = None
        source.save(update_fields=["head", "updated_at"])
        _record(
            source,
            actor=acting_user,
            action=ChangeAction.HEAD_CHANGE,
            entity=AttributeEntity.HOUSEHOLD,
            entity_id=source.pk,
            changes={"head": [_as_json(member), None]},
            note="The head moved to another household.",
        )
    return member


@transaction.atomic
def member_delete(*, acting_user, member: Member, reason: str) -> None:
    """Remove a member recorded by mistake (a death or move is a life event, not a deletion)."""
    _require_editor(acting_user)
    member = Member.objects.select_for_update().select_related("household").get(pk=member.pk)
    household = member.household
    _require_district(acting_user, household.district)
    if not reason.strip():
        raise ValidationError({"reason": ["Say why the member is removed."]})
    if household.head_id == member.pk:
        raise ValidationError({"member": ["This member heads the household; change the head first."]})
    if household.members.count() == 1:
        raise ValidationError({"member": ["A household keeps at least one member; dissolve the household instead."]})
    old = {**_snapshot(member, MEMBER_FIELDS), "attributes": member.attributes}
    member_id = member.pk
    ChangeEntry.objects.filter(member_id=member_id).update(member=None)
    member.delete()
    _record(
        household,
        actor=acting_user,
        action=ChangeAction.DELETE,
        entity=AttributeEntity.MEMBER,
        entity_id=member_id,
        changes={field: [_as_json(value), None] for field, value in old.items() if value not in (None, "", {}, False)},
        note=reason,
    )
