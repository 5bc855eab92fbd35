"""Writing many rows at once with PostgreSQL's COPY, for the bulk writers of every app.

`bulk_create` builds a model instance and an INSERT value per field: for the
hundreds of thousands of rows of an import or a summary refresh most of the
time went there, not to the database. COPY takes the rows as CSV text.
"""

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from django.db import connection, models

# Characters of COPY text handed to the driver at a time: large enough that a
# read is a few hundred rows, small enough that the text of the whole file is
# never held at once.
COPY_CHUNK_CHARACTERS = 256 * 1024


class CsvRows(io.TextIOBase):
    """A file that COPY reads from: rows formatted as CSV as the driver asks for them.

    PostgreSQL works through one chunk while the next is formatted here, so the
    formatting (Python, one core) and the writing (the database, the other)
    overlap, and only a chunk of text exists at a time. CSV because Python's
    csv module writes a row in C, where formatting each value for COPY's text
    format was a Python call per value (five million at 100,000 households).
    """

    def __init__(self, rows: Iterable[Sequence]):
        self.rows = iter(rows)
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\n")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> str:
        wanted = COPY_CHUNK_CHARACTERS if size is None or size < 0 else max(size, COPY_CHUNK_CHARACTERS)
        writerow, buffer = self.writer.writerow, self.buffer
        for row in self.rows:
            writerow(row)
            if buffer.tell() >= wanted:
                break
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text


def copy_rows(cursor, model: type[models.Model], columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """COPY the rows (sequences in the order of `columns`) into the model's table, as CSV.

    `cursor` is the driver's own (`raw_cursor`). In CSV an unquoted empty field
    is NULL, so the columns that cannot be NULL are named FORCE_NOT_NULL: there
    it is "". Values are written with str(): dates and timestamps as ISO text,
    True as "True" (PostgreSQL reads both); JSON columns must be given as JSON
    text.
    """
    quote = connection.ops.quote_name  # a column may be called by a word SQL keeps for itself ("group")
    not_null = [field.column for field in model._meta.concrete_fields if field.column in columns and not field.null]
    cursor.copy_expert(
        f"COPY {quote(model._meta.db_table)} ({', '.join(map(quote, columns))}) FROM STDIN "
        f"WITH (FORMAT csv, FORCE_NOT_NULL ({', '.join(map(quote, not_null))}))",
        CsvRows(rows),
        size=COPY_CHUNK_CHARACTERS,
    )


@contextmanager
def raw_cursor() -> Iterator:
    """The driver's own cursor (psycopg2's, for copy_expert), closed afterwards."""
    with connection.cursor() as django_cursor:
        yield django_cursor.cursor


def copy_available() -> bool:
    """COPY is PostgreSQL's; the embedded SQLite of `make run` writes with `bulk_create`."""
    return connection.vendor == "postgresql"
