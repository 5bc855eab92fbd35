"""The demo users: one login per role, so a newcomer can try every screen.

They are created only by the demo (`seed_demo`), never by a migration: a
production database never has them.
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from registry.countries import current_country
from registry.models import Location, LocationLevel

from .models import Role, User


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    # Positions in the country's `demo_districts` (Samfya is 0, Lunga 1 for Zambia).
    district_positions: tuple[int, ...] = ()
    is_staff: bool = False
    is_superuser: bool = False


DEMO_USERS = (
    DemoUser("frontdesk_samfya", Role.FRONT_DESK, (0,)),
    DemoUser("frontdesk_lunga", Role.FRONT_DESK, (1,)),
    DemoUser("committee_samfya", Role.COMMITTEE, (0,)),
    # Ministry staff see every district; staff and superuser so the Django admin opens for them.
    DemoUser("ministry_admin", Role.MINISTRY, (), is_staff=True, is_superuser=True),
)


@transaction.atomic
def demo_users_ensure(*, password: str | None = None) -> list[User]:
    """Create the demo users, or put back their role and districts; the password is set only on creation.

    A password someone changed on purpose is left alone when the demo runs again.
    """
    password = password or settings.DEMO_PASSWORD
    codes = current_country().demo_districts
    districts = {d.code: d for d in Location.objects.filter(level=LocationLevel.DISTRICT, code__in=codes)}
    users = []
    for spec in DEMO_USERS:
        user, created = User.objects.get_or_create(
            username=spec.username,
            defaults={"role": spec.role, "is_staff": spec.is_staff, "is_superuser": spec.is_superuser},
        )
        if created:
            user.set_password(password)
        user.role, user.is_staff, user.is_superuser = spec.role, spec.is_staff, spec.is_superuser
        user.save()
        user.districts.set(
            [districts[codes[p]] for p in spec.district_positions if p < len(codes) and codes[p] in districts]
        )
        users.append(user)
    return users


def demo_logins(users: list[User], *, password: str | None = None) -> list[tuple[str, str, str, str]]:
    """(username, role, districts, password) for printing."""
    password = password or settings.DEMO_PASSWORD
    rows = []
    for user in users:
        names = ", ".join(d.name for d in user.districts.order_by("name")) or "all districts"
        rows.append((user.username, user.get_role_display(), names, password))
    return rows


def front_desk_by_district(users: list[User]) -> dict[str, int]:
    """District code -> the id of the demo front-desk officer who registers its households."""
    desks = {}
    for user in users:
        if user.role == Role.FRONT_DESK:
            for district in user.districts.order_by("code"):
                desks.setdefault(district.code, user.pk)
    return desks


@transaction.atomic
def demo_programme_officers_ensure(*, agencies, password: str | None = None) -> list[User]:
    """One programme officer per demo agency, `officer_<agency code in lower case>`, seeing the demo districts."""
    password = password or settings.DEMO_PASSWORD
    districts = list(Location.objects.filter(level=LocationLevel.DISTRICT, code__in=current_country().demo_districts))
    officers = []
    for agency in agencies:
        user, created = User.objects.get_or_create(
            username=f"officer_{agency.code.lower()}", defaults={"role": Role.PROGRAMME_OFFICER, "agency": agency}
        )
        if created:
            user.set_password(password)
        user.role, user.agency = Role.PROGRAMME_OFFICER, agency
        user.save()
        user.districts.set(districts)
        officers.append(user)
    return officers
