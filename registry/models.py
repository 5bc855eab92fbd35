"""The single household registry: locations, households, members, extensible
attributes, change history and import jobs.

Writes go through `registry.services`; reads through `registry.selectors`.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone


class LocationLevel(models.TextChoices):
    PROVINCE = "province", "Province"
    DISTRICT = "district", "District"
    WARD = "ward", "Ward"
    VILLAGE = "village", "Village"


LEVEL_PARENT = {
    LocationLevel.PROVINCE: None,
    LocationLevel.DISTRICT: LocationLevel.PROVINCE,
    LocationLevel.WARD: LocationLevel.DISTRICT,
    LocationLevel.VILLAGE: LocationLevel.WARD,
}


class Location(models.Model):
    code = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=120)
    level = models.CharField(max_length=16, choices=LocationLevel.choices, db_index=True)
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="children")
    # The district a ward or village belongs to (itself for a district), kept so
    # that scoping a village-level row to a user's districts is one join, not four.
    district = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+", editable=False
    )

    class Meta:
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=Q(level="province", parent__isnull=True) | Q(parent__isnull=False),
                name="location_parent_required_below_province",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_level_display().lower()})"


class HouseholdStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    MOVED = "moved", "Moved away"
    DISSOLVED = "dissolved", "Dissolved"


class Household(models.Model):
    number = models.CharField(
        max_length=32, unique=True, help_text="Readable and unique in the country, e.g. SAM-000123."
    )
    district = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="district_households", editable=False)
    village = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="households")
    address = models.CharField("address description", max_length=255, blank=True)
    gps_latitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    gps_longitude = models.DecimalField(max_digits=9, decimal_places=6, null=True, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    phone_key = models.CharField(max_length=16, blank=True, db_index=True, editable=False)
    registration_date = models.DateField(default=timezone.localdate)
    status = models.CharField(max_length=16, choices=HouseholdStatus.choices, default=HouseholdStatus.ACTIVE)
    head = models.ForeignKey(
        "Member",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The member who heads it.",
    )
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["number"]
        indexes = [
            models.Index(fields=["district", "status"]),
            # A district's households in number order: the lists behind the dashboard's figures page by it.
            models.Index(fields=["district", "number"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(gps_latitude__isnull=True) | Q(gps_latitude__gte=-90, gps_latitude__lte=90),
                name="household_latitude_range",
            ),
            models.CheckConstraint(
                condition=Q(gps_longitude__isnull=True) | Q(gps_longitude__gte=-180, gps_longitude__lte=180),
                name="household_longitude_range",
            ),
        ]

    def __str__(self) -> str:
        return self.number


class HouseholdNumberSequence(models.Model):
    """The last number given in a district; locked row by row so two desks never give the same number."""

    district = models.OneToOneField(Location, on_delete=models.PROTECT, primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.district.code}: last number {self.last_number}"


class Sex(models.TextChoices):
    FEMALE = "F", "Female"
    MALE = "M", "Male"


class Relationship(models.TextChoices):
    HEAD = "head", "Head"
    SPOUSE = "spouse", "Spouse or partner"
    CHILD = "child", "Son or daughter"
    GRANDCHILD = "grandchild", "Grandchild"
    PARENT = "parent", "Parent"
    SIBLING = "sibling", "Brother or sister"
    OTHER_RELATIVE = "other_relative", "Other relative"
    NON_RELATIVE = "non_relative", "Not related"


class Difficulty(models.IntegerChoices):
    """The Washington Group short set's four degrees of difficulty."""

    NONE = 1, "No difficulty"
    SOME = 2, "Some difficulty"
    A_LOT = 3, "A lot of difficulty"
    CANNOT = 4, "Cannot do at all"


DISABILITY_DOMAINS = ("seeing", "hearing", "walking", "cognition", "self_care", "communication")


class SchoolAttendance(models.TextChoices):
    NOT_APPLICABLE = "", "Not asked"
    ATTENDING = "attending", "Attending school"
    NOT_ATTENDING = "not_attending", "Not attending"
    COMPLETED = "completed", "Completed school"
    NEVER = "never", "Never attended"


