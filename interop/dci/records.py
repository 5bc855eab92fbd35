"""The registry's households, members and enrolments in the shapes of the DCI
data objects: Group and Member (Social Registry), Beneficiary (Integrated
Beneficiary Registry).

The shapes follow the specifications' component examples (SearchResponse
reg_records); where the examples and the samples differ (`given_name` or
`first_name`, a date or a date-time), the example wins, and
docs/interoperability.md lists each choice. Codes the specifications leave to
a code directory that is not part of the reference are given as readable
words and listed there too.
"""

from __future__ import annotations

from decimal import Decimal

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery

from payments.models import (
    Enrolment,
    EnrolmentEvent,
    EnrolmentEventKind,
    EnrolmentStatus,
    ExitReason,
    Payment,
    PaymentStatus,
)
from programmes.models import BenefitFrequency, ProgrammeKind
from registry.countries import current_country
from registry.models import DISABILITY_DOMAINS, Household, Member, MemberStatus

from .config import poverty_score_attribute

SOCIAL_CONTEXT = {
    "@vocab": "https://schema.spdci.org/extensions/social/v1",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "schema": "http://schema.org/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
}
IBR_CONTEXT = {**SOCIAL_CONTEXT, "@vocab": "https://schema.spdci.org/extensions/ibr/v1"}

NATIONAL_ID_TYPE = "NID"
HOUSEHOLD_NUMBER_TYPE = "HHID"
MEMBER_ID_TYPE = "MEMBER_ID"
ENROLMENT_ID_TYPE = "ENROLMENT_ID"

SEX = {"F": "female", "M": "male"}
# Relationship to the head, as the common code directory (cd.com.07) words it.
RELATIONSHIP = {"head": "self"}
# Washington Group domains as ICF codes (functional_limitation_type, cd.com.11).
FUNCTIONAL_LIMITATION = {
    "seeing": "b210",
    "hearing": "b230",
    "walking": "d450",
    "cognition": "b144",
    "self_care": "d5",
    "communication": "d3",
}
# The Washington Group's four degrees (1 no difficulty … 4 cannot do at all) as functional_severity 0 … 3.
SEVERITY_OFFSET = 1
# cd.ibr.01 enrolment_status words; statuses before enrolment, and exits other
# than death and graduation, have no code there and keep our own word.
ENROLMENT_STATUS = {
    EnrolmentStatus.APPLIED: "Applied",
    EnrolmentStatus.VERIFIED: "Verified",
    EnrolmentStatus.APPROVED: "Approved",
    EnrolmentStatus.ACTIVE: "Active",
    EnrolmentStatus.SUSPENDED: "Suspended",
    EnrolmentStatus.EXITED: "Exited",
}
EXIT_STATUS = {ExitReason.DECEASED: "Deceased", ExitReason.GRADUATED: "Graduated"}
BENEFIT_TYPE = {
    ProgrammeKind.CASH_TRANSFER: "Cash",
    ProgrammeKind.IN_KIND: "In kind",
    ProgrammeKind.SCHOOL_FEEDING: "In kind",
    ProgrammeKind.HEALTH: "Service",
    ProgrammeKind.LIVELIHOOD: "Service",
    ProgrammeKind.CARE: "Service",
    ProgrammeKind.OTHER: "Other",
}
BENEFIT_FREQUENCY = {
    BenefitFrequency.ONE_OFF: "One-off",
    BenefitFrequency.MONTHLY: "Monthly",
    BenefitFrequency.BIMONTHLY: "Bimonthly",
    BenefitFrequency.QUARTERLY: "Quarterly",
    BenefitFrequency.TERMLY: "Termly",
    BenefitFrequency.ANNUAL: "Annual",
}


def _identifier(kind: str, value: str) -> dict:
    return {"@type": "Identifier", "identifier_type": kind, "identifier_value": value}


def money(amount: Decimal | None, currency: str) -> str | None:
    return None if amount is None else f"{currency} {amount:.2f}"


def _attributes(values: dict) -> list[dict]:
    return [{key: value} for key, value in sorted((values or {}).items()) if value not in (None, "")]


# --- loading -------------------------------------------------------------------------------


