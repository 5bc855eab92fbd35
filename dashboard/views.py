"""The district committee's dashboard: the page, its tables' exports, and the
list of households behind each figure (with its own exports).

Views read through `dashboard.selectors` and `dashboard.figures`; the only
write they cause is asking for a first refresh of a district never counted
(`summaries_request`). Scope: a district the user may not see is a 404 on
every page and export, as for one that does not exist; roles other than the
committee and ministry staff are refused (403).
"""

import csv
import dataclasses
import datetime
import io
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET
from openpyxl import Workbook

from programmes.models import Agency, Programme
from registry.models import Location
from registry.selectors import household_member_counts
from spf.exports import safe_cell, safe_row
from spf.models import ExportKind
from spf.services import personal_data_export_record

from .figures import Dashboard, dashboard_build
from .forms import FigureForm, OutOfScope, dashboard_filter_form
from .models import Group, Subject
from .selectors import DashboardQuery, FigureRef, Split, dashboard_may_view, households_behind
from .summaries import (
    ELIGIBLE,
    ELIGIBLE_ANY,
    ENROLLED,
    ENROLLED_ANY,
    ENROLLED_TWO_PLUS,
    GAP,
    GAP_ANY,
    NEEDS_INFORMATION,
    REISSUE,
    summaries_request,
)
from .tables import table_csv, table_xlsx

# A page of the list behind a figure: what a committee member reads before narrowing it further.
HOUSEHOLDS_PAGE_SIZE = 50
# An Excel list is built in memory; beyond this many households the CSV (streamed) is the way.
HOUSEHOLDS_XLSX_LIMIT = 50_000

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _require_viewer(user) -> None:
    if not dashboard_may_view(user):
        raise PermissionDenied("The dashboard is for district committee members and ministry staff.")


def _filter_form(request: HttpRequest):
    try:
        return dashboard_filter_form(user=request.user, params=request.GET, today=timezone.localdate())
    except OutOfScope:
        raise Http404("No such district among yours.") from None


def _dashboard(query: DashboardQuery) -> Dashboard:
    board = dashboard_build(query=query)
    if board.freshness.never and summaries_request(district_ids=[d.pk for d in board.freshness.never]):
        # Celery eager (the demo) has counted them already; with workers they are on their way.
        board = dashboard_build(query=dataclasses.replace(query))
    return board


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    _require_viewer(request.user)
    form = _filter_form(request)
    if not form.is_valid():
        return render(request, "dashboard/dashboard.html", {"form": form, "board": None}, status=400)
    query = form.query()
    board = _dashboard(query)
    return render(
        request,
        "dashboard/dashboard.html",
        {
            "form": form,
            "board": board,
            "query_string": request.GET.urlencode(),
            "charts": {
                chart.key: chart.config() for section in board.sections for chart in section.charts if not chart.empty
            },
            "many_districts": len(form.districts) > 1,
            "split_label": dict(Split.CHOICES).get(query.split, "") if query.split else "",
            "printed_at": timezone.localtime(),
        },
    )


def _download(content: bytes, *, fmt: str, name: str) -> HttpResponse:
    response = HttpResponse(content, content_type=FORMATS[fmt])
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


def _file_name(query: DashboardQuery, what: str) -> str:
    codes = "-".join(d.code for d in query.districts) if len(query.districts) <= 3 else "districts"
    return f"{codes}-{what}-{query.period.first:%Y%m}-{query.period.last:%Y%m}".lower().replace("_", "-")


@login_required
@require_GET
def export(request: HttpRequest, table: str, fmt: str) -> HttpResponse:
    """One table of the dashboard, as the page shows it, as CSV or Excel."""
    _require_viewer(request.user)
    if fmt not in FORMATS:
        raise Http404("Exports are CSV or Excel (xlsx).")
    form = _filter_form(request)
    if not form.is_valid():
        return render(request, "dashboard/dashboard.html", {"form": form, "board": None}, status=400)
    # The page may show part of a long table (each programme's last cycles); its export has every row.
    query = dataclasses.replace(form.query(), all_cycles=True)
    board = dashboard_build(query=query)
    found = board.tables().get(table)
    if found is None:
        raise Http404("The dashboard has no such table.")
    writer = table_csv if fmt == "csv" else table_xlsx
    return _download(writer(found, heading=board.heading(found)), fmt=fmt, name=_file_name(query, table))


# --- the households behind a figure ------------------------------------------------------------------

