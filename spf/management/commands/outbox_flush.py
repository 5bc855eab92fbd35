from django.core.management.base import BaseCommand, CommandError

from spf.outbox import OUTBOX_FLUSH_LIMIT, outbox_backlog, outbox_flush


class Command(BaseCommand):
    """The outbox sweep by hand, for an operator after Redis comes back (docs/operations.md)."""

    help = "Publish the background jobs waiting in the outbox (queued while the broker was down)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--limit", type=int, default=OUTBOX_FLUSH_LIMIT, help="At most this many jobs (oldest first)."
        )

    def handle(self, *args, limit: int, **options):
        if limit < 1:
            raise CommandError("--limit must be at least 1.")
        report = outbox_flush(limit=limit)
        backlog = outbox_backlog()
        waiting = f"{backlog['pending']:,} still waiting (the oldest for {backlog['oldest_seconds']:,} s)"
        self.stdout.write(
            f"{report.sent:,} job{'' if report.sent == 1 else 's'} published, "
            + (waiting if backlog["pending"] else "none still waiting")
            + (f"; {report.purged:,} sent more than a week ago deleted" if report.purged else "")
            + "."
        )
        if report.error:
            raise CommandError(f"The broker did not take them: {report.error}")
