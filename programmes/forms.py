"""Forms of the catalogue's admin: what ministry staff type, checked for shape only.

Whether a rule or formula is valid is `programmes.services`' decision (it
compiles them); its ValidationError names `eligibility_rule` or
`benefit_formula` and comes back beside that field through `show_rule_errors`.
"""

import re

from django import forms
from django.core.exceptions import ValidationError

from .models import Programme

# Rules are short sentences, not programs: a textarea of this many lines shows
# a whole realistic rule without scrolling.
RULE_ROWS = 8
FORMULA_ROWS = 4

CODE_TEXTAREA = {"class": "rule-text", "spellcheck": "false", "autocomplete": "off", "autocapitalize": "off"}


class DocumentsField(forms.CharField):
    """A list of documents edited as text, one per line."""

    widget = forms.Textarea(attrs={"rows": 4})

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value):
        text = super().to_python(value) or ""
        if isinstance(text, list):
            return text
        return [line.strip() for line in text.splitlines() if line.strip()]

    def has_changed(self, initial, data):
        return self.to_python(self.prepare_value(initial)) != self.to_python(data)


class ProgrammeAdminForm(forms.ModelForm):
    documents = DocumentsField(
        required=False,
        help_text="What a person must bring, one item per line, e.g. “National registration card of the head”.",
    )

    class Meta:
        model = Programme
        fields = [
            "code",
            "name",
            "agency",
            "description",
            "kind",
            "target_unit",
            "status",
            "frequency",
            "currency",
            "enrolment_mode",
            "documents",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 4})}

    def clean_code(self):
        return self.cleaned_data["code"].strip().upper()

    def clean_currency(self):
        currency = self.cleaned_data["currency"].strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise ValidationError("Three capital letters, the ISO 4217 code of the currency.")
        return currency


class RuleEditorForm(forms.Form):
    """A draft of a programme's rule and formula; the service checks and saves it."""

    eligibility_rule = forms.CharField(
        label="Eligibility rule",
        strip=False,
        required=False,
        widget=forms.Textarea(attrs={"rows": RULE_ROWS, **CODE_TEXTAREA}),
        help_text="True for a household that qualifies, e.g. "
        "household.members.exists(m, m.age >= 65) && household.size <= 6",
    )
    benefit_formula = forms.CharField(
        label="Benefit formula",
        strip=False,
        required=False,
        widget=forms.Textarea(attrs={"rows": FORMULA_ROWS, **CODE_TEXTAREA}),
        help_text="The amount in the programme's currency, e.g. "
        "200 * (household.members.exists(m, m.severe_disability) ? 2 : 1). "
        "Leave empty when the programme gives no amount.",
    )
    note = forms.CharField(
        label="Why it changes",
        max_length=255,
        required=False,
        help_text="Kept with the version, e.g. “Cabinet decision of 3 March: ceiling raised”.",
    )


def show_rule_errors(problem: ValidationError, form: forms.Form) -> None:
    """Each message of a service's ValidationError beside the field it names (the rest above the form)."""
    messages = problem.message_dict if hasattr(problem, "error_dict") else {"__all__": problem.messages}
    for key, texts in messages.items():
        field = key if key in form.fields else None
        for text in texts:
            form.add_error(field, text)


# The services name a problem's place as "line L, column C: message".
POSITION = re.compile(r"^line (\d+), column (\d+): (.*)$", re.DOTALL)


def rule_error_pointers(form: forms.Form, field: str) -> list[dict]:
    """Each positioned error of a rule field with the line of the draft it points at, for a caret under it."""
    text = str(form.data.get(field, "")) if form.is_bound else ""
    lines = text.splitlines() or [""]
    pointers = []
    for message in form.errors.get(field, []):
        match = POSITION.match(message)
        if not match:
            continue
        line, column = int(match.group(1)), int(match.group(2))
        if not 1 <= line <= len(lines):
            continue
        pointers.append(
            {
                "line": line,
                "column": column,
                "message": match.group(3),
                "source": lines[line - 1],
                "caret": " " * max(0, column - 1) + "^",
            }
        )
    return pointers
