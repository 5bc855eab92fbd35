import csv

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from registry.countries import load_country
from registry.services import locations_load


class Command(BaseCommand):
    help = "Load the country's province → district → ward → village file (or another CSV). Safe to run again."

    def add_arguments(self, parser):
        parser.add_argument("--country", help="Country folder under registry/countries (default: SPF_COUNTRY).")
        parser.add_argument(
            "--file", help="A CSV with level, code, name, parent_code columns instead of the country's."
        )

    def handle(self, *args, country=None, file=None, **options):
        from django.conf import settings

        if file:
            with open(file, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
        else:
            try:
                rows = load_country(country or settings.SPF_COUNTRY).location_rows()
            except LookupError as problem:
                raise CommandError(str(problem)) from problem
        try:
            counts = locations_load(rows=rows)
        except ValidationError as problem:
            raise CommandError("Locations not loaded:\n  " + "\n  ".join(problem.messages)) from problem
        self.stdout.write(
            f"Locations: {counts['created']} created, {counts['updated']} updated, {len(rows)} in the file."
        )
