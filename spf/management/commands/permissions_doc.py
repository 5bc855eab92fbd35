"""Write docs/permissions.md from the role × endpoint table (`spf.permissions_table`)."""

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from spf.permissions_table import permissions_markdown


class Command(BaseCommand):
    help = "Write docs/permissions.md from spf/permissions_table.py (--check: fail if it is out of date)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--output", default=str(Path(settings.BASE_DIR) / "docs" / "permissions.md"), help="Where to write it."
        )
        parser.add_argument("--check", action="store_true", help="Write nothing; fail if the file differs.")

    def handle(self, *args, output: str, check: bool, **options):
        target = Path(output)
        text = permissions_markdown()
        if check:
            if not target.exists() or target.read_text() != text:
                raise CommandError(f"{target} is out of date: run python manage.py permissions_doc")
            self.stdout.write(f"{target} is up to date.")
            return
        target.write_text(text)
        self.stdout.write(f"Wrote {target}.")
