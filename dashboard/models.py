"""The district committee dashboard's summaries: figures counted ahead by a
Celery job (`dashboard.summaries`) so the page reads a few thousand rows, not
a million households.

Nothing here is a record of its own: every row is derived from the registry,
eligibility, referrals, enrolments, payments and grievances, and the job
rebuilds a district's rows whole. `DistrictRefresh` says how fresh they are.
"""

from django.db import models


class Subject(models.TextChoices):
    """What a summary row counts. Snapshots are stocks kept month by month (the last refresh of a
    month stands for it); the others are flows, counted by the month they happened in."""

    HOUSEHOLDS = "households", "Registered households (snapshot)"
    REGISTRATIONS = "registrations", "Households registered in the month"
    COVERAGE = "coverage", "Eligibility and enrolment (snapshot)"
    REFERRALS = "referrals", "Referrals, by the month sent"
    ACCEPTANCES = "acceptances", "Referrals accepted in the month"
    PAYMENTS = "payments", "Payments, by the month of their cycle"
    GRIEVANCES = "grievances", "Grievances received in the month"
    RESOLUTIONS = "resolutions", "Grievances resolved in the month"


SNAPSHOT_SUBJECTS = (Subject.HOUSEHOLDS, Subject.COVERAGE)


class Group(models.TextChoices):
    """The groups of people a figure can be split by.

    A household is in every group it has a present member of (a mother and her
    baby put it in "women and girls" and "aged 0–4"), so groups overlap and do
    not add up to the whole: the whole is the row with no group.
    """

    ALL = "", "All households"
    FEMALE = "sex:F", "Women and girls"
    MALE = "sex:M", "Men and boys"
    AGE_0_4 = "age:0-4", "Aged 0–4"
    AGE_5_17 = "age:5-17", "Aged 5–17"
    AGE_18_59 = "age:18-59", "Aged 18–59"
    AGE_60_PLUS = "age:60+", "Aged 60 and over"
    DISABILITY = "disability", "Persons with disabilities"


# Each group and the household profile's count of its people.
GROUP_PEOPLE_FIELDS = {
    Group.FEMALE: "people_female",
    Group.MALE: "people_male",
    Group.AGE_0_4: "people_age_0_4",
    Group.AGE_5_17: "people_age_5_17",
    Group.AGE_18_59: "people_age_18_59",
    Group.AGE_60_PLUS: "people_age_60_plus",
    Group.DISABILITY: "people_disability",
}


class HouseholdProfile(models.Model):
    """One household as the dashboard splits it, on the day of the last refresh.

    Rebuilt district by district by the refresh job in one set-based statement;
    the ages are counted from dates of birth at the refresh's reference date.
    """

    household = models.OneToOneField(
        "registry.Household",
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="dashboard_profile",
    )
    district = models.ForeignKey(
        "registry.Location", on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    ward = models.ForeignKey(
        "registry.Location", null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    active = models.BooleanField()
    female_headed = models.BooleanField()
    registration_date = models.DateField()
    people = models.PositiveIntegerField(default=0)
    people_female = models.PositiveIntegerField(default=0)
    people_male = models.PositiveIntegerField(default=0)
    people_age_0_4 = models.PositiveIntegerField(default=0)
    people_age_5_17 = models.PositiveIntegerField(default=0)
    people_age_18_59 = models.PositiveIntegerField(default=0)
    people_age_60_plus = models.PositiveIntegerField(default=0)
    people_disability = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["district", "active"])]

    def __str__(self) -> str:
        return f"profile of household {self.household_id}"


class Tally(models.Model):
    """One cell of a district's figures: how many of `subject` fall in this ward, kind of household,
    programme, agency, state, category, month and number of days, and in which group of people."""

    district = models.ForeignKey("registry.Location", on_delete=models.CASCADE, related_name="+")
    subject = models.CharField(max_length=16, choices=Subject.choices)
    # Each cell is kept twice: by ward (and for the whole, by female-headed or not), and added up for
    # the whole district. The page reads the district's rows unless it filters or splits by ward or
    # kind of household: a twelfth of the rows for the usual page, a seventh split by a group.
    whole_district = models.BooleanField(default=False)
    group = models.CharField(max_length=16, choices=Group.choices, blank=True)
    # Snapshots: the month of the refresh; flows: the month the thing happened.
    month = models.DateField(null=True)
    ward = models.ForeignKey("registry.Location", null=True, on_delete=models.CASCADE, related_name="+")
    female_headed = models.BooleanField(default=False)
    programme = models.ForeignKey("programmes.Programme", null=True, on_delete=models.CASCADE, related_name="+")
    agency = models.ForeignKey("programmes.Agency", null=True, on_delete=models.CASCADE, related_name="+")
    state = models.CharField(max_length=24, blank=True)
    category = models.CharField(max_length=32, blank=True)
    # Days to acceptance, to payment or to resolution: the medians are read from these histograms.
    days = models.IntegerField(null=True)
    count = models.PositiveIntegerField(default=0)
    people = models.PositiveIntegerField(default=0)
    overdue = models.PositiveIntegerField(default=0)
    timely = models.PositiveIntegerField(default=0)
    amount = models.DecimalField(max_digits=16, decimal_places=2, null=True)
    paid_amount = models.DecimalField(max_digits=16, decimal_places=2, null=True)

    class Meta:
        verbose_name_plural = "tallies"
        indexes = [models.Index(fields=["district", "subject", "whole_district", "group", "month"])]

    def __str__(self) -> str:
        return f"{self.subject} {self.state} {self.month}: {self.count}"


class DistrictRefresh(models.Model):
    """When a district's summaries were last rebuilt: what the page says about freshness.

    Its row is locked while a refresh runs, so two workers never rebuild the same district at once.
    """

    district = models.OneToOneField("registry.Location", primary_key=True, on_delete=models.CASCADE, related_name="+")
    refreshed_at = models.DateTimeField(null=True, blank=True)
    requested_at = models.DateTimeField(
        null=True, blank=True, help_text="When a page asked for a first refresh (a district never refreshed)."
    )
    reference_date = models.DateField(null=True, blank=True, help_text="The day ages and overdue were counted at.")
    seconds = models.FloatField(null=True, blank=True, help_text="How long the last refresh took.")
    households = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.district_id}: {self.refreshed_at:%Y-%m-%d %H:%M}" if self.refreshed_at else f"{self.district_id}"
