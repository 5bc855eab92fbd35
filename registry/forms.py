"""The front desk's forms: what an officer types, checked for shape only.

The rules (which village, which ID, who may head a household) live in
`registry.services`; a service's ValidationError comes back here through
`show_service_errors`, which puts each message beside the field it names.
"""

import datetime
import uuid
from itertools import groupby

from django import forms
from django.core.exceptions import ValidationError

from .attributes import active_definitions
from .countries import current_country
from .models import (
    AttributeEntity,
    AttributeType,
    Difficulty,
    HouseholdStatus,
    Location,
    Member,
    Relationship,
    SchoolAttendance,
    Sex,
    WorkStatus,
)

ATTRIBUTE_PREFIX = "attr_"
# Without JavaScript the officer still registers a household of this many
# people in one go; with it, "Add a member" adds more.
EXTRA_MEMBER_FORMS = 2

YES_NO_UNKNOWN = [("", "Not known"), ("yes", "Yes"), ("no", "No")]


class DateInput(forms.DateInput):
    """The browser's date picker; it reads and writes ISO dates whatever the page's locale."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class SearchForm(forms.Form):
    q = forms.CharField(
        label="Household number, ID, phone or name",
        required=False,
        max_length=120,
        widget=forms.TextInput(
            attrs={"type": "search", "autofocus": True, "autocomplete": "off", "spellcheck": "false"}
        ),
    )


class VillageChoiceField(forms.ModelChoiceField):
    """Villages grouped by ward (and district, when the user sees several), as <optgroup>s."""

    def _get_choices(self):
        villages = list(self.queryset)
        several_districts = len({village.district_id for village in villages}) > 1
        choices = [("", self.empty_label or "")]
        for ward, group in groupby(villages, key=lambda village: village.parent):
            group = list(group)
            label = f"{ward.name} ward" + (f" · {group[0].district.name}" if several_districts else "")
            choices.append((label, [(village.pk, village.name) for village in group]))
        return choices

    choices = property(_get_choices, forms.ChoiceField.choices.fset)


def attribute_field(definition) -> forms.Field:
    """A form field for one extensible attribute; the service does the final check."""
    common = {"label": definition.label, "required": definition.required, "help_text": definition.help_text}
    kind = definition.type
    if kind == AttributeType.INTEGER:
        return forms.IntegerField(**common)
    if kind == AttributeType.DECIMAL:
        return forms.DecimalField(**common)
    if kind == AttributeType.BOOLEAN:
        return forms.ChoiceField(choices=YES_NO_UNKNOWN, **common)
    if kind == AttributeType.DATE:
        return forms.DateField(widget=DateInput(), **common)
    if kind == AttributeType.CHOICE:
        choices = [("", "—")] + [(str(value), str(value)) for value in definition.allowed_values]
        return forms.ChoiceField(choices=choices, **common)
    return forms.CharField(max_length=255, **common)


def attribute_initial(definition, value):
    if definition.type == AttributeType.BOOLEAN and isinstance(value, bool):
        return "yes" if value else "no"
    return value


class AttributesMixin:
    """Adds one field per active attribute definition of `attribute_entity`, named attr_<key>."""

    attribute_entity: str

    def add_attribute_fields(self, definitions=None, existing: dict | None = None):
        self.attribute_definitions = (
            definitions if definitions is not None else active_definitions(self.attribute_entity)
        )
        for key, definition in self.attribute_definitions.items():
            self.fields[ATTRIBUTE_PREFIX + key] = attribute_field(definition)
            if existing and key in existing:
                self.initial[ATTRIBUTE_PREFIX + key] = attribute_initial(definition, existing[key])

    def attribute_fields(self):
        return [self[ATTRIBUTE_PREFIX + key] for key in self.attribute_definitions]

    def attribute_values(self) -> dict:
        values = {}
        for key in self.attribute_definitions:
            value = self.cleaned_data.get(ATTRIBUTE_PREFIX + key)
            values[key] = None if value in ("", None) else value
        return values

    def field_for_error(self, key: str) -> str | None:
        """The form field a service error key names, or None for a form-wide message."""
        if key.startswith("attributes."):
            key = ATTRIBUTE_PREFIX + key.removeprefix("attributes.")
        return key if key in self.fields else None


class HouseholdForm(AttributesMixin, forms.Form):
    attribute_entity = AttributeEntity.HOUSEHOLD

    village = VillageChoiceField(queryset=Location.objects.none(), empty_label="Choose the village")
    address = forms.CharField(
        label="Address or directions",
        max_length=255,
        required=False,
        help_text="How to find the house: near the school, plot number…",
    )
    phone = forms.CharField(label="Household phone", max_length=32, required=False)
    gps_latitude = forms.DecimalField(
        label="GPS latitude", required=False, max_digits=9, decimal_places=6, min_value=-90, max_value=90
    )
    gps_longitude = forms.DecimalField(
        label="GPS longitude", required=False, max_digits=9, decimal_places=6, min_value=-180, max_value=180
    )
    duplicates_confirmed = forms.BooleanField(
        label="None of these is the same person — register anyway", required=False
    )
    # The page's one-time token: the same form sent twice (a double click, the browser sending it
    # again after a slow answer or a "try again" page) registers the household once.
    submission_token = forms.UUIDField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, villages, attribute_definitions=None, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("submission_token", uuid.uuid4())
        self.fields["village"].queryset = villages
        self.fields["phone"].help_text = f"For example {current_country().phone_example}"
        self.fields["phone"].widget.attrs.update(type="tel", autocomplete="off")
        for name in ("gps_latitude", "gps_longitude"):
            self.fields[name].widget.attrs.update(inputmode="decimal", step="any")
        self.add_attribute_fields(attribute_definitions)

    def service_arguments(self) -> dict:
        data = self.cleaned_data
        return {
            "village": data["village"],
            "address": data["address"],
            "phone": data["phone"],
            "gps_latitude": data["gps_latitude"],
            "gps_longitude": data["gps_longitude"],
            "attributes": self.attribute_values(),
            "duplicates_confirmed": data["duplicates_confirmed"],
            "submission_token": data["submission_token"],
        }


class HouseholdEditForm(AttributesMixin, forms.Form):
    """A household's own fields; its village changes through the 'household moved' event."""

    attribute_entity = AttributeEntity.HOUSEHOLD

    address = HouseholdForm.base_fields["address"]
    phone = HouseholdForm.base_fields["phone"]
    gps_latitude = HouseholdForm.base_fields["gps_latitude"]
    gps_longitude = HouseholdForm.base_fields["gps_longitude"]
    registration_date = forms.DateField(widget=DateInput())
    note = forms.CharField(label="Why (optional)", max_length=255, required=False)

    def __init__(self, *args, household, **kwargs):
        initial = {
            "address": household.address,
            "phone": household.phone,
            "gps_latitude": household.gps_latitude,
            "gps_longitude": household.gps_longitude,
            "registration_date": household.registration_date,
        }
        super().__init__(*args, initial=initial, **kwargs)
        self.fields["phone"].widget.attrs.update(type="tel")
        self.fields["phone"].help_text = f"For example {current_country().phone_example}"
        self.add_attribute_fields(existing=household.attributes)

    def changed_values(self) -> dict:
        names = ("address", "phone", "gps_latitude", "gps_longitude", "registration_date")
        return {name: self.cleaned_data[name] for name in names}


