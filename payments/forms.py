"""Forms of the enrolment and payment pages. They check shapes; the rules are in
`payments.services` and `payments.payroll`, whose errors are put back beside
these fields (`show_service_errors`)."""

import datetime
import re
import uuid

from django import forms
from django.core.exceptions import ValidationError

from programmes.models import Programme, TargetUnit
from registry.models import Member

from .models import ExitReason, PaymentChannel, PaymentStatus


class IdempotentForm(forms.Form):
    # A page's form carries a key of its own: a double click, or a resubmit
    # after a slow answer, changes the enrolment once (the service keeps the key).
    idempotency_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=100)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", f"page-{uuid.uuid4().hex}")


class MemberChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, member: Member) -> str:
        return f"{member.full_name} ({member.get_relationship_display().lower()})"


class PaymentDetailsFields(forms.Form):
    """How the household is paid: the channel, and the account or the pay point it needs."""

    channel = forms.ChoiceField(
        label="Paid by", choices=PaymentChannel.choices, initial=PaymentChannel.CASH, widget=forms.RadioSelect
    )
    account_number = forms.CharField(
        label="Account or wallet number",
        max_length=64,
        required=False,
        help_text="For a bank account or a mobile money wallet.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false", "inputmode": "numeric"}),
    )
    account_name = forms.CharField(
        label="Name of the person paid",
        max_length=160,
        required=False,
        help_text="The name on the account, or who collects the cash. Empty: the person enrolled (or the head).",
    )
    pay_point = forms.CharField(
        label="Pay point", max_length=120, required=False, help_text="For cash: where the household collects."
    )

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


class EnrolForm(PaymentDetailsFields):
    programme = forms.ChoiceField(label="Programme")
    member = MemberChoiceField(
        queryset=Member.objects.none(),
        required=False,
        empty_label="Choose the person…",
        label="Person enrolled",
        help_text="For programmes that serve one person.",
    )
    external_reference = forms.CharField(
        label="The programme's own number (optional)",
        max_length=64,
        required=False,
        help_text="If the agency has already given the household a beneficiary number.",
    )
    reason = forms.CharField(
        label="Note (optional)", required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=100)

    field_order = [
        "programme",
        "member",
        "channel",
        "account_number",
        "account_name",
        "pay_point",
        "external_reference",
        "reason",
    ]

    def __init__(self, *args, programmes: list[Programme], members, show_reference: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.programmes = {p.code: p for p in programmes}
        self.fields["programme"].choices = [
            *([("", "Choose…")] if len(programmes) != 1 else []),
            *((p.code, f"{p.name} ({p.agency.name})") for p in programmes),
        ]
        if len(programmes) == 1:
            # One programme to enrol in (the page's title names it): nothing to choose.
            self.fields["programme"].widget = forms.HiddenInput()
            self.fields["programme"].initial = programmes[0].code
        self.fields["member"].queryset = members
        if not show_reference:
            del self.fields["external_reference"]
        self.individual_programmes = [p.code for p in programmes if p.target_unit == TargetUnit.INDIVIDUAL]
        if not self.is_bound:
            self.initial.setdefault("idempotency_key", f"page-{uuid.uuid4().hex}")

    def clean_programme(self) -> Programme:
        code = self.cleaned_data["programme"]
        if code not in self.programmes:
            raise ValidationError("Choose one of the programmes listed.")
        return self.programmes[code]

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


class PaymentDetailsForm(PaymentDetailsFields):
    reason = forms.CharField(
        label="Why it changes (optional)",
        required=False,
        max_length=255,
        help_text="For example: the wallet was closed, the household moved nearer another pay point.",
    )


class MoveForm(IdempotentForm):
    """One move of an enrolment (verify, approve, activate, suspend, reinstate, exit)."""

    to_status = forms.CharField(widget=forms.HiddenInput)
    reason = forms.CharField(label="Why", required=False, max_length=255, widget=forms.Textarea(attrs={"rows": 2}))
    exit_reason = forms.ChoiceField(
        label="Why the enrolment ends", required=False, choices=[("", "Choose…"), *ExitReason.choices]
    )

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


class ReviewForm(forms.Form):
    KEEP = "keep"
    EXIT = "exit"

    decision = forms.ChoiceField(
        label="Your decision",
        widget=forms.RadioSelect,
        choices=[(KEEP, "Keep the household in the programme"), (EXIT, "End the enrolment")],
    )
    reason = forms.CharField(
        label="Why",
        max_length=255,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required: what you checked and found.",
    )
    exit_reason = forms.ChoiceField(
        label="If it ends: why", required=False, choices=ExitReason.choices, initial=ExitReason.NOT_ELIGIBLE
    )

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


MONTH = re.compile(r"^\s*(\d{4})-(\d{1,2})(?:-(\d{1,2}))?\s*$")


class CycleCreateForm(forms.Form):
    programme = forms.CharField(widget=forms.HiddenInput)
    period_start = forms.CharField(
        label="New cycle: month",
        help_text="The month the period starts (YYYY-MM); it lasts as long as the programme's payment schedule.",
        widget=forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"}),
    )

    def clean_period_start(self) -> datetime.date | str:
        text = self.cleaned_data["period_start"]
        match = MONTH.match(text)
        if not match:
            raise ValidationError(f"“{text}” is not a month: write it as YYYY-MM, for example 2026-11.")
        year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3) or 1)
        try:
            return datetime.date(year, month, day)
        except ValueError:
            raise ValidationError(f"“{text}” is not a month: write it as YYYY-MM, for example 2026-11.") from None

    def field_for_error(self, key: str) -> str | None:
        return key if key in self.fields else None


class ExportForm(forms.Form):
    channel = forms.ChoiceField(choices=PaymentChannel.choices, widget=forms.HiddenInput)


class ReconciliationUploadForm(forms.Form):
    file = forms.FileField(
        label="The provider's reconciliation file",
        help_text="The CSV the provider sends back: one line per payment, with its reference and what happened.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"}),
    )

    def field_for_error(self, key: str) -> str | None:
        return "file" if key in ("file", "file_name", "content") else None


class CyclePaymentsFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *PaymentStatus.choices])
    q = forms.CharField(
        required=False,
        max_length=40,
        label="Reference or household",
        widget=forms.TextInput(attrs={"placeholder": "SCT-202601-12"}),
    )


class WorkFilterForm(forms.Form):
    programme = forms.ChoiceField(required=False)

    def __init__(self, *args, programmes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["programme"].choices = [("", "Every programme"), *((p.code, p.name) for p in programmes)]
