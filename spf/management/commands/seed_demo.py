import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from dashboard.summaries import summaries_refresh_district
from grievances.demo import demo_grievances_ensure
from payments.demo import demo_enrolments_from_referrals, demo_payments_ensure
from programmes.demo import demo_catalogue_ensure, demo_eligibility_compute
from referrals.demo import demo_referrals_ensure
from referrals.services import referrals_from_eligibility
from registry.countries import current_country
from registry.demo import CHUNK_SIZE, demo_locations_ensure, population_seed
from registry.models import Location, LocationLevel
from spf.demo import demo_logins, demo_programme_officers_ensure, demo_users_ensure, front_desk_by_district


class Command(BaseCommand):
    """The whole demo: the registry's population, the programmes' catalogue and every role's login.

    It lives in `spf`, the project package, because it spans the apps; each
    part is seeded by the app that owns it.
    """

    help = (
        "Seed a deterministic synthetic population over the demo districts, and the demo users. "
        "Running it again adds only households not yet seeded for that seed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--households", type=int, default=3000, help="Households wanted for this seed in total.")
        parser.add_argument("--seed", type=int, default=2026, help="The same seed gives the same population.")
        parser.add_argument(
            "--skip-eligibility", action="store_true", help="Do not assess the households against the demo programmes."
        )
        parser.add_argument("--chunk-size", type=int, default=CHUNK_SIZE, help="Households written per transaction.")

    def handle(self, *args, households: int, seed: int, chunk_size: int, skip_eligibility: bool = False, **options):
        if households < 0 or chunk_size < 1:
            raise CommandError("--households must be 0 or more and --chunk-size at least 1.")
        started = time.monotonic()
        last_shown = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - last_shown[0] >= 2:
                last_shown[0] = now
                rate = done / max(now - started, 1e-6)
                left = (total - done) / rate if rate else 0
                self.stdout.write(
                    f"  {done:,} / {total:,} households ({100 * done // max(total, 1)}%), "
                    f"{rate:,.0f}/s, about {left:,.0f} s left"
                )

        # Users first: the history records each district's front desk as having registered its households.
        demo_locations_ensure(current_country())
        users = demo_users_ensure(password=settings.DEMO_PASSWORD)
        report = population_seed(
            households=households,
            seed=seed,
            chunk_size=chunk_size,
            registered_by=front_desk_by_district(users),
            progress=progress,
        )
        if report.households_added:
            self.stdout.write(
                f"Seed {seed}: added {report.households_added:,} households and {report.members_added:,} people "
                f"in {time.monotonic() - started:,.1f} s ({report.already + report.households_added:,} in all)."
            )
        else:
            self.stdout.write(f"Seed {seed}: {report.already:,} households already seeded; nothing added.")
        ministry = next(user for user in users if user.sees_every_district)
        catalogue = demo_catalogue_ensure(country=current_country(), acting_user=ministry)
        users += demo_programme_officers_ensure(agencies=catalogue.agencies, password=settings.DEMO_PASSWORD)
        payments = None
        if catalogue.programmes and not skip_eligibility and (report.households_added or catalogue.created):
            assessed_from = time.monotonic()
            assessed = demo_eligibility_compute()
            self.stdout.write(
                f"Eligibility: {assessed:,} assessments for {len(catalogue.programmes)} programmes "
                f"in {time.monotonic() - assessed_from:,.1f} s."
            )
            # Before the referrals: a household the demo enrols is not also suggested for a referral.
            payments = demo_payments_ensure(password=settings.DEMO_PASSWORD)
            referred = referrals_from_eligibility()
            self.stdout.write(
                f"Referrals: {referred.created:,} made from eligibility ({referred.sent:,} sent, the rest suggested)."
            )
        if catalogue.programmes and not skip_eligibility:
            # Also on a database seeded before the payments part existed; adds nothing the second time.
            payments = payments or demo_payments_ensure(password=settings.DEMO_PASSWORD)
            self.stdout.write(payments.words())
            users += payments.users
            # The last months of the window's work, on every run (each adds nothing the second time).
            front_desks = front_desk_by_district(users)
            self.stdout.write(demo_referrals_ensure(seed=seed, front_desks=front_desks).words())
            enrolled = demo_enrolments_from_referrals(password=settings.DEMO_PASSWORD)
            if enrolled.enrolments:
                self.stdout.write(f"Enrolments: {enrolled.enrolments:,} from accepted referrals.")
            users += [user for user in enrolled.users if user not in users]
            self.stdout.write(demo_grievances_ensure(seed=seed, front_desks=front_desks).words())
            # The dashboard reads summaries a beat job keeps; the embedded demo has no beat: count them now.
            counted_from = time.monotonic()
            districts = list(
                Location.objects.filter(
                    level=LocationLevel.DISTRICT, code__in=current_country().demo_districts
                ).values_list("pk", flat=True)
            )
            for district_id in districts:
                summaries_refresh_district(district_id=district_id)
            self.stdout.write(
                f"Dashboard: summaries of {len(districts)} districts counted in {time.monotonic() - counted_from:,.1f} s."
            )
        self.stdout.write("\nDemo logins:")
        rows = [("username", "role", "districts", "password"), *demo_logins(users)]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        for row in rows:
            self.stdout.write("  " + "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)))
