"""No export runs a formula: text that starts like one (=, +, -, @, a tab, a carriage return) leaves in
every CSV and Excel file with a leading quote, while numbers stay numbers (spf/exports.py). The import,
beneficiary list and reconciliation reports are held to it beside their uploads
(registry/tests/test_uploads.py, payments/tests/test_malformed_files.py)."""

import csv
import datetime
import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from dashboard.tables import COUNT, MONEY, TEXT, Column, Table, table_csv, table_xlsx
from registry.services import MemberInput, household_register
from spf.exports import safe_cell, safe_row

FORMULAS = [
    '=HYPERLINK("http://evil.example/","Click")',
    "+cmd|' /C calc'!A0",
    "-1+1",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("text", FORMULAS)
def test_text_that_starts_like_a_formula_gets_a_leading_quote(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize(
    "value", ["Mary Mwansa", "SAM-000123", "", "0977 123 456", "'=already text", 5, -3, Decimal("-1.50"), 2.5, None]
)
def test_everything_else_is_left_as_it_is(value):
    assert safe_cell(value) == value
    assert type(safe_cell(value)) is type(value)


def test_a_row_is_made_safe_cell_by_cell():
    day = datetime.date(2026, 11, 1)
    assert safe_row(["=1", 1, day, "-x"]) == ["'=1", 1, day, "'-x"]


def formula_table() -> Table:
    table = Table(
        key="coverage",
        title="Coverage",
        columns=[
            Column("name", "Programme", TEXT),
            Column("count", "Households", COUNT),
            Column("amount", "Paid", MONEY),
        ],
    )
    for index, text in enumerate(FORMULAS):
        table.add([text, -index, Decimal("-12.50")])
    return table


def test_a_dashboard_table_in_csv_runs_no_formula_and_keeps_its_numbers():
    lines = list(csv.reader(io.StringIO(table_csv(formula_table(), heading=["=title", "@place"]).decode("utf-8-sig"))))

    assert lines[0] == ["'=title"] and lines[1] == ["'@place"]
    body = lines[lines.index([]) + 2 :]
    assert [line[0] for line in body] == ["'" + text for text in FORMULAS]
    assert [line[1] for line in body] == [str(-index) for index in range(len(FORMULAS))]
    assert {line[2] for line in body} == {"-12.50"}


def test_a_dashboard_table_in_excel_has_text_cells_not_formulas_and_numbers_as_numbers():
    sheet = load_workbook(io.BytesIO(table_xlsx(formula_table(), heading=["=title"]))).active

    cells = list(sheet.iter_rows(min_row=4))  # after the heading, a blank row and the header
    # (a carriage return comes back from the XML as a newline: the quote before it is what matters)
    assert [row[0].value[1:].replace("\n", "\r") for row in cells[:3]] == FORMULAS[:3]
    assert len(cells) == len(FORMULAS) and all(row[0].value.startswith("'") for row in cells)
    for name, count, amount in (row[:3] for row in cells):
        assert name.data_type == "s"
        assert isinstance(count.value, int) and isinstance(amount.value, (int, float, Decimal))
    assert sheet["A1"].value == "'=title" and sheet["A1"].data_type == "s"


def test_the_households_behind_a_figure_export_names_as_text(client, ministry_user, samfya_officer, samfya_village):
    household_register(
        acting_user=samfya_officer,
        village=samfya_village,
        duplicates_confirmed=True,
        members=[
            MemberInput(
                values={
                    "first_name": "@SUM(A1)",
                    "last_name": "Mwansa",
                    "sex": "F",
                    "relationship": "head",
                    "date_of_birth": datetime.date(1970, 1, 1),
                }
            )
        ],
    )
    client.force_login(ministry_user)

    as_csv = client.get("/dashboard/households/export.csv?figure=households")
    as_excel = client.get("/dashboard/households/export.xlsx?figure=households")

    lines = list(csv.reader(io.StringIO(b"".join(as_csv.streaming_content).decode("utf-8-sig"))))
    assert lines[3][1] == "'@SUM(A1) Mwansa"
    sheet = load_workbook(io.BytesIO(as_excel.content)).active
    head = sheet.cell(row=4, column=2)
    assert (head.value, head.data_type) == ("'@SUM(A1) Mwansa", "s")
    assert sheet.cell(row=4, column=8).value == 1  # the number of people, still a number
