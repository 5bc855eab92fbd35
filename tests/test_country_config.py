"""A second country by configuration alone: switch SPF_COUNTRY to Khyber
Pakhtunkhwa and the same code loads its districts, checks its ID card, numbers
its households and reads its phones."""

import datetime
import io
import json
import re
import tokenize
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import override_settings

from registry.countries import COUNTRIES_DIR, current_country, load_country
from registry.models import Location, LocationLevel, Member, Relationship
from registry.selectors import household_search
from registry.services import MemberInput, household_register
from registry.tests.factories import UserFactory
from spf.models import Role

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
def khyber_pakhtunkhwa(db):
    """The project switched to the second country, its locations loaded as an operator would."""
    with override_settings(SPF_COUNTRY="PK-KP"):
        call_command("load_locations", verbosity=0)
        yield current_country()


@pytest.fixture
def peshawar_officer(khyber_pakhtunkhwa):
    return UserFactory(
        username="frontdesk_psh_test", role=Role.FRONT_DESK, districts=[Location.objects.get(code="PSH")]
    )


def head(**extra) -> MemberInput:
    values = {
        "first_name": "Ayesha",
        "last_name": "Khan",
        "sex": "F",
        "date_of_birth": datetime.date(1985, 3, 1),
        "relationship": Relationship.HEAD,
    }
    values.update(extra)
    return MemberInput(values=values)


def first_village(district_code: str) -> Location:
    return Location.objects.filter(level=LocationLevel.VILLAGE, district__code=district_code).order_by("code").first()


def test_the_setting_chooses_the_country(khyber_pakhtunkhwa):
    assert khyber_pakhtunkhwa.code == "PK-KP"
    assert khyber_pakhtunkhwa.currency == "PKR"
    assert khyber_pakhtunkhwa.national_id_label == "CNIC number"


def test_load_locations_loads_peshawar_and_nowshera_with_their_wards_and_villages(khyber_pakhtunkhwa):
    districts = dict(Location.objects.filter(level=LocationLevel.DISTRICT).values_list("code", "name"))
    assert districts == {"PSH": "Peshawar", "NSH": "Nowshera"}
    for code in ("PSH", "NSH"):
        village = first_village(code)
        assert village is not None and village.district.code == code
        assert village.parent.level == LocationLevel.WARD
    assert Location.objects.get(code="PSH").parent.name == "Khyber Pakhtunkhwa"


def test_loading_the_locations_again_changes_nothing(khyber_pakhtunkhwa):
    count = Location.objects.count()
    with override_settings(SPF_COUNTRY="PK-KP"):
        call_command("load_locations", verbosity=0)
    assert Location.objects.count() == count


def test_a_household_registers_with_a_cnic_and_a_peshawar_number(peshawar_officer):
    with override_settings(SPF_COUNTRY="PK-KP"):
        household = household_register(
            acting_user=peshawar_officer,
            village=first_village("PSH"),
            phone="+92 301 2345678",
            members=[head(national_id="17301-1234567-1")],
        )
        assert household.number == "PSH-000001"
        assert household.head.national_id == "17301-1234567-1"
        assert household_search(user=peshawar_officer, query="17301-1234567-1")[0].household == household
        assert household_search(user=peshawar_officer, query="0301 2345678")[0].household == household


def test_a_zambian_nrc_is_refused_with_the_cnic_format_named(peshawar_officer):
    with override_settings(SPF_COUNTRY="PK-KP"), pytest.raises(ValidationError) as raised:
        household_register(
            acting_user=peshawar_officer, village=first_village("PSH"), members=[head(national_id="123456/10/1")]
        )
    assert raised.value.message_dict["members.0.national_id"] == ["CNIC number must look like 17301-1234567-1."]
    assert not Member.objects.exists()


@pytest.mark.parametrize("typed", ["+92 301 2345678", "0092 301 2345678", "0301-2345678", "301 2345678"])
def test_phone_keys_drop_the_country_code_and_the_trunk_zero(khyber_pakhtunkhwa, typed):
    assert khyber_pakhtunkhwa.phone_key(typed) == "3012345678"


def test_the_first_country_is_untouched_by_the_switch(khyber_pakhtunkhwa):
    zambia_code = json.loads((PROJECT / "registry/countries/ZM/country.json").read_text())["code"]
    zambia = load_country(zambia_code)
    assert zambia.national_id_is_valid("123456/10/1") and not zambia.national_id_is_valid("17301-1234567-1")
    assert khyber_pakhtunkhwa.national_id_is_valid("17301-1234567-1")


# --- nothing in code names a country ------------------------------------------------------------------

# Product code (not tests, not migrations, not the settings, which choose the
# country, and not the country folders themselves).
SCANNED_DIRS = ("spf", "registry", "programmes", "referrals", "payments", "templates", "static/js")
SCANNED_SUFFIXES = {".py", ".html", ".js", ".txt"}


def _country_words() -> set[str]:
    """Words that only a country's configuration may say: its name, ID label, currency, dialling code, districts."""
    words: set[str] = set()
    for config_path in COUNTRIES_DIR.glob("*/country.json"):
        country = load_country(config_path.parent.name)
        words.update(w for w in re.findall(r"[A-Za-z]{4,}", country.name))
        words.add(country.national_id_label.split()[0])
        words.add(country.currency)
        words.add(f"+{country.phone_country_code}")
        districts = {row["code"]: row["name"] for row in country.location_rows() if row["level"] == "district"}
        words.update(districts[code] for code in country.demo_districts if code in districts)
    return words


def _is_scanned(path: Path) -> bool:
    relative = path.relative_to(PROJECT).as_posix()
    return not (
        "/tests/" in f"/{relative}"
        or path.name.startswith("test_")
        or path.name == "conftest.py"
        or "/migrations/" in relative
        or relative.startswith("registry/countries/")
        or relative.startswith("spf/settings/")
    )


# Comments may cite a country (the census a weight came from); code and the
# text shown to people may not.
_TEMPLATE_COMMENTS = re.compile(r"\{#.*?#\}|<!--.*?-->|/\*.*?\*/|(?<![:\\])//[^\n]*", re.DOTALL)


def _code_lines(path: Path) -> list[tuple[int, str]]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        kept = []
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE):
                kept.append((token.start[0], token.string))
        return kept
    without_comments = _TEMPLATE_COMMENTS.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    return list(enumerate(without_comments.splitlines(), start=1))


def test_no_product_code_names_a_country():
    words = _country_words()
    assert {"Zambia", "Pakistan", "NRC", "CNIC", "PKR", "Samfya", "Peshawar"} <= words  # the scan looks for something
    pattern = re.compile("|".join(rf"(?<![\w+]){re.escape(word)}(?!\w)" for word in sorted(words)))
    offenders = []
    for folder in SCANNED_DIRS:
        for path in sorted((PROJECT / folder).rglob("*")):
            if path.suffix in SCANNED_SUFFIXES and path.is_file() and _is_scanned(path):
                for number, text in _code_lines(path):
                    if pattern.search(text):
                        offenders.append(f"{path.relative_to(PROJECT)}:{number}: {text.strip()[:120]}")
    assert offenders == [], "country named in code:\n" + "\n".join(offenders)
