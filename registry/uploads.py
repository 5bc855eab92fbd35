"""The checks every uploaded spreadsheet passes before anything reads it.

Three kinds of file come in from people and other systems: the household import (`registry.imports`),
programmes' beneficiary lists (`payments.beneficiaries`) and providers' reconciliation files
(`payments.reconciliation`). Each reads its rows its own way; all of them first go through here, so a
file is refused the same way wherever it is sent, with a message that names the file and the
problem, and before a row is read (so nothing is half-written):

* size: more than `SPREADSHEET_UPLOAD_MAX_BYTES` is refused from the request's Content-Length, before
  Django reads the body (`check_request_size`), and again from the file itself (`read_upload`);
* CSV text (`csv_text`): UTF-8 with or without a byte-order mark, and UTF-16 with one (Excel's
  "Unicode text"), are read. Anything else is refused naming the line: decoding Windows-1252,
  Latin-1 or an Arabic code page by guess would turn names with accents into other names, and a
  name read wrong becomes a duplicate or a missed match. A binary file (a workbook, a PDF, a picture)
  renamed .csv is refused saying what it seems to be;
* Excel workbooks (`open_workbook`): the zip is inspected before openpyxl opens anything. Its parts'
  declared sizes and compression ratios refuse a zip bomb (a few kilobytes that inflate to
  gigabytes); Python's zipfile never inflates a part past its declared size, so the declared sizes
  are the bound. An XML part with a DOCTYPE is refused (entity expansion, "billion laughs"; openpyxl
  parses with defusedxml as well, which refuses entities). A formula counts as the value the
  spreadsheet showed when the file was saved (openpyxl reads the saved result, it never calculates);
  a formula saved without its result (a file written by a program, never opened in a spreadsheet) is
  refused naming the cell, rather than read as an empty cell.
"""

import csv
import io
import re
import zipfile
from pathlib import PurePath, PurePosixPath
from typing import IO

import openpyxl
from defusedxml import ElementTree
from django.conf import settings

# Excel's "Unicode text" and Notepad's "Unicode": UTF-16 with its byte-order mark.
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# What a file that is not text starts with, and what to tell the person who sent it.
BINARY_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook or another zip file"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook or another Office file"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG picture"),
    (b"\xff\xd8\xff", "a JPEG picture"),
)
# The form fields and multipart headers around the file in an upload request: a few kilobytes; this
# leaves room for them without letting a file past the limit.
REQUEST_OVERHEAD_BYTES = 64 * 1024
# A workbook is a zip of a dozen XML parts (a sheet, shared strings, styles…); thousands of parts is
# not a workbook anyone typed, and each part costs a look.
XLSX_MAX_PARTS = 1_000
# Sheet XML compresses about 10:1 (a 100,000-household template: 420 MB in 41 MB); sheets of empty
# styled cells reach a few tens. A zip bomb compresses hundreds or a thousand to one.
XLSX_MAX_RATIO = 100
# Parts smaller than this may have any ratio: they cannot hurt, and tiny parts compress oddly.
XLSX_RATIO_FLOOR_BYTES = 1024 * 1024
# Where an XML part's DOCTYPE would be: before its root element, at its start.
XML_PROLOG_BYTES = 64 * 1024
# Sheet XML is scanned for formulas saved without their result in pieces this large.
SCAN_CHUNK_BYTES = 1024 * 1024
# Kept between two pieces, so that a cell cut in two is seen whole (a formula is at most 8,192 characters).
SCAN_OVERLAP_BYTES = 32 * 1024
DOCTYPE = re.compile(rb"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
# A formula element directly followed by the end of its cell, or by an empty value: no saved result.
UNCALCULATED_FORMULA = re.compile(
    rb"(?:</(?:\w+:)?f>|<(?:\w+:)?f\b[^>]*/>)\s*(?:<(?:\w+:)?v\s*/>|<(?:\w+:)?v>\s*</(?:\w+:)?v>)?\s*</(?:\w+:)?c>"
)
CELL_START = re.compile(rb"<(?:\w+:)?c\b[^>]*?\br=\"([A-Z]{1,3}[0-9]{1,7})\"")


class UploadRefused(ValueError):
    """An uploaded file that will not be read; the message names the file and the problem, for a person."""


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.0f} MB" if size >= 1024 * 1024 else f"{size / 1024:,.0f} kB"


