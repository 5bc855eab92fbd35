"""Malformed spreadsheets, built in the test (no binary is committed): what people and other systems send
by mistake, and what an attacker sends on purpose. Used by the import, beneficiary list and
reconciliation tests."""

import io
import struct
import zipfile

import openpyxl

SHEET = "xl/worksheets/sheet1.xml"
SHARED_STRINGS = "xl/sharedStrings.xml"

# Ten levels of ten: a parser that expands entities builds a billion copies of "lol" from a few hundred bytes.
BILLION_LAUGHS_DOCTYPE = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{level} "{("&lol" + (str(level - 1) if level > 1 else "") + ";") * 10}">\n'
        for level in range(1, 10)
    )
    + "]>\n"
)


def workbook_bytes(rows: list[list], *, title: str = "Sheet") -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def replace_part(content: bytes, name: str, data: bytes) -> bytes:
    """The workbook with one part's XML replaced (the others copied as they are)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, data if info.filename == name else source.read(info.filename))
    return out.getvalue()


def part_text(content: bytes, name: str) -> str:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        return archive.read(name).decode()


def zip_bomb_xlsx(rows: list[list], *, inflated_mb: int = 16) -> bytes:
    """A real workbook whose sheet XML is padded with `inflated_mb` MB of spaces: deflated about a thousand
    to one, so a few kilobytes inflate to megabytes (or, scaled up, gigabytes)."""
    content = workbook_bytes(rows)
    sheet = part_text(content, SHEET)
    head, tail = sheet.split("<sheetData>", 1)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(content)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target,
    ):
        for info in source.infolist():
            if info.filename != SHEET:
                target.writestr(info.filename, source.read(info.filename))
                continue
            with target.open(SHEET, "w") as part:
                part.write(head.encode())
                padding = b" " * (1024 * 1024)
                for _ in range(inflated_mb):
                    part.write(padding)
                part.write(("<sheetData>" + tail).encode())
    return out.getvalue()


def declare_size(content: bytes, name: str, size: int) -> bytes:
    """The zip with `name`'s declared uncompressed size changed in both its headers: a part that says it
    inflates to `size` (gigabytes, in a file of kilobytes)."""
    data = bytearray(content)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        info = archive.getinfo(name)
    struct.pack_into("<I", data, info.header_offset + 22, size)  # local file header: uncompressed size
    end = data.rindex(b"PK\x05\x06")  # end of central directory: how many entries, and where they start
    entries, position = struct.unpack_from("<H", data, end + 10)[0], struct.unpack_from("<I", data, end + 16)[0]
    for _ in range(entries):
        name_length, extra_length, comment_length = struct.unpack_from("<HHH", data, position + 28)
        if data[position + 46 : position + 46 + name_length] == name.encode():
            struct.pack_into("<I", data, position + 24, size)  # central directory entry: uncompressed size
        position += 46 + name_length + extra_length + comment_length
    return bytes(data)


def billion_laughs_xlsx(rows: list[list]) -> bytes:
    """A workbook whose sheet declares nested XML entities and uses the deepest one in a cell."""
    content = workbook_bytes(rows)
    sheet = part_text(content, SHEET)
    body = sheet.split("?>", 1)[1] if sheet.startswith("<?xml") else sheet
    body = body.replace(
        "</sheetData>", '<row r="99"><c r="A99" t="inlineStr"><is><t>&lol9;</t></is></c></row></sheetData>'
    )
    return replace_part(content, SHEET, (BILLION_LAUGHS_DOCTYPE + body).encode())


def with_cell_xml(content: bytes, cell: str, xml: str) -> bytes:
    """The workbook with the cell `cell` (which must exist) replaced by raw cell XML."""
    import re

    sheet = part_text(content, SHEET)
    sheet, count = re.subn(rf'<c r="{cell}"[^>]*?(?:/>|>.*?</c>)', xml, sheet, count=1)
    assert count == 1, f"no cell {cell} in the sheet"
    return replace_part(content, SHEET, sheet.encode())
