"""Forms of the referral pages: refer a household, move a referral, open one by
its number, and narrow the worklist. They check shapes; the rules are in
`referrals.services`, whose errors are put back beside these fields."""

import uuid

from django import forms
from django.core.exceptions import ValidationError

from programmes.models import Programme, TargetUnit
from registry.models import Location, Member

from .models import ReferralPriority, ReferralStatus, RejectionReason, referral_id_from_number


class ProgrammeChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, programme: Programme) -> str:
        return f"{programme.name} ({programme.agency.name})"


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, member: Member) -> str:
        return f"{member.full_name} ({member.get_relationship_display().lower()})"


class ReferForm(forms.Form):
    SEND = "send"
    SUGGEST = "suggest"

    programme = ProgrammeChoiceField(queryset=Programme.objects.none(), to_field_name="code", empty_label="Choose…")
    member = MemberChoiceField(
        queryset=Member.objects.none(),
        required=False,
        empty_label="The whole household",
        label="Member referred",
        help_text="Required for programmes that serve one person (marked “for one person”).",
    )
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        label="Why the household is referred",
        help_text="In words the agency reads: what the household needs and why it qualifies.",
    )
    priority = forms.ChoiceField(choices=ReferralPriority.choices, initial=ReferralPriority.NORMAL)
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Notes for the agency")
    attachment = forms.FileField(
        required=False,
        label="Attach a document",
        help_text="Optional: a PDF, JPG or PNG scan, at most 5 MB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".pdf,.jpg,.jpeg,.png"}),
    )
    attachment_description = forms.CharField(required=False, max_length=200, label="What the document is")

    def __init__(self, *args, programmes, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["programme"].queryset = programmes
        self.fields["member"].queryset = members
        # referrals.js shows the member field only for programmes that serve one person.
        self.individual_programmes = [p.code for p in programmes if p.target_unit == TargetUnit.INDIVIDUAL]

    def action(self) -> str:
        """Which button was pressed: send now, or keep as a suggestion (a draft)."""
        return self.SUGGEST if self.data.get("action") == self.SUGGEST else self.SEND


class TransitionForm(forms.Form):
    to_status = forms.ChoiceField(choices=ReferralStatus.choices, widget=forms.HiddenInput)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False, label="Why")
    rejection_reason = forms.ChoiceField(
        choices=[("", "Choose…"), *RejectionReason.choices], required=False, label="Reason for rejecting"
    )
    # A page's form carries a key of its own: a double click, or a resubmit
    # after a slow answer, moves the referral once (the service keeps the key).
    idempotency_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=100)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", f"page-{uuid.uuid4().hex}")


class OpenReferralForm(forms.Form):
    number = forms.CharField(
        label="Open a referral",
        max_length=40,
        help_text="Scan the QR code on the slip, or type the number (R00000123).",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "R00000123"}),
    )

    def clean_number(self) -> int:
        number = self.cleaned_data["number"]
        referral_id = referral_id_from_number(number)
        if referral_id is None:
            raise ValidationError(f"“{number}” is not a referral number: it looks like R00000123.")
        return referral_id


# Age of a referral, in days since it was sent: the bands an officer asks about.
AGE_BANDS = {
    "": ("Any age", None, None),
    "0-7": ("Sent this week (0–7 days)", None, 7),
    "8-14": ("8–14 days ago", 7, 14),
    "15-30": ("15–30 days ago", 14, 30),
    "30+": ("More than 30 days ago", 30, None),
}


class WorklistFilterForm(forms.Form):
    programme = forms.ChoiceField(required=False)
    agency = forms.ChoiceField(required=False)
    ward = forms.TypedChoiceField(required=False, coerce=int, empty_value=None)
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *ReferralStatus.choices])
    age = forms.ChoiceField(required=False, label="Sent", choices=[(key, band[0]) for key, band in AGE_BANDS.items()])

    def __init__(self, *args, programmes, agencies, wards: list[Location], show_agency: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["programme"].choices = [("", "Every programme"), *((p.code, p.name) for p in programmes)]
        self.fields["agency"].choices = [("", "Every agency"), *((a.code, a.name) for a in agencies)]
        self.fields["ward"].choices = [
            ("", "Every ward"),
            *((w.pk, f"{w.name} ({w.district.name})" if w.district_id else w.name) for w in wards),
        ]
        if not show_agency:
            del self.fields["agency"]