class WorkStatus(models.TextChoices):
    UNKNOWN = "", "Not asked"
    EMPLOYED = "employed", "In paid work"
    SELF_EMPLOYED = "self_employed", "Self-employed or farming"
    UNEMPLOYED = "unemployed", "Looking for work"
    INACTIVE = "inactive", "Not working, not looking"
    STUDENT = "student", "Student"
    RETIRED = "retired", "Retired"


class MemberStatus(models.TextChoices):
    PRESENT = "present", "Lives in the household"
    MOVED_OUT = "moved_out", "Moved out"
    DECEASED = "deceased", "Deceased"


class Member(models.Model):
    household = models.ForeignKey(Household, on_delete=models.PROTECT, related_name="members")
    first_name = models.CharField(max_length=80)
    middle_name = models.CharField(max_length=80, blank=True)
    last_name = models.CharField(max_length=80)
    other_names = models.CharField(
        max_length=255, blank=True, help_text="Other names or spellings the person is known by, separated by commas."
    )
    sex = models.CharField(max_length=1, choices=Sex.choices)
    date_of_birth = models.DateField(null=True, blank=True)
    date_of_birth_estimated = models.BooleanField(
        default=False, help_text="Only the year is known; the date is 1 July of that year."
    )
    relationship = models.CharField(max_length=32, choices=Relationship.choices, default=Relationship.OTHER_RELATIVE)
    national_id = models.CharField(max_length=32, null=True, blank=True)
    phone = models.CharField(max_length=32, blank=True)
    phone_key = models.CharField(max_length=16, blank=True, db_index=True, editable=False)
    disability_seeing = models.PositiveSmallIntegerField(choices=Difficulty.choices, null=True, blank=True)
    disability_hearing = models.PositiveSmallIntegerField(choices=Difficulty.choices, null=True, blank=True)
    disability_walking = models.PositiveSmallIntegerField(choices=Difficulty.choices, null=True, blank=True)
    disability_cognition = models.PositiveSmallIntegerField(choices=Difficulty.choices, null=True, blank=True)
    disability_self_care = models.PositiveSmallIntegerField(choices=Difficulty.choices, null=True, blank=True)
    disability_communication = models.PositiveSmallIntegerField(choices=Difficulty.choices, null=True, blank=True)
    chronic_illness = models.BooleanField(null=True, blank=True)
    school_attendance = models.CharField(max_length=16, choices=SchoolAttendance.choices, blank=True)
    work_status = models.CharField(max_length=16, choices=WorkStatus.choices, blank=True)
    status = models.CharField(max_length=16, choices=MemberStatus.choices, default=MemberStatus.PRESENT)
    status_date = models.DateField(null=True, blank=True, help_text="When the person died or moved out.")
    attributes = models.JSONField(default=dict, blank=True)
    # Search keys, rebuilt by the service on every write of a name.
    search_name = models.CharField(max_length=400, blank=True, editable=False)
    name_keys = models.CharField(max_length=400, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["household_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["national_id"], condition=Q(national_id__isnull=False), name="member_national_id_unique"
            ),
            models.CheckConstraint(condition=~Q(national_id=""), name="member_national_id_not_blank"),
            models.CheckConstraint(
                condition=Q(status="present", status_date__isnull=True) | ~Q(status="present"),
                name="member_status_date_only_when_gone",
            ),
        ]

    def __str__(self) -> str:
        return self.full_name

    @property
    def full_name(self) -> str:
        return " ".join(part for part in (self.first_name, self.middle_name, self.last_name) if part)

    def age_on(self, reference_date) -> int | None:
        if self.date_of_birth is None:
            return None
        dob = self.date_of_birth
        return reference_date.year - dob.year - ((reference_date.month, reference_date.day) < (dob.month, dob.day))

    @property
    def age(self) -> int | None:
        return self.age_on(timezone.localdate())

    def disability_degrees(self) -> dict[str, int | None]:
        return {domain: getattr(self, f"disability_{domain}") for domain in DISABILITY_DOMAINS}

    @property
    def has_disability(self) -> bool:
        """The Washington Group cut-off: a lot of difficulty, or cannot do, in at least one domain."""
        return any((degree or 0) >= Difficulty.A_LOT for degree in self.disability_degrees().values())