def households_for_records(queryset: QuerySet[Household]) -> QuerySet[Household]:
    """What group records read, in a fixed number of queries whatever the page size."""
    return queryset.select_related("village", "village__parent", "district", "head").prefetch_related(
        Prefetch(
            "members", queryset=Member.objects.filter(status=MemberStatus.PRESENT).order_by("id"), to_attr="present"
        )
    )


def members_for_records(queryset: QuerySet[Member]) -> QuerySet[Member]:
    return queryset.select_related(
        "household", "household__village", "household__village__parent", "household__district"
    )


# --- Social Registry ---------------------------------------------------------------------


def _address(household: Household) -> dict:
    village = household.village
    return {
        "@type": "Address",
        "address_line1": household.address,
        "locality": village.name,
        "sub_region_code": village.parent.code if village.parent_id else "",
        "region_code": household.district.code,
        "country_code": current_country().code,
    }


def _place(household: Household) -> dict:
    village = household.village
    ward = village.parent.name if village.parent_id else ""
    words = [household.address, village.name, ward, household.district.name]
    place = {"@type": "Place", "address": ", ".join(w for w in words if w)}
    if household.gps_latitude is not None and household.gps_longitude is not None:
        place["geo"] = {
            "@type": "GeoCoordinates",
            "latitude": f"{household.gps_latitude:f}",
            "longitude": f"{household.gps_longitude:f}",
        }
    return place


def member_record(member: Member, household: Household) -> dict:
    """A person of the registry as a DCI Member (with its SRPerson demographic_info)."""
    identifiers = [_identifier(NATIONAL_ID_TYPE, member.national_id)] if member.national_id else []
    person = {
        "@type": "SRPerson",
        "identifier": identifiers,
        "name": {
            "@type": "Name",
            "surname": member.last_name,
            "given_name": member.first_name,
            "second_name": member.middle_name,
            "prefix": "",
            "suffix": "",
        },
        "sex": SEX.get(member.sex, member.sex),
        "birth_date": member.date_of_birth.isoformat() if member.date_of_birth else None,
        "address": [_address(household)],
        "phone_number": [member.phone] if member.phone else [],
    }
    if member.date_of_birth_estimated:
        person["birth_date_estimated"] = True
    if member.status == MemberStatus.DECEASED:
        person["death_date"] = member.status_date.isoformat() if member.status_date else None
    degrees = member.disability_degrees()
    answered = {domain: degree for domain, degree in degrees.items() if degree is not None}
    record = {
        "@type": "Member",
        "@id": f"member/{member.pk}",
        "member_identifier": [_identifier(MEMBER_ID_TYPE, str(member.pk)), *identifiers],
        "demographic_info": person,
        "relationship_head": RELATIONSHIP.get(member.relationship, member.relationship),
        "is_disabled": member.has_disability if answered else None,
        "disability_info": [
            {
                "functional_limitation_type": FUNCTIONAL_LIMITATION[domain],
                "functional_severity": str(degree - SEVERITY_OFFSET),
            }
            for domain in DISABILITY_DOMAINS
            if (degree := degrees[domain]) is not None
        ],
        "employment_status": member.work_status or None,
        "household_identifier": household.number,
        "member_status": member.status,
        "registration_date": household.registration_date.isoformat(),
        "last_updated": member.updated_at.isoformat(),
        "additional_attributes": _attributes(member.attributes),
    }
    return record


def group_record(household: Household) -> dict:
    """A household as a DCI Group, with its head and its present members."""
    members = getattr(household, "present", None)
    if members is None:
        members = list(household.members.filter(status=MemberStatus.PRESENT).order_by("id"))
    poverty = (household.attributes or {}).get(poverty_score_attribute())
    head = next((m for m in members if m.pk == household.head_id), household.head)
    return {
        "@context": SOCIAL_CONTEXT,
        "@id": f"group/{household.number}",
        "@type": "Group",
        "group_identifier": [_identifier(HOUSEHOLD_NUMBER_TYPE, household.number)],
        "group_type": "household",
        "place": _place(household),
        "poverty_score": float(poverty) if isinstance(poverty, (int, float, str)) and _is_number(poverty) else None,
        "poverty_score_type": poverty_score_attribute() if poverty is not None else "",
        "group_head_info": member_record(head, household) if head is not None else None,
        "group_size": len(members),
        "member_list": [member_record(m, household) for m in members],
        "household_status": household.status,
        "registration_date": household.registration_date.isoformat(),
        "last_updated": household.updated_at.isoformat(),
        "additional_attributes": _attributes(household.attributes),
    }


