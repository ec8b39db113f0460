"""Documents a user attaches (PDF, Word, PowerPoint, Excel, HTML) as the text a model reads.

What a file is comes from its bytes: a PDF starts with ``%PDF-``; DOCX, PPTX and XLSX are
Office Open XML zip files whose parts say which (``word/``, ``ppt/``, ``xl/``); HTML is UTF-8
text that opens with a doctype or an ``<html>`` tag, or is named ``.html``. The text comes from
well-kept libraries (pypdf, python-docx, python-pptx, openpyxl, lxml), never from running the
file. A document with no text (a scanned PDF) or one that cannot be read is refused with a
message that says why.

Pure functions over bytes; must not import models, services, views or the websocket layer.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator

import docx
import lxml.html
from openpyxl import load_workbook
from pptx import Presentation
from pypdf import PdfReader

from chatui.errors import ChatError

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HTML = "text/html"
DOCUMENT_MIMES = (PDF, DOCX, PPTX, XLSX, HTML)
_OOXML_PARTS = (("word/", DOCX), ("ppt/", PPTX), ("xl/", XLSX))
MAX_PDF_PAGES = 2000  # a bound on the work one upload may ask for
MAX_UNZIPPED_BYTES = 200 * 1024 * 1024  # an Office file that unpacks past this is refused
MAX_SHEET_ROWS = 20000

# Messages users see (tests import these).
PDF_NO_TEXT = (
    "{name} has no text layer (it looks like a scanned image), so a model cannot read it. "
    "Run it through OCR first, or paste the part that matters."
)
UNREADABLE_DOCUMENT = "{name} could not be read as a {kind} document."
DOCUMENT_CUT = (
    "{name} is longer than {model} reads: only its first {percent}% (about {tokens} tokens) "
    "is sent."
)
CUT_MARK = "[... the rest of {name} was cut to fit the model's context ...]"

_KIND_WORDS = {PDF: "PDF", DOCX: "Word", PPTX: "PowerPoint", XLSX: "Excel", HTML: "HTML"}
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>])", re.I | re.S)


def document_mime(data: bytes, name: str) -> str | None:
    """The document type of `data`, or None when it is not one of ours."""
    if data.startswith(b"%PDF-"):
        return PDF
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = archive.namelist()
                unzipped = sum(info.file_size for info in archive.infolist())
        except (zipfile.BadZipFile, ValueError):
            return None
        if unzipped > MAX_UNZIPPED_BYTES:  # a zip bomb: read as nothing we know
            return None
        if "[Content_Types].xml" not in names:
            return None
        for prefix, mime in _OOXML_PARTS:
            if any(n.startswith(prefix) for n in names):
                return mime
        return None
    is_html = _HTML_START.match(data[:4096]) or name.lower().endswith((".html", ".htm"))
    if is_html and _is_utf8(data):
        return HTML
    return None


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return True


def document_text(data: bytes, *, name: str, mime: str) -> str:
    """The text of a document (mime from `document_mime`); raises `ChatError` when there is
    none to read."""
    reader = _READERS[mime]
    try:
        text = reader(data)
    except ChatError:
        raise
    except Exception:  # each library raises its own errors on a broken file
        raise ChatError(UNREADABLE_DOCUMENT.format(name=name, kind=_KIND_WORDS[mime])) from None
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if not text and mime == PDF:
        raise ChatError(PDF_NO_TEXT.format(name=name))
    if not text:
        raise ChatError(UNREADABLE_DOCUMENT.format(name=name, kind=_KIND_WORDS[mime]))
    return text


def cut_to_fit(text: str, *, name: str, max_chars: int | None) -> tuple[str, float]:
    """`text`, or its start with a mark saying the rest was cut, within `max_chars`; and the
    share of it that was kept (1.0: all of it)."""
    if max_chars is None or len(text) <= max_chars:
        return text, 1.0
    mark = "\n\n" + CUT_MARK.format(name=name)
    kept = text[: max(0, max_chars - len(mark))]
    return kept + mark, len(kept) / len(text)


def _pdf(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    pages = reader.pages[:MAX_PDF_PAGES]
    return "\n\n".join((page.extract_text() or "").strip() for page in pages)


def _docx(data: bytes) -> str:
    document = docx.Document(io.BytesIO(data))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        parts.extend(" | ".join(cell.text.strip() for cell in row.cells) for row in table.rows)
    return "\n".join(parts)


def _pptx_texts(data: bytes) -> Iterator[str]:
    for number, slide in enumerate(Presentation(io.BytesIO(data)).slides, start=1):
        texts = [s.text_frame.text for s in slide.shapes if s.has_text_frame]
        yield f"## Slide {number}\n" + "\n".join(t for t in texts if t.strip())


def _pptx(data: bytes) -> str:
    return "\n\n".join(_pptx_texts(data))


def _xlsx(data: bytes) -> str:
    workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    sheets = []
    for sheet in workbook.worksheets:
        rows = []
        for row in sheet.iter_rows(values_only=True, max_row=MAX_SHEET_ROWS):
            cells = ["" if v is None else str(v) for v in row]
            if any(cells):
                rows.append(" | ".join(cells))
        sheets.append(f"## Sheet: {sheet.title}\n" + "\n".join(rows))
    workbook.close()
    return "\n\n".join(sheets)


def _html(data: bytes) -> str:
    root = lxml.html.document_fromstring(data)
    for node in root.xpath("//script | //style | //noscript | //template"):
        node.drop_tree()
    for node in root.xpath("//br | //p | //div | //li | //tr | //h1 | //h2 | //h3 | //h4"):
        node.tail = "\n" + (node.tail or "")
    lines = (" ".join(line.split()) for line in root.text_content().splitlines())
    return "\n".join(line for line in lines if line)


_READERS = {PDF: _pdf, DOCX: _docx, PPTX: _pptx, XLSX: _xlsx, HTML: _html}