def upload_limit() -> int:
    """The largest spreadsheet accepted, in bytes (`SPREADSHEET_UPLOAD_MAX_BYTES`)."""
    return settings.SPREADSHEET_UPLOAD_MAX_BYTES


def _too_large(what: str, size: int) -> UploadRefused:
    return UploadRefused(
        f"{what} is {_megabytes(size)}; files of at most {_megabytes(upload_limit())} are accepted. "
        "Split it into smaller files, or send it as CSV, which is smaller than Excel."
    )


def check_request_size(request) -> None:
    """Refuse an upload larger than the limit from its Content-Length, before Django reads the body."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return  # Django refuses a malformed length itself
    if length > upload_limit() + REQUEST_OVERHEAD_BYTES:
        raise _too_large("The upload", length)


def read_upload(upload) -> bytes:
    """The uploaded file's bytes, once its size is known to be within the limit (never read past it)."""
    name = PurePath(upload.name or "the file").name
    if upload.size is not None and upload.size > upload_limit():
        raise _too_large(name, upload.size)
    content = upload.read(upload_limit() + 1)
    if len(content) > upload_limit():
        raise _too_large(name, upload.size or len(content))
    return content


def check_stored_size(file, *, file_name: str) -> None:
    """The same limit for a file already stored (an import job's upload), before it is read."""
    if file.size > upload_limit():
        raise _too_large(file_name, file.size)


# --- CSV ---------------------------------------------------------------------------------------


def _looks_like(content: bytes) -> str | None:
    for signature, what in BINARY_SIGNATURES:
        if content.startswith(signature):
            return what
    return None


def csv_text(content: bytes, *, file_name: str) -> str:
    """The text of a CSV file: UTF-8 (with or without a byte-order mark) or UTF-16 with one; else refused."""
    what = _looks_like(content)
    if what is not None:
        hint = " Upload it as .xlsx." if what.startswith("an Excel") else ""
        raise UploadRefused(f"{file_name} is not text: it looks like {what}, not a CSV file.{hint}")
    if content.startswith(UTF16_BOMS):
        try:
            text = content.decode("utf-16")
        except UnicodeDecodeError as problem:
            raise UploadRefused(
                f"{file_name} starts as UTF-16 text but is damaged at byte {problem.start:,}; "
                "save it again as 'CSV UTF-8'."
            ) from problem
    else:
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as problem:
            start = problem.start + (3 if content.startswith(b"\xef\xbb\xbf") else 0)
            line = content.count(b"\n", 0, start) + 1
            around = content[max(0, start - 15) : start + 15].decode("utf-8", errors="replace")
            around = around.replace("\r", " ").replace("\n", " ").strip()
            raise UploadRefused(
                f"{file_name} is not UTF-8 text: line {line:,} has a character in another encoding "
                f"(near “{around}”). Names with accents would be read wrong, so nothing was read. "
                "In Excel choose Save As → 'CSV UTF-8 (Comma delimited)'; in LibreOffice tick "
                "'Edit filter settings' and choose Unicode (UTF-8)."
            ) from problem
    if "\x00" in text:
        raise UploadRefused(
            f"{file_name} is not text (it holds NUL bytes): save it as 'CSV UTF-8' or as an Excel workbook (.xlsx)."
        )
    return text


def csv_delimiter(text: str) -> str:
    """The separator of a CSV file from its first line: comma, semicolon (Excel where the decimal mark is a
    comma), tab (Excel's "Unicode text") or a bar, whichever the header uses most. Only the separator is
    guessed: quoting is always Excel's (csv.Sniffer, guessing it from a header, misread "" inside quotes)."""
    first_line = text.split("\n", 1)[0]
    return max((",", ";", "\t", "|"), key=first_line.count)


# --- Excel -------------------------------------------------------------------------------------