def _is_number(value) -> bool:
    try:
        Decimal(str(value))
    except ArithmeticError:
        return False
    return True


def member_search_record(member: Member) -> dict:
    """A member found by a Member search: the Member object with the JSON-LD context."""
    return {"@context": SOCIAL_CONTEXT, **member_record(member, member.household)}


# --- Integrated Beneficiary Registry -----------------------------------------------------------------


def enrolments_for_records(queryset: QuerySet[Enrolment]) -> QuerySet[Enrolment]:
    """What beneficiary records read: the enrolment, its household and person, and two facts
    from history (when its status last changed, its last payment) as subqueries."""
    last_status = (
        EnrolmentEvent.objects.filter(enrolment=OuterRef("pk"), kind=EnrolmentEventKind.STATUS)
        .order_by("-at", "-id")
        .values("at")[:1]
    )
    last_paid = Payment.objects.filter(enrolment=OuterRef("pk"), status=PaymentStatus.PAID).order_by("-paid_at", "-id")
    return queryset.select_related(
        "programme",
        "member",
        "household",
        "household__head",
        "household__village",
        "household__village__parent",
        "household__district",
    ).annotate(
        status_changed_at=Subquery(last_status),
        last_paid_at=Subquery(last_paid.values("paid_at")[:1]),
        last_paid_amount=Subquery(last_paid.values("paid_amount")[:1]),
    )


def enrolment_status_word(enrolment: Enrolment) -> str:
    if enrolment.status == EnrolmentStatus.EXITED:
        return EXIT_STATUS.get(enrolment.exit_reason, ENROLMENT_STATUS[EnrolmentStatus.EXITED])
    return ENROLMENT_STATUS[enrolment.status]


def _day(moment) -> str | None:
    return moment.date().isoformat() if moment else None


def programme_identifier(enrolment: Enrolment) -> dict:
    programme = enrolment.programme
    changed = getattr(enrolment, "status_changed_at", None)
    paid_at = getattr(enrolment, "last_paid_at", None)
    paid = getattr(enrolment, "last_paid_amount", None)
    return {
        "programme": {"programme_identifier": programme.code, "programme_name": programme.name},
        "enrolment_identifier": _identifier(ENROLMENT_ID_TYPE, enrolment.number),
        "registration_date": _day(enrolment.applied_at),
        "enrolment_date": _day(enrolment.activated_at or enrolment.approved_at),
        "enrolment_status": enrolment_status_word(enrolment),
        "status_change_date": _day(changed),
        "suspension_date": _day(enrolment.suspended_at),
        "graduation_date": _day(enrolment.exited_at) if enrolment.exit_reason == ExitReason.GRADUATED else None,
        "benefits": {
            "benefit_type": BENEFIT_TYPE.get(programme.kind, "Other"),
            "benefit_date": _day(paid_at),
            "benefit_value": money(paid if paid is not None else enrolment.amount, enrolment.currency),
            "benefit_frequency": BENEFIT_FREQUENCY.get(programme.frequency, programme.frequency),
        },
    }


def beneficiary_record(enrolment: Enrolment) -> dict:
    """An enrolment as a DCI Beneficiary: the person (the member enrolled, or the household's head)
    with the programme they are enrolled in."""
    household = enrolment.household
    person = enrolment.member or household.head
    member = member_record(person, household) if person is not None else {"@type": "Member"}
    member["programme_identifier"] = programme_identifier(enrolment)
    return {
        "@context": IBR_CONTEXT,
        "@id": f"beneficiary/{enrolment.number}",
        "@type": "Beneficiary",
        "assistance_unit": "individual" if enrolment.member_id else "household",
        "group_identifier": [_identifier(HOUSEHOLD_NUMBER_TYPE, household.number)],
        "member": member,
    }
