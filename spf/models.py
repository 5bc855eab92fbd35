"""Users and their roles; the districts each user may see."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    FRONT_DESK = "front_desk", "Front-desk officer"
    PROGRAMME_OFFICER = "programme_officer", "Programme officer"
    COMMITTEE = "committee", "District committee member"
    MINISTRY = "ministry", "Ministry staff"


class User(AbstractUser):
    role = models.CharField(max_length=32, choices=Role.choices, default=Role.FRONT_DESK)
    districts = models.ManyToManyField(
        "registry.Location",
        blank=True,
        related_name="assigned_users",
        limit_choices_to={"level": "district"},
        help_text="The districts whose households this user may see. Ministry staff see every district.",
    )
    agency = models.ForeignKey(
        "programmes.Agency",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="officers",
        help_text="For programme officers: the agency whose referrals and programmes they work on.",
    )

    class Meta:
        ordering = ["username"]

    @property
    def sees_every_district(self) -> bool:
        return self.is_superuser or self.role == Role.MINISTRY

    @property
    def can_edit_registry(self) -> bool:
        return self.is_superuser or self.role in (Role.FRONT_DESK, Role.MINISTRY)