def xlsx_max_uncompressed() -> int:
    """The most a workbook may inflate to, in bytes (`SPREADSHEET_XLSX_MAX_UNCOMPRESSED_BYTES`)."""
    return settings.SPREADSHEET_XLSX_MAX_UNCOMPRESSED_BYTES


def _not_a_workbook(file_name: str, content_start: bytes, reason: str) -> UploadRefused:
    what = _looks_like(content_start)
    if what and what.startswith("an old Excel"):
        return UploadRefused(
            f"{file_name} is not a readable Excel workbook: it is an old .xls workbook, or one protected by a "
            "password. In Excel choose Save As → 'Excel Workbook (.xlsx)', without a password."
        )
    if what is None and content_start and all(32 <= byte < 127 or byte in b"\t\r\n" for byte in content_start[:512]):
        return UploadRefused(
            f"{file_name} is not a readable Excel workbook: it looks like a text (CSV) file. Rename it .csv."
        )
    return UploadRefused(f"{file_name} is not a readable Excel workbook ({reason}).")


def _sheet_names(archive: zipfile.ZipFile) -> dict[str, str]:
    """Worksheet part ("xl/worksheets/sheet1.xml") → the sheet's name as the spreadsheet shows it."""
    try:
        workbook = ElementTree.fromstring(archive.read("xl/workbook.xml"))
        relations = ElementTree.fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    except Exception:  # noqa: BLE001 - only for naming sheets in messages
        return {}
    targets = {}
    for relation in relations:
        target = relation.get("Target", "")
        target = target.lstrip("/") if target.startswith("/") else str(PurePosixPath("xl") / target)
        targets[relation.get("Id")] = target
    names = {}
    for element in workbook.iter():
        if element.tag.endswith("}sheet"):
            relation_id = next((value for key, value in element.attrib.items() if key.endswith("}id")), None)
            if relation_id in targets:
                names[targets[relation_id]] = element.get("name", "")
    return names


