"""The dashboard's tables, and their exports to CSV and Excel.

A table is what the page shows, the export writes and the API returns: the
same columns and the same values, so the three never disagree. A cell keeps
its value (a number, a Decimal, a percentage) apart from how it is written on
the page, and the address of the households behind it.
"""

import csv
import datetime
import io
from dataclasses import dataclass, field
from decimal import Decimal
from html import escape

from django.utils.safestring import mark_safe
from openpyxl import Workbook
from openpyxl.styles import Font

from spf.exports import safe_cell, safe_row

TEXT, COUNT, PERCENT, MONEY, DAYS = "text", "count", "percent", "money", "days"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    kind: str = COUNT


@dataclass(slots=True)
class Cell:
    value: object = None
    href: str = ""
    currency: str = ""
    kind: str = TEXT

    @property
    def text(self) -> str:
        value = self.value
        if value is None or value == "":
            return "—"
        if self.kind == PERCENT:
            return f"{value:.1f}%"
        if self.kind == DAYS:
            return f"{value:g}"
        if isinstance(value, Decimal):
            return f"{self.currency} {value:,.2f}".strip()
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)


@dataclass(slots=True)
class Row:
    cells: list[Cell]
    # A split's rows follow the whole they split; the page indents them.
    is_part: bool = False

    def html(self) -> str:
        """The row's cells as HTML, the first a row header. Written here rather than in the template: a
        busy district split by age band is thousands of cells, and the template language took a third
        of the page's time writing them one tag at a time."""
        return mark_safe(self._cells_html())  # noqa: S308 - every value in it is escaped

    def _cells_html(self) -> str:
        out = []
        for index, cell in enumerate(self.cells):
            tag = "th" if index == 0 else "td"
            scope = ' scope="row"' if index == 0 else ""
            text = escape(cell.text)
            if cell.href:
                text = f'<a href="{escape(cell.href)}">{text}</a>'
            out.append(f'<{tag}{scope} class="kind-{cell.kind}">{text}</{tag}>')
        return "".join(out)


_ROW, _PART_ROW = "<tr>", '<tr class="part">'


@dataclass
class Table:
    key: str
    title: str
    columns: list[Column]
    rows: list[Row] = field(default_factory=list)
    note: str = ""
    # When the page shows part of the table (the export has it all): where the rest is, and in words.
    more_href: str = ""
    more_label: str = ""

    def add(self, values: list, *, hrefs: dict[int, str] | None = None, currency: str = "", is_part: bool = False):
        hrefs = hrefs or {}
        kinds = self._kinds
        self.rows.append(
            Row(
                cells=[
                    Cell(
                        value,
                        # Nothing behind a zero: no link to an empty list.
                        hrefs.get(index, "") if value else "",
                        currency if isinstance(value, Decimal) else "",
                        kinds[index],
                    )
                    for index, value in enumerate(values)
                ],
                is_part=is_part,
            )
        )

    @property
    def _kinds(self) -> list[str]:
        return [column.kind for column in self.columns]

    def body_html(self) -> str:
        """Every row as HTML in one string, for the page's table body: one template variable instead of a
        loop of template tags per row (a split table has hundreds of rows)."""
        return mark_safe(  # noqa: S308 - every value in it is escaped by Row
            "".join(f"{_PART_ROW if row.is_part else _ROW}{row._cells_html()}</tr>\n" for row in self.rows)
        )

    def records(self) -> list[dict]:
        """The rows as {column key: value}, for the API (money as a string, to keep its decimals)."""
        return [
            {
                column.key: (str(cell.value) if isinstance(cell.value, Decimal) else cell.value)
                for column, cell in zip(self.columns, row.cells, strict=True)
            }
            for row in self.rows
        ]

    def header(self) -> list[str]:
        return [f"{c.label} (%)" if c.kind == PERCENT else c.label for c in self.columns]


def _plain(value):
    """A cell as an export writes it: a date as ISO text, and text never a formula (spf/exports.py)."""
    if isinstance(value, datetime.date):
        return value.isoformat()
    return "" if value is None else safe_cell(value)


def table_csv(table: Table, *, heading: list[str]) -> bytes:
    """The table as CSV (UTF-8 with a byte order mark, so a spreadsheet opens the names right), under
    a few lines that say what was counted where and when."""
    out = io.StringIO()
    writer = csv.writer(out)
    for line in heading:
        writer.writerow([safe_cell(line)])
    writer.writerow([])
    writer.writerow(safe_row(table.header()))
    for row in table.rows:
        writer.writerow([_plain(cell.value) for cell in row.cells])
    return ("\ufeff" + out.getvalue()).encode()


def table_xlsx(table: Table, *, heading: list[str]) -> bytes:
    """The table as an Excel workbook: the heading lines, then the columns with numbers kept as numbers."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = table.title[:31]
    for line in heading:
        sheet.append([safe_cell(line)])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append([])
    sheet.append(safe_row(table.header()))
    for cell in sheet[sheet.max_row]:
        cell.font = Font(bold=True)
    for row in table.rows:
        sheet.append([_plain(cell.value) for cell in row.cells])
        for column, written in zip(table.columns, sheet[sheet.max_row], strict=False):
            if column.kind == MONEY:
                written.number_format = "#,##0.00"
            elif column.kind == COUNT:
                written.number_format = "#,##0"
    for index, column in enumerate(table.columns, start=1):
        width = max([len(column.label)] + [len(row.cells[index - 1].text) for row in table.rows[:200]]) + 2
        sheet.column_dimensions[sheet.cell(row=1, column=index).column_letter].width = min(width, 48)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


__all__ = ["COUNT", "DAYS", "MONEY", "PERCENT", "TEXT", "Cell", "Column", "Row", "Table", "table_csv", "table_xlsx"]