def _with_blank(choices, blank="Choose…"):
    return [("", blank), *[(value, label) for value, label in choices if value != ""]]


DIFFICULTY_CHOICES = [("", "Not asked"), *Difficulty.choices]
DISABILITY_LABELS = {
    "seeing": "Difficulty seeing, even with glasses",
    "hearing": "Difficulty hearing, even with a hearing aid",
    "walking": "Difficulty walking or climbing steps",
    "cognition": "Difficulty remembering or concentrating",
    "self_care": "Difficulty washing all over or dressing",
    "communication": "Difficulty communicating in the usual language",
}


class MemberForm(AttributesMixin, forms.Form):
    """One person. A date of birth, or only the year when the date is not known."""

    attribute_entity = AttributeEntity.MEMBER

    first_name = forms.CharField(max_length=80)
    middle_name = forms.CharField(max_length=80, required=False)
    last_name = forms.CharField(label="Surname", max_length=80)
    other_names = forms.CharField(
        label="Other names or spellings",
        max_length=255,
        required=False,
        help_text="Names the person is also known by, separated by commas.",
    )
    sex = forms.ChoiceField(choices=_with_blank(Sex.choices))
    date_of_birth = forms.DateField(required=False, widget=DateInput())
    birth_year = forms.IntegerField(
        label="…or year of birth, if the date is not known",
        required=False,
        min_value=1890,
        max_value=2100,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    relationship = forms.ChoiceField(label="Relationship to the head", choices=_with_blank(Relationship.choices))
    national_id = forms.CharField(max_length=32, required=False)
    phone = forms.CharField(max_length=32, required=False, widget=forms.TextInput(attrs={"type": "tel"}))
    disability_seeing = forms.TypedChoiceField(choices=DIFFICULTY_CHOICES, coerce=int, empty_value=None, required=False)
    disability_hearing = forms.TypedChoiceField(
        choices=DIFFICULTY_CHOICES, coerce=int, empty_value=None, required=False
    )
    disability_walking = forms.TypedChoiceField(
        choices=DIFFICULTY_CHOICES, coerce=int, empty_value=None, required=False
    )
    disability_cognition = forms.TypedChoiceField(
        choices=DIFFICULTY_CHOICES, coerce=int, empty_value=None, required=False
    )
    disability_self_care = forms.TypedChoiceField(
        choices=DIFFICULTY_CHOICES, coerce=int, empty_value=None, required=False
    )
    disability_communication = forms.TypedChoiceField(
        choices=DIFFICULTY_CHOICES, coerce=int, empty_value=None, required=False
    )
    chronic_illness = forms.NullBooleanField(
        label="Long-term illness",
        required=False,
        widget=forms.Select(choices=[("unknown", "Not known"), ("true", "Yes"), ("false", "No")]),
    )
    school_attendance = forms.ChoiceField(choices=SchoolAttendance.choices, required=False)
    work_status = forms.ChoiceField(label="Work", choices=WorkStatus.choices, required=False)

    SERVICE_FIELDS = (
        "first_name",
        "middle_name",
        "last_name",
        "other_names",
        "sex",
        "relationship",
        "national_id",
        "phone",
        "disability_seeing",
        "disability_hearing",
        "disability_walking",
        "disability_cognition",
        "disability_self_care",
        "disability_communication",
        "chronic_illness",
        "school_attendance",
        "work_status",
    )

    def __init__(self, *args, member: Member | None = None, attribute_definitions=None, relationships=None, **kwargs):
        if member is not None:
            kwargs["initial"] = {**member_initial(member), **kwargs.get("initial", {})}
        super().__init__(*args, **kwargs)
        country = current_country()
        self.fields["national_id"].label = country.national_id_label
        self.fields["national_id"].help_text = f"For example {country.national_id_example}"
        self.fields["national_id"].widget.attrs.update(autocomplete="off", spellcheck="false")
        self.fields["phone"].help_text = f"For example {country.phone_example}"
        for domain, label in DISABILITY_LABELS.items():
            self.fields[f"disability_{domain}"].label = label
        if relationships is not None:
            self.fields["relationship"].choices = _with_blank(relationships)
        for name in ("first_name", "middle_name", "last_name", "other_names"):
            self.fields[name].widget.attrs.update(autocomplete="off", spellcheck="false")
        self.add_attribute_fields(attribute_definitions, existing=member.attributes if member else None)

    def clean(self):
        data = super().clean()
        if not data.get("date_of_birth") and data.get("birth_year"):
            # The registry's convention for an estimated date: 1 July of the year.
            data["date_of_birth"] = datetime.date(data["birth_year"], 7, 1)
            data["date_of_birth_estimated"] = True
        else:
            data["date_of_birth_estimated"] = False
        return data

    def field_for_error(self, key: str) -> str | None:
        if key == "date_of_birth_estimated":
            key = "birth_year"
        return super().field_for_error(key)

    def member_values(self) -> dict:
        values = {name: self.cleaned_data.get(name) for name in self.SERVICE_FIELDS}
        for name in ("school_attendance", "work_status"):
            values[name] = values[name] or ""
        values["national_id"] = values["national_id"] or None
        values["date_of_birth"] = self.cleaned_data.get("date_of_birth")
        values["date_of_birth_estimated"] = self.cleaned_data.get("date_of_birth_estimated", False)
        return values

    def disability_fields(self):
        return [self[f"disability_{domain}"] for domain in DISABILITY_LABELS]


def member_initial(member: Member) -> dict:
    initial = {name: getattr(member, name) for name in MemberForm.SERVICE_FIELDS}
    if member.date_of_birth_estimated and member.date_of_birth:
        initial["birth_year"] = member.date_of_birth.year
    else:
        initial["date_of_birth"] = member.date_of_birth
    return initial


class BaseMemberFormSet(forms.BaseFormSet):
    def __init__(self, *args, attribute_definitions=None, **kwargs):
        self.attribute_definitions = attribute_definitions
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return {"attribute_definitions": self.attribute_definitions}

    @property
    def empty_form(self):
        form = self.form(
            auto_id=self.auto_id,
            prefix=self.add_prefix("__prefix__"),
            empty_permitted=True,
            use_required_attribute=False,
            attribute_definitions=self.attribute_definitions,
            renderer=self.renderer,
        )
        self.add_fields(form, None)
        return form

    def filled_forms(self) -> list[MemberForm]:
        """The forms the officer filled in, in order: the i-th is the service's `members.<i>`."""
        return [form for form in self.forms if form.has_changed()]

    def clean(self):
        if any(self.errors):
            return
        if not self.filled_forms():
            raise ValidationError("Add at least one member.")


MemberFormSet = forms.formset_factory(MemberForm, formset=BaseMemberFormSet, extra=EXTRA_MEMBER_FORMS, min_num=1)


def show_service_errors(problem: ValidationError, form: forms.Form, *, members: list | None = None, formset=None):
    """Put each message of a service's ValidationError beside the field it names.

    Keys are `field`, `attributes.<key>`, and for registration
    `members.<i>.<field>` / `members.<i>.attributes.<key>` where i counts the
    filled member forms.
    """
    messages = problem.message_dict if hasattr(problem, "error_dict") else {"__all__": problem.messages}
    for key, texts in messages.items():
        target, field = form, None
        if key.startswith("members."):
            index_text, _, rest = key.removeprefix("members.").partition(".")
            if members is not None and index_text.isdigit() and int(index_text) < len(members):
                target = members[int(index_text)]
                field = target.field_for_error(rest)
        elif key == "members" and formset is not None:
            formset._non_form_errors = formset.error_class(texts, error_class="nonform")
            continue
        else:
            field = (
                form.field_for_error(key) if hasattr(form, "field_for_error") else (key if key in form.fields else None)
            )
        for text in texts:
            target.add_error(field, text)


# --- life events -----------------------------------------------------------------


class EventDateForm(forms.Form):
    on = forms.DateField(label="Date", widget=DateInput())
    note = forms.CharField(label="Note (optional)", max_length=255, required=False)

    def __init__(self, *args, date_label: str = "Date", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["on"].label = date_label

    def field_for_error(self, key: str) -> str | None:
        return "on" if key == "status_date" else None


class HouseholdMoveForm(forms.Form):
    village = VillageChoiceField(
        queryset=Location.objects.none(), label="New village", empty_label="Choose the village"
    )
    address = HouseholdForm.base_fields["address"]
    gps_latitude = HouseholdForm.base_fields["gps_latitude"]
    gps_longitude = HouseholdForm.base_fields["gps_longitude"]
    note = forms.CharField(label="Note (optional)", max_length=255, required=False)

    def __init__(self, *args, villages, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["village"].queryset = villages


class HeadChangeForm(forms.Form):
    new_head = forms.TypedChoiceField(label="New head", coerce=int)
    note = forms.CharField(label="Why (optional)", max_length=255, required=False)

    def __init__(self, *args, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_head"].choices = _with_blank((m.pk, m.full_name) for m in candidates)

    def field_for_error(self, key: str) -> str | None:
        return "new_head" if key == "head" else None


class HouseholdStatusForm(forms.Form):
    status = forms.ChoiceField(
        label="The household has",
        choices=[
            (HouseholdStatus.ACTIVE, "Active: still lives here"),
            (HouseholdStatus.MOVED, "Moved away"),
            (HouseholdStatus.DISSOLVED, "Dissolved: no longer exists as a household"),
        ],
    )
    note = forms.CharField(label="Why", max_length=255, required=False)


class MoveInLookupForm(forms.Form):
    from_number = forms.CharField(
        label="Number of the household the person lives in now",
        max_length=32,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class MoveInForm(forms.Form):
    member = forms.TypedChoiceField(label="Person moving in", coerce=int, widget=forms.RadioSelect)
    relationship = forms.ChoiceField(
        label="Relationship to the head of this household",
        choices=_with_blank([c for c in Relationship.choices if c[0] != Relationship.HEAD]),
    )
    note = forms.CharField(label="Note (optional)", max_length=255, required=False)

    def __init__(self, *args, candidates, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["member"].choices = [(m.pk, m.full_name) for m in candidates]

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None
