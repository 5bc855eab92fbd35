"""The dashboard's pages: who may see which district, the filters, each figure's
link to the households behind it, the exports, and a fixed number of queries."""

import csv
import datetime
import io
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from openpyxl import load_workbook

from grievances.services import grievance_register
from registry.tests.factories import UserFactory
from spf.models import Role

from ..models import DistrictRefresh
from .makers import assess, count, enrol_active, person, programme_for_pairs, register

pytestmark = pytest.mark.django_db

DASHBOARD = "/dashboard/"
HOUSEHOLDS = "/dashboard/households/"


@pytest.fixture
def samfya_households(samfya_officer, samfya_village, samfya_ward_2_village, programme, maker, checker):
    """Samfya: in ward 1 three pairs (one enrolled) and a single person; in ward 2 a mother and her baby."""
    pairs = [register(samfya_officer, samfya_village, person("F"), person("M")) for _ in range(3)]
    single = register(samfya_officer, samfya_village, person("M"))
    mother = register(samfya_officer, samfya_ward_2_village, person("F"), person("F", datetime.date(2025, 3, 1)))
    assess(*pairs, single, mother)
    enrol_active(household=pairs[0], programme=programme, maker=maker, checker=checker)
    return {"pairs": pairs, "single": single, "mother": mother}


@pytest.fixture
def lunga_household(lunga_officer, lunga_village, programme):
    household = register(lunga_officer, lunga_village, person("F"), person("F"))
    assess(household)
    return household


@pytest.fixture
def counted(samfya, lunga, samfya_households, lunga_household):
    count(samfya, lunga)


def table(response, key: str):
    return response.context["board"].tables()[key]


def column(found, key: str) -> int:
    return [c.key for c in found.columns].index(key)