class AttributeEntity(models.TextChoices):
    HOUSEHOLD = "household", "Household"
    MEMBER = "member", "Member"


class AttributeType(models.TextChoices):
    TEXT = "text", "Text"
    INTEGER = "integer", "Whole number"
    DECIMAL = "decimal", "Decimal number"
    BOOLEAN = "boolean", "Yes or no"
    DATE = "date", "Date"
    CHOICE = "choice", "One of a list"


class AttributeDefinition(models.Model):
    """An extra household or member field defined by ministry staff, no migration needed."""

    entity = models.CharField(max_length=16, choices=AttributeEntity.choices)
    key = models.SlugField(
        max_length=64, help_text="The name used in forms, imports, the API and eligibility rules (letters, digits, _)."
    )
    label = models.CharField(max_length=120)
    type = models.CharField(max_length=16, choices=AttributeType.choices, default=AttributeType.TEXT)
    allowed_values = models.JSONField(default=list, blank=True, help_text="For 'one of a list': the allowed values.")
    required = models.BooleanField(default=False)
    help_text = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["entity", "key"]
        constraints = [models.UniqueConstraint(fields=["entity", "key"], name="attribute_key_unique_per_entity")]

    def __str__(self) -> str:
        return f"{self.get_entity_display()}: {self.label} ({self.key})"

    def clean(self) -> None:
        # The rules live in a service so the admin, an API or an import of
        # definitions refuse the same things with the same words.
        from .attribute_services import attribute_definition_validate

        attribute_definition_validate(definition=self)


class ChangeAction(models.TextChoices):
    CREATE = "create", "Created"
    UPDATE = "update", "Edited"
    DELETE = "delete", "Deleted"
    IMPORT = "import", "Imported"
    BIRTH = "birth", "Birth"
    DEATH = "death", "Death"
    MOVE_OUT = "move_out", "Member moved out"
    MOVE_IN = "move_in", "Member moved in"
    HOUSEHOLD_MOVE = "household_move", "Household moved"
    HEAD_CHANGE = "head_change", "Head changed"


class ChangeEntry(models.Model):
    """Who changed what, when, with the old and new values: the household's history."""

    household = models.ForeignKey(Household, on_delete=models.CASCADE, related_name="history")
    member = models.ForeignKey(Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="history")
    entity = models.CharField(max_length=16, choices=AttributeEntity.choices)
    entity_id = models.BigIntegerField()
    action = models.CharField(max_length=32, choices=ChangeAction.choices)
    changes = models.JSONField(default=dict, help_text="field: [old, new]")
    note = models.CharField(max_length=255, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    import_job = models.ForeignKey("ImportJob", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["household", "-at"])]
        verbose_name_plural = "change entries"

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.entity} {self.entity_id} by {self.actor} at {self.at:%Y-%m-%d %H:%M}"


class ImportStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    VALIDATING = "validating", "Checking rows"
    APPLYING = "applying", "Writing"
    DONE = "done", "Done"
    REJECTED = "rejected", "Rejected: nothing written"
    FAILED = "failed", "Failed: nothing written"


class ImportMode(models.TextChoices):
    ALL_OR_NOTHING = "all_or_nothing", "Write nothing if any row is bad"
    GOOD_ROWS = "good_rows", "Write the good rows, report the bad"


class ImportJob(models.Model):
    uploaded_file = models.FileField(upload_to="imports/%Y/%m/")
    original_name = models.CharField(max_length=255)
    mode = models.CharField(max_length=16, choices=ImportMode.choices, default=ImportMode.ALL_OR_NOTHING)
    status = models.CharField(max_length=16, choices=ImportStatus.choices, default=ImportStatus.PENDING)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    households_created = models.PositiveIntegerField(default=0)
    members_created = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    duplicate_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True, help_text="[{row, field, problem}]")
    duplicates = models.JSONField(default=list, blank=True, help_text="[{row, member, score, reasons}]")
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Import {self.pk} of {self.original_name} ({self.get_status_display()})"

    @property
    def progress_percent(self) -> int:
        if not self.total_rows:
            return 100 if self.status in (ImportStatus.DONE, ImportStatus.REJECTED, ImportStatus.FAILED) else 0
        return min(100, round(100 * self.processed_rows / self.total_rows))
