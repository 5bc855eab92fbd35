"""Forms of the beneficiary-list pages: upload, the column mapping, an officer's decision on a row.

They turn a request into the values `payments.beneficiaries` takes; the rules
(what a mapping needs, what a decision may be) are the service's.
"""

from django import forms

from registry.models import Sex

from .beneficiaries import list_fields
from .models import BeneficiaryList, BeneficiaryRow, BeneficiaryRowState, PaymentChannel

NOT_IN_FILE = ""


class BeneficiaryListUploadForm(forms.Form):
    programme = forms.ModelChoiceField(queryset=None, label="Programme", empty_label="Choose the programme")
    file = forms.FileField(
        label="The programme's list",
        help_text="CSV or Excel (.xlsx), one row per beneficiary, the column names on the first row.",
    )

    def __init__(self, *args, programmes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["programme"].queryset = programmes
        self.fields["programme"].label_from_instance = lambda programme: f"{programme.name} · {programme.agency.code}"


class BeneficiaryMappingForm(forms.Form):
    """One choice per field of a list: which of the file's columns holds it (or none)."""

    payment_channel_default = forms.ChoiceField(
        label="Rows that give no payment channel are paid by",
        required=False,
        choices=[("", "Cash (the default)"), *PaymentChannel.choices],
    )
    pay_point_default = forms.CharField(
        label="Pay point for rows paid in cash that give none", required=False, max_length=120
    )

    def __init__(self, *args, beneficiary_list: BeneficiaryList, **kwargs):
        super().__init__(*args, **kwargs)
        self.beneficiary_list = beneficiary_list
        choices = [(NOT_IN_FILE, "— not in the file —")] + [
            (str(index), name or f"Column {index + 1}") for index, name in enumerate(beneficiary_list.columns)
        ]
        mapping = beneficiary_list.mapping or {}
        self.list_fields = list_fields()
        for list_field in self.list_fields:
            initial = mapping.get(list_field.key)
            self.fields[list_field.key] = forms.ChoiceField(
                label=list_field.label,
                required=False,
                choices=choices,
                help_text=list_field.help,
                initial="" if initial is None else str(initial),
            )
        defaults = beneficiary_list.payment_defaults or {}
        self.fields["payment_channel_default"].initial = defaults.get("payment_channel", "")
        self.fields["pay_point_default"].initial = defaults.get("pay_point", "")
        # Fields in the order of the list's fields, the payment defaults last.
        self.order_fields([list_field.key for list_field in self.list_fields])

    def mapping_fields(self):
        return [self[list_field.key] for list_field in self.list_fields]

    def mapping(self) -> dict[str, int | None]:
        return {
            list_field.key: int(self.cleaned_data[list_field.key]) if self.cleaned_data.get(list_field.key) else None
            for list_field in self.list_fields
        }

    def payment_defaults(self) -> dict:
        return {
            "payment_channel": self.cleaned_data.get("payment_channel_default", ""),
            "pay_point": self.cleaned_data.get("pay_point_default", ""),
        }


class BeneficiaryRowDecisionForm(forms.Form):
    """This registered person, a new household, or reject; with what registering needs and why."""

    NEW_HOUSEHOLD = "new_household"
    REJECT = "reject"

    choice = forms.ChoiceField(label="Decision", widget=forms.RadioSelect)
    sex = forms.ChoiceField(label="Sex", required=False, choices=[("", "—"), *Sex.choices])
    date_of_birth = forms.DateField(
        label="Date of birth", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    village = forms.ModelChoiceField(label="Village", required=False, queryset=None, empty_label="—")
    reason = forms.CharField(
        label="Why (required to reject)", required=False, max_length=500, widget=forms.Textarea(attrs={"rows": 2})
    )

    def __init__(self, *args, row: BeneficiaryRow, villages, **kwargs):
        kwargs.setdefault("prefix", f"row-{row.pk}")
        super().__init__(*args, **kwargs)
        self.row = row
        choices = [
            (f"member-{candidate['member_id']}", candidate["name"])
            for candidate in row.candidates
            if not candidate.get("gone")
        ]
        choices += [(self.NEW_HOUSEHOLD, "None of them: register a new household"), (self.REJECT, "Reject the row")]
        self.fields["choice"].choices = choices
        self.fields["village"].queryset = villages
        self.fields["village"].label_from_instance = lambda village: f"{village.name} · {village.code}"
        self.missing = self._missing()
        for name in ("sex", "date_of_birth", "village"):
            if name not in self.missing:
                del self.fields[name]

    def _missing(self) -> list[str]:
        row = self.row
        missing = []
        if not row.sex:
            missing.append("sex")
        if not row.date_of_birth:
            missing.append("date_of_birth")
        if not row.village_id:
            missing.append("village")
        return missing

    @property
    def candidate_choices(self):
        """The radio buttons of the registered people, paired with what the page shows of each."""
        by_value = {f"member-{candidate['member_id']}": candidate for candidate in self.row.candidates}
        return [(radio, by_value[radio.data["value"]]) for radio in self["choice"] if radio.data["value"] in by_value]

    @property
    def other_choices(self):
        return [radio for radio in self["choice"] if not str(radio.data["value"]).startswith("member-")]

    def decision(self) -> dict:
        """The service's arguments for the chosen decision."""
        choice = self.cleaned_data["choice"]
        values = {"reason": self.cleaned_data.get("reason", "")}
        if choice.startswith("member-"):
            return {"decision": "match", "member_id": int(choice.split("-", 1)[1]), **values}
        if choice == self.NEW_HOUSEHOLD:
            return {
                "decision": "new_household",
                "sex": self.cleaned_data.get("sex") or "",
                "date_of_birth": self.cleaned_data.get("date_of_birth"),
                "village": self.cleaned_data.get("village"),
                **values,
            }
        return {"decision": "reject", **values}


STATE_FILTERS = [("", "Every row"), *BeneficiaryRowState.choices]
