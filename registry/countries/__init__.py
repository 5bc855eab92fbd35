"""A country is configuration, not code.

Each folder here (named by the SPF_COUNTRY setting) holds `country.json` (the
national ID's label and pattern, the currency, the phone prefix), a locations
file (province, district, ward, village rows) and the names the demo uses.
A new country is a new folder; no code changes.
"""

import csv
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings

COUNTRIES_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Country:
    code: str
    name: str
    currency: str
    currency_symbol: str
    national_id_label: str
    national_id_pattern: str
    national_id_example: str
    phone_country_code: str
    phone_national_digits: int
    phone_example: str
    folder: Path
    locations_file: str
    names_file: str
    demo_districts: tuple[str, ...]

    def national_id_is_valid(self, value: str) -> bool:
        return re.fullmatch(self.national_id_pattern, value) is not None

    def phone_key(self, phone: str) -> str:
        """The national significant number: the same phone however it was typed (+260 97..., 097..., 97...)."""
        digits = re.sub(r"\D", "", phone or "")
        if digits.startswith(self.phone_country_code) and len(digits) > self.phone_national_digits:
            digits = digits[len(self.phone_country_code) :]
        return digits[-self.phone_national_digits :] if digits else ""

    def location_rows(self) -> list[dict]:
        with open(self.folder / self.locations_file, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def names(self) -> dict:
        return json.loads((self.folder / self.names_file).read_text(encoding="utf-8"))


@cache
def load_country(code: str) -> Country:
    folder = COUNTRIES_DIR / code
    config_path = folder / "country.json"
    if not config_path.exists():
        known = ", ".join(sorted(p.name for p in COUNTRIES_DIR.iterdir() if (p / "country.json").exists()))
        raise LookupError(f"No country configuration for {code!r}; known: {known}.")
    raw = json.loads(config_path.read_text(encoding="utf-8"))
    return Country(
        code=raw["code"],
        name=raw["name"],
        currency=raw["currency"],
        currency_symbol=raw.get("currency_symbol", raw["currency"]),
        national_id_label=raw["national_id"]["label"],
        national_id_pattern=raw["national_id"]["pattern"],
        national_id_example=raw["national_id"]["example"],
        phone_country_code=raw["phone"]["country_code"],
        phone_national_digits=int(raw["phone"]["national_digits"]),
        phone_example=raw["phone"].get("example", ""),
        folder=folder,
        locations_file=raw["locations"],
        names_file=raw["names"],
        demo_districts=tuple(raw.get("demo_districts", ())),
    )


def current_country() -> Country:
    return load_country(settings.SPF_COUNTRY)
