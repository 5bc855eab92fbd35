"""Finding the person or household a partner's message is about, within the partner's districts."""

from __future__ import annotations

from dataclasses import dataclass

from registry.countries import current_country
from registry.models import Household, Member
from registry.selectors import households_for, members_for

from ..models import Partner
from .queries import IDENTIFIERS


@dataclass
class Found:
    household: Household | None = None
    member: Member | None = None


def identifiers_in(block) -> list[tuple[str, str]]:
    """(type, value) of every identifier in a DCI object, however the sender nested it:
    a list of {identifier_type, identifier_value}, one such object, or its keys on the object itself."""
    found: list[tuple[str, str]] = []

    def take(value) -> None:
        if isinstance(value, list):
            for item in value:
                take(item)
        elif isinstance(value, dict) and "identifier_type" in value and "identifier_value" in value:
            kind, text = str(value["identifier_type"]).strip(), str(value["identifier_value"]).strip()
            if kind and text:
                found.append((kind, text))

    if not isinstance(block, dict):
        return found
    take(block)
    for key in ("identifier", "member_identifier", "group_identifier", "person_identifier"):
        take(block.get(key))
    member = block.get("member")
    if isinstance(member, dict):
        found += identifiers_in(member)
    demographic = block.get("demographic_info")
    if isinstance(demographic, dict):
        found += identifiers_in(demographic)
        found += identifiers_in(demographic.get("person"))
    return found


def find(partner: Partner, identifiers: list[tuple[str, str]]) -> Found:
    """The person (and their household), or the household, the identifiers name in the partner's districts.

    A national ID or a member id names a person; a household number a household. Outside the
    partner's districts nothing is found, exactly as if it did not exist."""
    user = partner.service_user
    for kind, value in identifiers:
        identifier = IDENTIFIERS.get(kind.lower())
        if identifier is None:
            continue
        if identifier.name == "national_id":
            member = members_for(user).select_related("household").filter(national_id=value.upper()).first()
        elif identifier.name == "member_id":
            member = (
                members_for(user).select_related("household").filter(pk=int(value)).first() if value.isdigit() else None
            )
        elif identifier.name == "household_number":
            household = households_for(user).filter(number=value.upper()).first()
            if household is not None:
                return Found(household=household)
            continue
        else:
            member = (
                members_for(user)
                .select_related("household")
                .filter(phone_key=current_country().phone_key(value))
                .first()
            )
        if member is not None:
            return Found(household=member.household, member=member)
    return Found()
