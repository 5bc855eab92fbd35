"""Forms of the grievance pages: record a grievance, each move of its lifecycle,
an attachment, the worklist's filters and the lookup by reference. They check
shapes; the rules are in `grievances.services`, whose errors are put back
beside these fields."""

import uuid

from django import forms
from django.core.exceptions import ValidationError

from payments.models import Payment
from programmes.models import Agency, Programme
from registry.forms import DIFFICULTY_CHOICES, DISABILITY_LABELS, DateInput, attribute_field
from registry.models import DISABILITY_DOMAINS, Location, Member
from spf.models import User

from .models import (
    EscalationLevel,
    GrievanceCategory,
    GrievanceChannel,
    GrievancePriority,
    GrievanceStatus,
    grievance_id_from_number,
)

ATTRIBUTE_PREFIX = "attr_"


def page_key() -> str:
    """A key of the page's own: a double click, or a resubmit after a slow answer, does the step once."""
    return f"page-{uuid.uuid4().hex}"


class IdempotentForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=100)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", page_key())

    def field_for_error(self, key: str) -> str | None:
        """The form field a service error key names, or None for a message on top."""
        if key.startswith("attributes."):
            key = ATTRIBUTE_PREFIX + key.removeprefix("attributes.")
        return key if key in self.fields else None


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, member: Member) -> str:
        return f"{member.full_name} ({member.get_relationship_display().lower()})"


class ProgrammeChoiceField(forms.ModelChoiceField):
    def __init__(self, *args, outcomes: dict[int, str] | None = None, **kwargs):
        self.outcomes = outcomes or {}
        super().__init__(*args, **kwargs)

    def label_from_instance(self, programme: Programme) -> str:
        outcome = self.outcomes.get(programme.pk)
        return f"{programme.name} ({outcome})" if outcome else programme.name


class PaymentChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, payment: Payment) -> str:
        paid = f", paid {payment.paid_at:%-d %b %Y}" if payment.paid_at else ""
        return (
            f"{payment.reference} · {payment.programme.code} {payment.cycle.label} · "
            f"{payment.currency} {payment.amount:,.2f} · {payment.get_status_display().lower()}{paid}"
        )


class DistrictChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, district: Location) -> str:
        return district.name


SENSITIVE_HELP = (
    "Tick for abuse, sexual exploitation, corruption, a bribe asked for, or a complaint against a named officer: "
    "only designated grievance officers will see it, never the whole district (you keep seeing it because you "
    "recorded it). Fraud and corruption are always sensitive."
)


