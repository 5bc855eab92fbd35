"""The demo catalogue: agencies, programmes with their rules, and one officer per agency.

The catalogue is the country's configuration (`demo_programmes.json` in its
folder), written in the rules language and saved through the same services
ministry staff use, so a demo rule that does not compile fails the demo loudly.
"""

import json
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from registry.attribute_services import attribute_definition_ensure
from registry.countries import Country
from registry.models import Location, LocationLevel

from .models import Agency, Programme, ProgrammeDistrict, ProgrammeStatus
from .services import programme_set_rules, recompute_run_create, recompute_run_execute

CATALOGUE_FILE = "demo_programmes.json"


@dataclass
class DemoCatalogue:
    agencies: list[Agency]
    programmes: list[Programme]
    created: int


def demo_catalogue_definition(country: Country) -> dict | None:
    path = country.folder / CATALOGUE_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


@transaction.atomic
def demo_catalogue_ensure(*, country: Country, acting_user) -> DemoCatalogue:
    """Create the country's demo agencies and programmes if missing; existing ones are left as staff changed them."""
    definition = demo_catalogue_definition(country)
    if definition is None:
        return DemoCatalogue([], [], 0)
    for attribute in definition.get("attributes", []):
        attribute_definition_ensure(**attribute)
    agencies = {}
    for spec in definition["agencies"]:
        values = {
            key: spec.get(key, "")
            for key in ("name", "kind", "focal_point_name", "focal_point_title", "email", "phone")
        }
        agencies[spec["code"]], _ = Agency.objects.get_or_create(code=spec["code"], defaults=values)
    districts = list(Location.objects.filter(level=LocationLevel.DISTRICT, code__in=country.demo_districts))
    programmes, created = [], 0
    for spec in definition["programmes"]:
        programme = Programme.objects.filter(code=spec["code"]).first()
        if programme is None:
            programme = Programme.objects.create(
                code=spec["code"],
                name=spec["name"],
                agency=agencies[spec["agency"]],
                description=spec["description"],
                kind=spec["kind"],
                frequency=spec["frequency"],
                enrolment_mode=spec["enrolment_mode"],
                documents=spec.get("documents", []),
                currency=country.currency,
                # Drafts while the rules are set, so saving them queues no run;
                # the demo assesses everything once at the end.
                status=ProgrammeStatus.DRAFT,
            )
            capacity = spec.get("capacity")
            for district in districts:
                ProgrammeDistrict.objects.create(
                    programme=programme,
                    district=district,
                    capacity=capacity,
                    budget=_yearly_budget(spec, capacity),
                )
            programme_set_rules(
                acting_user=acting_user,
                programme=programme,
                eligibility_rule=spec["rule"],
                benefit_formula=spec.get("formula", ""),
                note="demo catalogue",
            )
            Programme.objects.filter(pk=programme.pk).update(status=ProgrammeStatus.ACTIVE)
            programme.refresh_from_db()
            created += 1
        programmes.append(programme)
    return DemoCatalogue(list(agencies.values()), programmes, created)


def _yearly_budget(spec: dict, capacity: int | None) -> Decimal | None:
    """A budget that fits the capacity at the highest amount the formula names, for cash programmes; none otherwise."""
    if not capacity or not spec.get("formula"):
        return None
    amounts = [Decimal(word) for word in spec["formula"].replace("?", " ").replace(":", " ").split() if word.isdigit()]
    periods = {"monthly": 12, "bimonthly": 6, "quarterly": 4, "termly": 3, "annual": 1, "one_off": 1}[spec["frequency"]]
    return max(amounts, default=Decimal(0)) * capacity * periods


def demo_eligibility_compute() -> int:
    """Assess every demo household now (the demo has no worker to do it later); returns assessments made."""
    run = recompute_run_create(reason="demo seeded")
    run = recompute_run_execute(run_id=run.pk)
    return run.households_assessed