COVERAGE_WORDS = {
    ELIGIBLE: "eligible for {programme}",
    NEEDS_INFORMATION: "that may qualify for {programme} but lack information",
    ENROLLED: "enrolled in {programme}",
    GAP: "eligible for {programme} and not enrolled in it",
    ELIGIBLE_ANY: "eligible for at least one programme",
    GAP_ANY: "eligible for a programme they are not enrolled in",
    ENROLLED_ANY: "enrolled in at least one programme",
    ENROLLED_TWO_PLUS: "enrolled in two or more programmes",
}


def figure_words(figure: FigureRef, query: DashboardQuery, group: str) -> str:
    """The list's title: which households, in words."""
    programme = Programme.objects.filter(pk=figure.programme_id).first() if figure.programme_id else None
    agency = Agency.objects.filter(pk=figure.agency_id).first() if figure.agency_id else None
    name = programme.name if programme else "a programme"
    period = f"{figure.month:%B %Y}" if figure.month else query.period.label
    states = " or ".join(s.replace("_", " ") for s in figure.states)
    subject = figure.subject
    if subject == Subject.HOUSEHOLDS:
        words = "Households registered and active"
    elif subject == Subject.REGISTRATIONS:
        words = f"Households registered in {period}"
    elif subject == Subject.COVERAGE:
        words = "Households " + COVERAGE_WORDS.get(figure.states[0] if figure.states else "", "{programme}").format(
            programme=name
        )
    elif subject == Subject.REFERRALS:
        words = f"Households with a referral to {name}"
        if agency:
            words = f"Households with a referral to {agency.name}"
        if states:
            words += f", now {states}"
        if figure.overdue:
            words += ", overdue"
        words += f", made in {period}"
    elif subject == Subject.ACCEPTANCES:
        words = f"Households whose referral to {agency.name if agency else name} was accepted in {period}"
    elif subject == Subject.PAYMENTS:
        words = f"Households with a {states + ' ' if states else ''}payment of {name}"
        if figure.category == REISSUE:
            words = f"Households with a reissued payment of {name}"
        words += f" in the cycle{'s' if not figure.month else ''} of {period}"
    elif subject == Subject.GRIEVANCES:
        category = figure.category.replace("_", " ") if figure.category else "any"
        words = f"Households with a grievance ({category}) received in {period}"
        if figure.overdue:
            words += ", overdue"
        elif states:
            words += ", still open"
    else:
        category = figure.category.replace("_", " ") if figure.category else "any"
        words = f"Households with a grievance ({category}) resolved in {period}"
    return words + _group_words(group, query)


def _group_words(group: str, query: DashboardQuery) -> str:
    if not group:
        return ""
    kind, _, value = group.partition(":")
    if kind == Split.FEMALE_HEADED:
        return ", female-headed" if value == "yes" else ", not female-headed"
    if kind in (Split.WARD, Split.DISTRICT):
        place = Location.objects.filter(pk=int(value)).values_list("name", flat=True).first() or "—"
        return f", in {place}"
    return f", with a member in the group “{Group(group).label.lower()}”"


def _households_query(request: HttpRequest):
    """The dashboard's filters and the figure asked for, both bound; 404 for a district outside scope."""
    form = _filter_form(request)
    figure_form = FigureForm(request.GET)
    return form, figure_form


@login_required
@require_GET
def households(request: HttpRequest) -> HttpResponse:
    """The households behind one figure of the dashboard, in the user's districts, as they are now."""
    _require_viewer(request.user)
    form, figure_form = _households_query(request)
    if not (form.is_valid() and figure_form.is_valid()):
        return render(
            request, "dashboard/households.html", {"form": form, "figure_form": figure_form, "rows": None}, status=400
        )
    query, figure = form.query(), figure_form.figure_ref()
    group = figure_form.cleaned_data["group"]
    try:
        listing = households_behind(user=request.user, query=query, figure=figure, group=group)
    except ValueError as refusal:
        raise Http404(str(refusal)) from None
    try:
        page_number = max(1, int(request.GET.get("page") or 1))
    except ValueError:
        page_number = 1
    start = (page_number - 1) * HOUSEHOLDS_PAGE_SIZE
    # One row more than a page says whether there is a next page, without counting a district.
    found = list(listing[start : start + HOUSEHOLDS_PAGE_SIZE + 1])
    has_next = len(found) > HOUSEHOLDS_PAGE_SIZE
    found = found[:HOUSEHOLDS_PAGE_SIZE]
    people = household_member_counts([h.pk for h in found])
    query_without_page = request.GET.copy()
    query_without_page.pop("page", None)
    back = [(k, v) for k, v in query_without_page.lists() if k in ("district", "ward", "from", "to", "split")]
    return render(
        request,
        "dashboard/households.html",
        {
            "form": form,
            "figure_form": figure_form,
            "title": figure_words(figure, query, group),
            "query": query,
            "rows": [{"household": h, "people": people.get(h.pk, 0)} for h in found],
            "page_number": page_number,
            "first_number": start + 1,
            "last_number": start + len(found),
            "has_next": has_next,
            "has_previous": page_number > 1,
            "query_string": query_without_page.urlencode(),
            "back_query": urlencode([(k, v) for k, values in back for v in values]),
        },
    )


