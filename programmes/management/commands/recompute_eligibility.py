import sys
import time

from django.core.management.base import BaseCommand, CommandError

from programmes.models import Programme
from programmes.services import recompute_run_create, recompute_run_execute
from registry.models import Location, LocationLevel


class Command(BaseCommand):
    help = "Re-assess every household (or one programme, or one district) against the current rules, with progress."

    def add_arguments(self, parser):
        parser.add_argument("--programme", help="Programme code, e.g. SCT. Default: every active programme.")
        parser.add_argument("--district", help="District code, e.g. SAM. Default: every district.")

    def handle(self, *args, programme=None, district=None, **options):
        chosen_programme = chosen_district = None
        if programme:
            chosen_programme = Programme.objects.filter(code=programme.upper()).first()
            if chosen_programme is None:
                known = ", ".join(Programme.objects.order_by("code").values_list("code", flat=True)) or "none yet"
                raise CommandError(f"No programme with code {programme!r}; known: {known}.")
        if district:
            chosen_district = Location.objects.filter(code=district.upper(), level=LocationLevel.DISTRICT).first()
            if chosen_district is None:
                raise CommandError(f"No district with code {district!r}.")
        run = recompute_run_create(
            programme=chosen_programme, district=chosen_district, reason="recompute_eligibility command"
        )
        started = time.monotonic()
        interactive = sys.stdout.isatty()

        def progress(done, total, each, district_id):
            width = 30
            filled = round(width * done / total) if total else width
            line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} steps  {each.code}  {time.monotonic() - started:.1f}s"
            self.stdout.write(("\r" + line) if interactive else line, ending="" if interactive else "\n")
            self.stdout.flush()

        run = recompute_run_execute(run_id=run.pk, progress=progress)
        if interactive:
            self.stdout.write("")
        self.stdout.write(
            f"{run.get_status_display()}: {run.households_assessed} assessments, {run.outcomes_changed} outcomes changed "
            f"in {time.monotonic() - started:.1f}s."
        )
