"""What every CSV and Excel file the system produces does to a cell: nothing a spreadsheet will run.

Uploaded files, partner systems and the front desk put text into the registry that a spreadsheet
would read as a formula when an officer opens an export: `=HYPERLINK("http://…","Click")`,
`+cmd|' /C calc'!A0`, `-1+1`, `@SUM(A1:A9)`, or a cell starting with a tab or a carriage return
(which some spreadsheets strip before reading the rest as a formula). Such text is kept as it was
given (it is data, and it may be valid data); only on its way out into a CSV or Excel file it gets a
leading single quote, the spreadsheet's own mark for "this is text". Numbers, dates and empty cells
are left alone, so a count or an amount stays a number.

Every export of personal or user-given data goes through `safe_cell` (dashboard tables and lists,
import error and duplicate reports, beneficiary list reports, reconciliation reports, the import
template). The payment file for a provider does not (payments/payroll.py): a bank's system reads it
field by field, and a wallet number may rightly start with "+".
"""

from collections.abc import Iterable
from typing import Any

# The first characters that make a spreadsheet read a cell as a formula (OWASP's list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value as a spreadsheet cell that cannot run: text starting like a formula gets a leading quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    """`safe_cell` for every cell of a row."""
    return [safe_cell(value) for value in values]


__all__ = ["FORMULA_STARTS", "safe_cell", "safe_row"]