HOUSEHOLD_COLUMNS = ["Household", "Head", "Head's sex", "Village", "Ward", "District", "Registered", "People"]


def _household_rows(listing, *, limit: int | None = None):
    """The list's rows for an export, a thousand households at a time (each batch's people counted at once)."""
    batch: list = []
    iterator = listing.iterator(chunk_size=1000)
    taken = 0
    for household in iterator:
        batch.append(household)
        taken += 1
        if len(batch) == 1000 or (limit and taken >= limit):
            yield from _rows_of(batch)
            batch = []
            if limit and taken >= limit:
                return
    yield from _rows_of(batch)


def _rows_of(batch):
    people = household_member_counts([h.pk for h in batch])
    for h in batch:
        yield [
            h.number,
            h.head.full_name if h.head else "",
            h.head.sex if h.head else "",
            h.village.name,
            h.village.parent.name if h.village.parent else "",
            h.district.name,
            h.registration_date,
            people.get(h.pk, 0),
        ]


@login_required
@require_GET
def households_export(request: HttpRequest, fmt: str) -> HttpResponse:
    """The whole list behind a figure: CSV streamed (any size), Excel up to HOUSEHOLDS_XLSX_LIMIT households."""
    _require_viewer(request.user)
    if fmt not in FORMATS:
        raise Http404("Exports are CSV or Excel (xlsx).")
    form, figure_form = _households_query(request)
    if not (form.is_valid() and figure_form.is_valid()):
        return render(
            request, "dashboard/households.html", {"form": form, "figure_form": figure_form, "rows": None}, status=400
        )
    query, figure = form.query(), figure_form.figure_ref()
    group = figure_form.cleaned_data["group"]
    try:
        listing = households_behind(user=request.user, query=query, figure=figure, group=group)
    except ValueError as refusal:
        raise Http404(str(refusal)) from None
    title = figure_words(figure, query, group)
    name = _file_name(query, f"households-{figure.subject}")
    exported = dict(
        user=request.user,
        kind=ExportKind.HOUSEHOLD_LIST,
        what=f"{title} · {query.place}",
        address=request.get_full_path(),
    )
    if fmt == "csv":
        # Recorded as the download starts: a streamed list's length is known only at its end.
        personal_data_export_record(**exported, file_name=f"{name}.csv")

        def lines():
            out = io.StringIO()
            writer = csv.writer(out)
            out.write("\ufeff")
            writer.writerow([safe_cell(title)])
            writer.writerow([safe_cell(f"{query.place} · listed {timezone.localtime():%Y-%m-%d %H:%M}")])
            writer.writerow(HOUSEHOLD_COLUMNS)
            yield out.getvalue()
            for row in _household_rows(listing):
                out.seek(0)
                out.truncate()
                writer.writerow(
                    safe_row(value.isoformat() if isinstance(value, datetime.date) else value for value in row)
                )
                yield out.getvalue()

        response = StreamingHttpResponse(lines(), content_type=FORMATS["csv"])
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
        return response
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Households")
    sheet.append([safe_cell(title)])
    sheet.append([safe_cell(f"{query.place} · listed {timezone.localtime():%Y-%m-%d %H:%M}")])
    sheet.append(HOUSEHOLD_COLUMNS)
    written = 0
    for row in _household_rows(listing, limit=HOUSEHOLDS_XLSX_LIMIT + 1):
        if written == HOUSEHOLDS_XLSX_LIMIT:
            sheet.append([f"More than {HOUSEHOLDS_XLSX_LIMIT:,} households: download the CSV for the whole list."])
            break
        sheet.append(safe_row(row))
        written += 1
    out = io.BytesIO()
    workbook.save(out)
    personal_data_export_record(**exported, file_name=f"{name}.xlsx", rows=written)
    return _download(out.getvalue(), fmt="xlsx", name=name)
