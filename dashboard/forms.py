"""What the dashboard is asked for, read from a query string: districts,
ward, period, split, and for the list of households, the figure behind it.

One reading for the page, its exports and the API, so the three answer the
same question the same way. A district the user may not see is not a form
error: it is answered as if it did not exist (`OutOfScope`, a 404).
"""

import datetime

from django import forms
from django.core.exceptions import ValidationError

from .models import Group, Subject
from .selectors import (
    ALL_CYCLES,
    DashboardQuery,
    FigureRef,
    Period,
    Split,
    add_months,
    dashboard_districts_for,
    dashboard_wards_for,
)

# Longer periods make a trend of hundreds of points nobody can read on a page or on A4.
MAX_PERIOD_MONTHS = 60


class OutOfScope(Exception):
    """A district, ward or figure the user may not see: answer 404, as for one that does not exist."""


class MonthInput(forms.DateInput):
    input_type = "month"

    def format_value(self, value):
        if isinstance(value, datetime.date):
            return f"{value:%Y-%m}"
        return value


class MonthField(forms.Field):
    widget = MonthInput

    def to_python(self, value) -> datetime.date | None:
        value = (value or "").strip()
        if not value:
            return None
        try:
            return datetime.datetime.strptime(value, "%Y-%m").date()
        except ValueError:
            raise ValidationError(f"“{value}” is not a month: write it as year and month, like 2026-03.") from None


class DashboardFilterForm(forms.Form):
    district = forms.TypedMultipleChoiceField(coerce=int, required=False, label="Districts")
    ward = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Ward")
    split = forms.ChoiceField(choices=Split.CHOICES, required=False, label="Split by")

    def __init__(self, data=None, *, districts, today: datetime.date, **kwargs):
        super().__init__(data, **kwargs)
        self.today = today
        self.districts = list(districts)
        default = Period.default(today)
        # "from" is a Python keyword: the two month fields are added by name.
        self.fields["from"] = MonthField(required=False, label="From", initial=default.first)
        self.fields["to"] = MonthField(required=False, label="To", initial=default.last)
        self.order_fields(["district", "ward", "from", "to", "split"])
        self.fields["district"].choices = [(d.pk, d.name) for d in self.districts]
        self.wards = list(dashboard_wards_for(self.districts))
        many = len(self.districts) > 1
        self.fields["ward"].choices = [("", "All wards")] + [
            (w.pk, f"{w.name} ({w.parent.name})" if many else w.name) for w in self.wards
        ]
        if not many:
            self.fields["split"].choices = [c for c in Split.CHOICES if c[0] != Split.DISTRICT]

    def clean(self):
        data = super().clean()
        chosen = data.get("district") or [d.pk for d in self.districts]
        data["districts"] = [d for d in self.districts if d.pk in chosen]
        ward = data.get("ward")
        if ward is not None:
            match = next((w for w in self.wards if w.pk == ward), None)
            if match is None or match.parent_id not in chosen:
                self.add_error("ward", "This ward is not in the districts chosen: choose one of theirs, or all wards.")
            data["ward_location"] = match
        default = Period.default(self.today)
        first, last = data.get("from") or default.first, data.get("to") or default.last
        if data.get("from") and not data.get("to") and first > last:
            last = first
        if last < first:
            self.add_error("to", "The period ends before it starts: choose a month on or after the first.")
        elif add_months(first, MAX_PERIOD_MONTHS - 1) < last:
            self.add_error("to", f"The period is longer than {MAX_PERIOD_MONTHS} months: choose a shorter one.")
        data["period"] = Period(first, last)
        if data.get("split") == Split.DISTRICT and len(data["districts"]) < 2:
            self.add_error("split", "Choose two or more districts to compare them.")
        return data

    def query(self) -> DashboardQuery:
        data = self.cleaned_data
        return DashboardQuery(
            districts=data["districts"],
            ward=data.get("ward_location"),
            period=data["period"],
            split=data.get("split") or Split.NONE,
            all_cycles=self.data.get("cycles") == ALL_CYCLES,
        )


def dashboard_filter_form(*, user, params, today: datetime.date) -> DashboardFilterForm:
    """The filter form for `params` (a QueryDict), bound; OutOfScope for a district the user may not see."""
    districts = list(dashboard_districts_for(user))
    allowed = {d.pk for d in districts}
    for value in params.getlist("district"):
        if not value.strip().isdigit() or int(value) not in allowed:
            raise OutOfScope(value)
    # The months in use are shown in the form even when none were asked for.
    data = params.copy()
    default = Period.default(today)
    for name, month in (("from", default.first), ("to", default.last)):
        if not data.get(name):
            data[name] = f"{month:%Y-%m}"
    return DashboardFilterForm(data, districts=districts, today=today)


# --- the figure behind a list of households ---------------------------------------------------------


class FigureForm(forms.Form):
    figure = forms.ChoiceField(choices=Subject.choices, label="Figure")
    state = forms.CharField(required=False, max_length=200)
    programme = forms.IntegerField(required=False, min_value=1)
    agency = forms.IntegerField(required=False, min_value=1)
    category = forms.CharField(required=False, max_length=32)
    overdue = forms.BooleanField(required=False)
    group = forms.CharField(required=False, max_length=32)

    def __init__(self, data=None, **kwargs):
        super().__init__(data, **kwargs)
        self.fields["month"] = MonthField(required=False, label="Month")

    def clean_group(self) -> str:
        group = self.cleaned_data.get("group") or ""
        kind, _, value = group.partition(":")
        if not group or group in Group.values:
            return group
        if kind in (Split.WARD, Split.DISTRICT) and value.isdigit():
            return group
        if kind == Split.FEMALE_HEADED and value in ("yes", "no"):
            return group
        raise ValidationError(f"“{group}” is not a part of a split this dashboard makes.")

    def figure_ref(self) -> FigureRef:
        data = self.cleaned_data
        return FigureRef(
            subject=data["figure"],
            state=data.get("state") or "",
            programme_id=data.get("programme"),
            agency_id=data.get("agency"),
            category=data.get("category") or "",
            overdue=bool(data.get("overdue")),
            month=data.get("month"),
        )


__all__ = ["DashboardFilterForm", "FigureForm", "OutOfScope", "dashboard_filter_form"]