class GrievanceForm(IdempotentForm):
    """A grievance, about a household (its page) or raised without one (the window's district)."""

    complainant = MemberChoiceField(
        queryset=Member.objects.none(),
        required=False,
        empty_label="Someone else (name below)",
        label="Household member",
        help_text="A member of the household, or someone else: then write their name and a contact.",
    )
    district = DistrictChoiceField(
        queryset=Location.objects.none(),
        required=False,
        empty_label="Choose…",
        label="District where it is handled",
        help_text="The window's district, where no registered household is concerned.",
    )
    complainant_name = forms.CharField(max_length=160, required=False, label="Name of the person")
    complainant_contact = forms.CharField(
        max_length=120, required=False, label="Contact", help_text="Phone, address, or how to reach them."
    )
    anonymous = forms.BooleanField(
        required=False,
        label="Anonymous: the person does not give a name",
        help_text="A contact is optional then; the reference on the slip is the only way to follow it up.",
    )
    category = forms.ChoiceField(
        choices=[("", "Choose…"), *GrievanceCategory.choices],
        error_messages={"required": "Choose the category: it sets the deadline and who handles it."},
    )
    programme = ProgrammeChoiceField(
        queryset=Programme.objects.none(),
        to_field_name="code",
        required=False,
        empty_label="No programme in particular",
        label="Programme concerned",
        help_text="For an eligibility appeal: the programme whose decision is appealed.",
    )
    payment = PaymentChoiceField(
        queryset=Payment.objects.none(),
        to_field_name="reference",
        required=False,
        empty_label="No payment in particular",
        label="Payment concerned",
    )
    payment_not_received = forms.BooleanField(
        required=False,
        label="The household says this payment never arrived",
        help_text="A payment marked paid is then raised with the provider at the next reconciliation.",
    )
    channel = forms.ChoiceField(choices=GrievanceChannel.choices, initial=GrievanceChannel.WALK_IN, label="Received by")
    sensitive = forms.BooleanField(required=False, label="Sensitive", help_text=SENSITIVE_HELP)
    priority = forms.ChoiceField(choices=GrievancePriority.choices, initial=GrievancePriority.NORMAL)
    description = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        error_messages={"required": "Write what the person says happened."},
        label="What the person says happened",
        help_text="In their words: what, when, where, who. It is personal data: only what is needed.",
    )
    attachment = forms.FileField(
        required=False,
        label="Attach a document",
        help_text="Optional: a PDF, JPG or PNG scan (a letter, a receipt, a photo), at most 5 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png"}),
    )
    attachment_description = forms.CharField(required=False, max_length=200, label="What the document is")

    def __init__(self, *args, household=None, members=None, districts=None, programmes, payments=None, **kwargs):
        outcomes = kwargs.pop("outcomes", None)
        super().__init__(*args, **kwargs)
        self.household = household
        self.fields["programme"].queryset = programmes
        self.fields["programme"].outcomes = outcomes or {}
        if household is not None:
            self.fields["complainant"].queryset = members
            self.fields["payment"].queryset = payments
            del self.fields["district"]
        else:
            del self.fields["complainant"]
            del self.fields["payment"]
            del self.fields["payment_not_received"]
            self.fields["district"].queryset = districts
            first_two = list(districts[:2])
            if len(first_two) == 1:
                self.fields["district"].initial = first_two[0].pk
        self.fields["category"].error_messages["invalid_choice"] = "Choose a category from the list."

    def clean(self):
        data = super().clean()
        if self.household is not None and data.get("payment_not_received") and not data.get("payment"):
            self.add_error("payment", "Choose the payment that did not arrive.")
        return data


class AcknowledgeForm(IdempotentForm):
    note = forms.CharField(required=False, max_length=500, label="Note (optional)")


class OfficerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, user: User) -> str:
        name = user.get_full_name() or user.username
        agency = f", {user.agency.code}" if user.agency_id else ""
        return f"{name} ({user.get_role_display().lower()}{agency})"


class AssignForm(IdempotentForm):
    assigned_to = OfficerChoiceField(
        queryset=User.objects.none(), required=False, empty_label="No officer", label="Assign to an officer"
    )
    assigned_agency = forms.ModelChoiceField(
        queryset=Agency.objects.none(),
        required=False,
        empty_label="No agency",
        label="…or to an agency",
        help_text="The agency's officers then see it in their list.",
    )
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, label="What to look into")

    def __init__(self, *args, officers, agencies, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assigned_to"].queryset = officers
        if agencies is None:
            # A sensitive grievance stays with designated officers.
            del self.fields["assigned_agency"]
        else:
            self.fields["assigned_agency"].queryset = agencies


class FindingsForm(IdempotentForm):
    findings = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="What the investigation found",
        help_text="Who was spoken to, what was checked, what is true.",
    )


class EscalateForm(IdempotentForm):
    escalated_to = forms.ChoiceField(
        choices=EscalationLevel.choices, widget=forms.RadioSelect, required=False, label="Escalate to"
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Why it is escalated")


class ResolveForm(IdempotentForm):
    resolution = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Resolution",
        help_text="What was decided and done, in words the person is told.",
    )