def _uncalculated_formula(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str | None:
    """The first cell of a worksheet part holding a formula saved without its result, or None."""
    carry = b""
    with archive.open(info) as part:
        while chunk := part.read(SCAN_CHUNK_BYTES):
            window = carry + chunk
            match = UNCALCULATED_FORMULA.search(window)
            if match is not None:
                cells = list(CELL_START.finditer(window, 0, match.start()))
                return cells[-1].group(1).decode() if cells else "?"
            carry = window[-SCAN_OVERLAP_BYTES:]
    return None


def _stream(source: bytes | IO[bytes]) -> IO[bytes]:
    if isinstance(source, bytes):
        return io.BytesIO(source)
    source.seek(0)
    return source


def check_workbook(source: bytes | IO[bytes], *, file_name: str) -> None:
    """Refuse a workbook that is not one, or that would blow up when opened (see the module)."""
    stream = _stream(source)
    start = stream.read(512)
    stream.seek(0)
    if not start.startswith(b"PK\x03\x04"):
        raise _not_a_workbook(file_name, start, "it is not an .xlsx file")
    try:
        archive = zipfile.ZipFile(stream)
        parts = archive.infolist()
    except (zipfile.BadZipFile, ValueError, EOFError) as problem:
        raise _not_a_workbook(file_name, start, f"the file is damaged: {problem}") from problem
    with archive:
        if len(parts) > XLSX_MAX_PARTS:
            raise UploadRefused(
                f"{file_name} is not a readable Excel workbook: it holds {len(parts):,} parts (a workbook has a few dozen)."
            )
        names = {part.filename for part in parts}
        if "xl/workbook.xml" not in names:
            raise UploadRefused(
                f"{file_name} is not a readable Excel workbook: it is a zip file of something else "
                "(an OpenDocument or Word file?). Save it from Excel or LibreOffice as 'Excel Workbook (.xlsx)'."
            )
        if any(part.flag_bits & 0x1 for part in parts):
            raise UploadRefused(
                f"{file_name} is not a readable Excel workbook: it is protected by a password; save it without one."
            )
        inflated = sum(part.file_size for part in parts)
        if inflated > xlsx_max_uncompressed():
            raise UploadRefused(
                f"{file_name} would inflate to {_megabytes(inflated)} when opened, more than the "
                f"{_megabytes(xlsx_max_uncompressed())} a workbook may: a damaged or malicious file, or a workbook "
                "too big to read. Nothing was read; send the rows as CSV."
            )
        for part in parts:
            ratio = part.file_size / max(part.compress_size, 1)
            if part.file_size > XLSX_RATIO_FLOOR_BYTES and ratio > XLSX_MAX_RATIO:
                raise UploadRefused(
                    f"{file_name} is not a readable Excel workbook: its part {part.filename} is compressed "
                    f"{ratio:,.0f} to 1 (a zip bomb; real workbooks compress about 10 to 1). Nothing was read."
                )
        sheets = None
        for part in parts:
            if not part.filename.endswith((".xml", ".rels")):
                continue
            with archive.open(part) as stream:
                prolog = stream.read(XML_PROLOG_BYTES)
            if DOCTYPE.search(prolog):
                raise UploadRefused(
                    f"{file_name} is not a readable Excel workbook: its part {part.filename} declares XML entities, "
                    "which Excel never writes (an entity expansion attack). Nothing was read."
                )
            if part.filename.startswith("xl/worksheets/"):
                cell = _uncalculated_formula(archive, part)
                if cell is not None:
                    if sheets is None:
                        sheets = _sheet_names(archive)
                    sheet = sheets.get(part.filename, part.filename)
                    raise UploadRefused(
                        f"{file_name}: cell {cell} of sheet '{sheet}' holds a formula whose result was never "
                        "calculated (the file was written by a program, not saved from a spreadsheet). Open it in "
                        "Excel or LibreOffice and save it, or type the value instead of the formula."
                    )


def open_workbook(source: bytes | IO[bytes], *, file_name: str):
    """The workbook, read-only and with each formula's saved result, once `check_workbook` has passed."""
    check_workbook(source, file_name=file_name)
    try:
        return openpyxl.load_workbook(_stream(source), read_only=True, data_only=True)
    except Exception as problem:  # noqa: BLE001 - openpyxl raises many kinds for a damaged file
        raise UploadRefused(f"{file_name} is not a readable Excel workbook ({problem}).") from problem


def read_rows_safely(rows, *, file_name: str, reader=None):
    """The rows of a CSV reader or a read-only sheet. A file that breaks off while its rows are read (damaged
    sheet XML, an entity defusedxml refuses, a CSV field past the csv module's limit) ends in UploadRefused
    naming the file (and the line), not in a crash half-way through."""
    try:
        yield from rows
    except UploadRefused:
        raise
    except csv.Error as problem:
        line = f" at line {reader.line_num:,}" if reader is not None else ""
        raise UploadRefused(f"{file_name} cannot be read as CSV{line}: {problem}.") from problem
    except Exception as problem:  # noqa: BLE001 - the sheet XML is parsed as the rows are read
        raise UploadRefused(
            f"{file_name} is not a readable Excel workbook ({type(problem).__name__}: {problem})."
        ) from problem


def sniff_refusal(upload, *, file_name: str) -> None:
    """Refuse at once a file whose first bytes already say it is not what its name says (a workbook named
    .csv, a PDF named .xlsx); the full checks run when the file is read."""
    start = upload.read(512)
    upload.seek(0)
    if PurePath(file_name).suffix.lower() == ".xlsx":
        if not start.startswith(b"PK\x03\x04"):
            raise _not_a_workbook(file_name, start, "it is not an .xlsx file")
    elif _looks_like(start) is not None or (b"\x00" in start and not start.startswith(UTF16_BOMS)):
        csv_text(start, file_name=file_name)  # refuses, saying what the file seems to be


__all__ = [
    "UploadRefused",
    "check_request_size",
    "check_stored_size",
    "check_workbook",
    "csv_delimiter",
    "csv_text",
    "open_workbook",
    "read_rows_safely",
    "read_upload",
    "sniff_refusal",
    "upload_limit",
]