def numbers(client, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, response.content[:500]
    return [row["household"].number for row in response.context["rows"]]


# --- who sees what ---------------------------------------------------------------------------


def test_committee_member_sees_their_district_and_how_fresh_it_is(client, committee_samfya, counted):
    client.force_login(committee_samfya)

    response = client.get(DASHBOARD)

    assert response.status_code == 200
    board = response.context["board"]
    assert [d.name for d in board.query.districts] == ["Samfya"]
    assert board.headlines[0].value == 5
    assert "Figures as of" in response.content.decode()


@pytest.mark.parametrize(
    "address",
    [
        DASHBOARD,
        "/dashboard/export/coverage.csv",
        "/dashboard/export/coverage.xlsx",
        f"{HOUSEHOLDS}?figure=households",
        "/dashboard/households/export.csv?figure=households",
        "/api/v1/dashboard/",
    ],
)
def test_committee_member_cannot_reach_another_district(client, committee_samfya, lunga, counted, address):
    client.force_login(committee_samfya)
    joiner = "&" if "?" in address else "?"

    response = client.get(f"{address}{joiner}district={lunga.pk}")

    assert response.status_code == 404


def test_a_committee_member_gets_only_their_district_by_default_and_never_anothers_households(
    client, committee_samfya, lunga_household, counted
):
    client.force_login(committee_samfya)

    listed = numbers(client, f"{HOUSEHOLDS}?figure=households")

    assert len(listed) == 5
    assert lunga_household.number not in listed


@pytest.mark.parametrize("role", [Role.FRONT_DESK, Role.PROGRAMME_OFFICER])
def test_other_roles_are_refused_the_dashboard(client, samfya, role):
    client.force_login(UserFactory(username=f"someone_{role}", role=role, districts=[samfya]))

    assert client.get(DASHBOARD).status_code == 403
    assert client.get(f"{HOUSEHOLDS}?figure=households").status_code == 403


def test_ministry_staff_compare_two_districts(client, ministry_user, samfya, lunga, counted):
    client.force_login(ministry_user)

    response = client.get(DASHBOARD, {"district": [samfya.pk, lunga.pk], "split": "district"})

    assert response.status_code == 200
    households = table(response, "households")
    assert [[c.value for c in row.cells] for row in households.rows] == [
        ["All", 6, 11],
        ["Lunga", 1, 2],
        ["Samfya", 5, 9],
    ]


def test_comparing_needs_two_districts_and_says_so(client, committee_samfya, counted):
    client.force_login(committee_samfya)

    response = client.get(DASHBOARD, {"split": "district"})

    assert response.status_code == 400
    assert "Select a valid choice" in str(response.context["form"].errors["split"])


# --- figures and the households behind them ---------------------------------------------------------


def test_a_gap_figure_links_to_exactly_the_households_in_the_gap(
    client, committee_samfya, samfya_households, programme, counted
):
    client.force_login(committee_samfya)
    coverage = table(client.get(DASHBOARD), "coverage")
    (row,) = coverage.rows
    gap = row.cells[column(coverage, "gap")]

    listed = numbers(client, gap.href)

    pairs = samfya_households["pairs"]
    assert gap.value == 3  # two pairs not enrolled, and the mother and her baby
    assert sorted(listed) == sorted([pairs[1].number, pairs[2].number, samfya_households["mother"].number])


def test_filtering_by_ward_narrows_every_figure_and_the_households_behind_them(
    client, committee_samfya, samfya_ward_2_village, samfya_households, counted
):
    client.force_login(committee_samfya)
    ward = samfya_ward_2_village.parent

    response = client.get(DASHBOARD, {"ward": ward.pk})

    board = response.context["board"]
    assert board.headlines[0].value == 1
    coverage = table(response, "coverage")
    gap = coverage.rows[0].cells[column(coverage, "gap")]
    assert gap.value == 1
    assert parse_qs(urlparse(gap.href).query)["ward"] == [str(ward.pk)]
    assert numbers(client, gap.href) == [samfya_households["mother"].number]


def test_a_split_by_age_band_counts_households_with_a_young_child_and_lists_them(
    client, committee_samfya, samfya_households, counted
):
    client.force_login(committee_samfya)

    households = table(client.get(DASHBOARD, {"split": "age"}), "households")

    rows = {row.cells[0].value: row for row in households.rows}
    assert rows["Aged 0–4"].cells[1].value == 1
    assert rows["Aged 18–59"].cells[1].value == 5
    assert numbers(client, rows["Aged 0–4"].cells[1].href) == [samfya_households["mother"].number]


def test_a_split_by_ward_adds_up_to_the_whole(client, committee_samfya, samfya_households, counted):
    client.force_login(committee_samfya)

    households = table(client.get(DASHBOARD, {"split": "ward"}), "households")

    whole, *parts = households.rows
    assert whole.cells[1].value == sum(part.cells[1].value for part in parts) == 5
    assert all(part.is_part for part in parts)


def test_a_sensitive_grievance_is_counted_but_its_households_are_never_listed(
    client, committee_samfya, samfya_officer, samfya_households, samfya
):
    household = samfya_households["single"]
    grievance_register(
        acting_user=samfya_officer,
        category="staff_conduct",
        description="An officer asked for money.",
        household=household,
        complainant=household.head,
        sensitive=True,
    )
    count(samfya)
    client.force_login(committee_samfya)

    grievances = table(client.get(DASHBOARD), "grievances")

    (row,) = grievances.rows
    assert row.cells[0].value == "Sensitive (details withheld)"
    assert row.cells[1].value == 1 and not any(cell.href for cell in row.cells)
    assert client.get(HOUSEHOLDS, {"figure": "grievances", "category": "sensitive"}).status_code == 404


def test_a_district_never_counted_is_counted_on_its_first_visit(client, committee_samfya, samfya, samfya_households):
    client.force_login(committee_samfya)

    response = client.get(DASHBOARD)

    assert response.context["board"].headlines[0].value == 5
    assert DistrictRefresh.objects.get(district=samfya).refreshed_at is not None


def test_a_period_that_ends_before_it_starts_is_refused_naming_the_field(client, committee_samfya, counted):
    client.force_login(committee_samfya)

    response = client.get(DASHBOARD, {"from": "2026-06", "to": "2026-01"})

    assert response.status_code == 400
    assert "ends before it starts" in response.context["form"].errors["to"][0]


def test_a_month_written_wrongly_is_refused_naming_the_field(client, committee_samfya, counted):
    client.force_login(committee_samfya)

    response = client.get(DASHBOARD, {"from": "March"})

    assert response.status_code == 400
    assert "is not a month" in response.context["form"].errors["from"][0]


# --- exports -----------------------------------------------------------------------------------------


def test_a_table_exports_to_csv_with_what_where_and_when(client, committee_samfya, counted):
    client.force_login(committee_samfya)

    response = client.get("/dashboard/export/coverage.csv")

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="sam-coverage-')
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert lines[0] == ["Eligible, enrolled and the gap, by programme"]
    assert lines[1] == ["Samfya · all wards"]
    header = lines[lines.index([]) + 1]
    assert header[:5] == ["Programme", "Eligible", "Needs information", "Enrolled", "Gap: eligible, not enrolled"]
    assert lines[-1][:5] == ["Programme SCT", "4", "0", "1", "3"]


def test_a_table_exports_to_excel_with_numbers_as_numbers(client, committee_samfya, counted):
    client.force_login(committee_samfya)

    response = client.get("/dashboard/export/households.xlsx", {"split": "ward"})

    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = [row for row in sheet.iter_rows(values_only=True) if any(v is not None for v in row)]
    assert rows[0][0] == "Registered households and people"
    assert ("All", 5, 9) in rows


def test_the_households_behind_a_figure_export_to_csv_and_excel(client, committee_samfya, programme, counted):
    client.force_login(committee_samfya)
    query = f"?figure=coverage&state=gap&programme={programme.pk}"

    as_csv = client.get(f"/dashboard/households/export.csv{query}")
    as_excel = client.get(f"/dashboard/households/export.xlsx{query}")

    lines = list(csv.reader(io.StringIO(b"".join(as_csv.streaming_content).decode("utf-8-sig"))))
    assert lines[0] == ["Households eligible for Programme SCT and not enrolled in it"]
    assert lines[2][:2] == ["Household", "Head"]
    assert len(lines) == 3 + 3
    sheet = load_workbook(io.BytesIO(as_excel.content)).active
    assert sheet.max_row == 3 + 3 and sheet.cell(row=4, column=8).value == 2
    # Each file of personal data says who took it, when, and what it held.
    from spf.models import ExportKind, PersonalDataExport

    records = list(PersonalDataExport.objects.order_by("pk"))
    assert [(r.user, r.kind, r.file_name[-4:], r.rows) for r in records] == [
        (committee_samfya, ExportKind.HOUSEHOLD_LIST, ".csv", None),
        (committee_samfya, ExportKind.HOUSEHOLD_LIST, "xlsx", 3),
    ]
    assert records[0].what.startswith("Households eligible for Programme SCT and not enrolled in it")
    assert records[1].address.startswith("/dashboard/households/export.xlsx?figure=coverage")


# --- cost ----------------------------------------------------------------------------------------------


def test_the_page_makes_the_same_number_of_queries_whatever_the_number_of_programmes(
    client, committee_samfya, samfya, lunga, agency, ministry_user, counted
):
    client.force_login(committee_samfya)
    client.get(DASHBOARD)  # the session and the user are loaded once
    with CaptureQueriesContext(connection) as one_programme:
        client.get(DASHBOARD, {"split": "ward"})
    for code in ("CSG", "OAP", "DIS"):
        programme_for_pairs(agency=agency, districts=[samfya, lunga], ministry_user=ministry_user, code=code)
    count(samfya)

    with CaptureQueriesContext(connection) as four_programmes:
        client.get(DASHBOARD, {"split": "ward"})

    assert len(four_programmes) == len(one_programme) <= 30