class UpholdForm(ResolveForm):
    """An upheld eligibility appeal: a few corrections the rules read, made through the registry."""

    member = MemberChoiceField(
        queryset=Member.objects.none(),
        required=False,
        empty_label="No member's details change",
        label="Whose details are corrected",
    )
    date_of_birth = forms.DateField(
        required=False, widget=DateInput(), label="Correct date of birth", help_text="As on the NRC or birth record."
    )

    def __init__(self, *args, members, household_attributes=(), household=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["resolution"].help_text = "What was wrong and what was corrected, in words the person is told."
        self.fields["member"].queryset = members
        # What the registry holds now, beside each correction: the officer checks it against the document.
        recorded = [
            f"{m.first_name} {m.date_of_birth:%-d %b %Y}{' (estimated)' if m.date_of_birth_estimated else ''}"
            for m in members
            if m.date_of_birth
        ]
        if recorded:
            self.fields[
                "date_of_birth"
            ].help_text = f"As on the NRC or birth record. Recorded now: {'; '.join(recorded)}."
        for domain in DISABILITY_DOMAINS:
            self.fields[f"disability_{domain}"] = forms.TypedChoiceField(
                choices=[("", "Unchanged"), *DIFFICULTY_CHOICES[1:]],
                coerce=int,
                empty_value=None,
                required=False,
                label=DISABILITY_LABELS[domain],
            )
        # Only the household attributes the programme's rule reads: what an appeal can turn on.
        self.household_attributes = list(household_attributes)
        current = household.attributes if household is not None else {}
        for definition in self.household_attributes:
            field = attribute_field(definition)
            field.required = False
            field.help_text = f"Recorded now: {current.get(definition.key, 'nothing')}."
            self.fields[ATTRIBUTE_PREFIX + definition.key] = field

    def disability_fields(self):
        return [self[f"disability_{domain}"] for domain in DISABILITY_DOMAINS]

    def attribute_fields(self):
        return [self[ATTRIBUTE_PREFIX + definition.key] for definition in self.household_attributes]

    def member_values(self) -> dict:
        data = self.cleaned_data
        values = {}
        if data.get("date_of_birth"):
            values["date_of_birth"] = data["date_of_birth"]
            values["date_of_birth_estimated"] = False
        for domain in DISABILITY_DOMAINS:
            if data.get(f"disability_{domain}") is not None:
                values[f"disability_{domain}"] = data[f"disability_{domain}"]
        return values

    def attribute_values(self) -> dict:
        values = {}
        for definition in self.household_attributes:
            value = self.cleaned_data.get(ATTRIBUTE_PREFIX + definition.key)
            if value not in ("", None):
                values[definition.key] = value
        return values

    def clean(self):
        data = super().clean()
        if self.member_values() and not data.get("member"):
            self.add_error("member", "Choose the member whose details are corrected.")
        return data


class CloseForm(IdempotentForm):
    accepted = forms.TypedChoiceField(
        choices=[
            ("yes", "Yes, the person accepted the resolution"),
            ("no", "No, but the person does not take it further"),
        ],
        coerce=lambda value: value == "yes",
        widget=forms.RadioSelect,
        label="Did the person accept the resolution?",
        error_messages={"required": "Say whether the person accepted the resolution."},
    )
    note = forms.CharField(required=False, max_length=500, label="Note (optional)")


class AttachmentForm(forms.Form):
    attachment = forms.FileField(
        label="Document",
        help_text="A PDF, JPG or PNG scan, at most 5 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png"}),
        error_messages={"required": "Choose the file to attach."},
    )
    description = forms.CharField(required=False, max_length=200, label="What the document is")


class OpenGrievanceForm(forms.Form):
    number = forms.CharField(
        label="Open a grievance",
        max_length=40,
        help_text="The reference on the person's slip (G00000123).",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "G00000123"}),
    )

    def clean_number(self) -> int:
        number = self.cleaned_data["number"]
        grievance_id = grievance_id_from_number(number)
        if grievance_id is None:
            raise ValidationError(f"“{number}” is not a grievance reference: it looks like G00000123.")
        return grievance_id


OPEN = "open"


class WorklistFilterForm(forms.Form):
    status = forms.ChoiceField(
        required=False,
        choices=[("", "Open"), *GrievanceStatus.choices, ("all", "Any, closed too")],
    )
    category = forms.ChoiceField(required=False, choices=[("", "Every category"), *GrievanceCategory.choices])
    programme = forms.ChoiceField(required=False)
    district = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    overdue = forms.BooleanField(required=False, label="Overdue only")
    mine = forms.BooleanField(required=False, label="Assigned to me")

    def __init__(self, *args, programmes, districts, mine_label: str = "Assigned to me", **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["programme"].choices = [("", "Every programme"), *((p.code, p.name) for p in programmes)]
        self.fields["mine"].label = mine_label
        if len(districts) > 1:
            self.fields["district"].choices = [("", "Every district"), *((d.pk, d.name) for d in districts)]
        else:
            del self.fields["district"]
