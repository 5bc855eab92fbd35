"""Factories for the registry. Households and members are built through the
services where a test is about behaviour; these make the plain rows fast."""

import datetime

import factory
from django.utils import timezone

from registry import names
from registry.countries import current_country
from registry.models import Household, Location, LocationLevel, Member, Relationship, Sex
from spf.models import Role, User


class LocationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Location
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"LOC{n:04d}")
    name = factory.Sequence(lambda n: f"Place {n}")
    level = LocationLevel.PROVINCE


def make_district(code: str, name: str | None = None) -> Location:
    province = LocationFactory(code=f"P-{code}", name=f"Province of {code}", level=LocationLevel.PROVINCE)
    district = LocationFactory(code=code, name=name or code.title(), level=LocationLevel.DISTRICT, parent=province)
    if district.district_id != district.pk:
        district.district = district
        district.save(update_fields=["district"])
    return district


def make_village(district: Location, suffix: str = "1") -> Location:
    ward = LocationFactory(
        code=f"{district.code}-W{suffix}",
        name=f"Ward {suffix} of {district.name}",
        level=LocationLevel.WARD,
        parent=district,
        district=district,
    )
    return LocationFactory(
        code=f"{district.code}-W{suffix}-V1",
        name=f"Village {suffix} of {district.name}",
        level=LocationLevel.VILLAGE,
        parent=ward,
        district=district,
    )


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    role = Role.FRONT_DESK
    password = factory.PostGenerationMethodCall("set_password", "pass-word-123")

    @factory.post_generation
    def districts(self, create, extracted, **kwargs):
        if create and extracted:
            self.districts.set(extracted)
        if create:
            self.save()


class HouseholdFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Household

    number = factory.Sequence(lambda n: f"TST-{n:06d}")
    village = factory.LazyFunction(lambda: make_village(make_district("TST")))
    district = factory.LazyAttribute(lambda o: o.village.district)
    registration_date = factory.LazyFunction(timezone.localdate)


class MemberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Member

    household = factory.SubFactory(HouseholdFactory)
    first_name = factory.Iterator(["Mary", "Chilufya", "Bupe", "Grace"])
    last_name = factory.Iterator(["Mwansa", "Banda", "Phiri", "Tembo"])
    sex = Sex.FEMALE
    date_of_birth = datetime.date(1980, 5, 17)
    relationship = Relationship.OTHER_RELATIVE

    @factory.lazy_attribute
    def search_name(self):
        return names.plain(f"{self.first_name} {self.last_name}")

    @factory.lazy_attribute
    def name_keys(self):
        return names.name_keys_text(self.first_name, self.last_name)

    @factory.lazy_attribute
    def phone_key(self):
        return current_country().phone_key(getattr(self, "phone", ""))
