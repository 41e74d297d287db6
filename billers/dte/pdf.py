"""The printed form of a signed DTE: a PDF in the SII's layout, drawn straight from the ``<DTE>`` XML.

Plain Python, no Django. The XML is the only input, so what is printed is what was signed and sent.
Layout follows the SII's printing rules: the red box (RUT, document name, folio) top right with the
SII office under it, the emisor top left, the receptor, the detail, references, totals bottom right
and the timbre (PDF417 of the TED) bottom left, with the resolution caption under it.

The TED in the barcode is the namespace-free, whitespace-free serialisation of the ``<TED>`` element
in ISO-8859-1, which is what the SII's readers verify against ``FRMT``. ``pdf417gen`` would encode a
``str`` as UTF-8, so it is always given bytes.

Drawing uses the reportlab canvas directly (no platypus) with the standard fonts: they use
WinAnsiEncoding, which covers Spanish (áéíóúñÑ°«»—). ``invariant`` makes the output byte-for-byte
reproducible for the same XML.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from cl_sii.rut import Rut
from lxml import etree
from pdf417gen.compaction import compact
from pdf417gen.data import ERROR_CORRECTION_FACTORS
from pdf417gen.encoding import encode_rows, get_padding, validate_barcode_size
from pdf417gen.util import chunks
from PIL import Image
from reportlab import rl_config
from reportlab.lib import colors
from reportlab.lib.pagesizes import LETTER
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

# The same flattening verify_signatures() applies to the DD before checking FRMT.
from .display import document_name
from .types import reference_name
from .xml import SII_NS, flattened_ted_part

# Binary (Flate only) streams: ASCII85 on top made the PDF a quarter larger and its pure-Python encoder
# cost ~2 ms a document. A process-wide setting: the product draws no other PDF that would want it.
rl_config.useA85 = 0

_S = f"{{{SII_NS}}}"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)

TED_COLUMNS = 12
TED_SECURITY_LEVEL = 5

CORRECTION_CODES = {"1": "Anula documento", "2": "Corrige texto", "3": "Corrige montos"}
CERTIFICATION_MARK = "DOCUMENTO DE CERTIFICACIÓN — SIN VALIDEZ TRIBUTARIA"

RED = colors.Color(0.85, 0, 0)
GREY = colors.Color(0.9, 0.9, 0.9)
MARGIN = 15 * mm
FONT, BOLD = "Helvetica", "Helvetica-Bold"
ROW_FONT_SIZE = 8
ROW_LEADING = 10
# Modules of 0.22 mm read well on laser and 203-dpi thermal printers; the PDF417 floor is 0.17 mm
# (0.0067 in), so a long TED shrinks towards it rather than pushing the totals off the page. Rows are
# three modules high (PDF417's recommended ratio). 12 columns make the barcode 273 modules wide: 60 mm.
TED_MODULE, TED_MIN_MODULE, TED_MAX_HEIGHT = 0.22 * mm, 0.17 * mm, 55 * mm
TED_ROW_RATIO = 3


def ted_barcode_bytes(xml_bytes: bytes) -> bytes:
    """Exactly the bytes the PDF417 timbre encodes: the flattened ``<TED>`` in ISO-8859-1."""
    return _ted_bytes(_documento(xml_bytes))


def render_pdf(
    xml_bytes: bytes,
    *,
    certification: bool,
    resolution_number: int | None = None,
    resolution_year: int | None = None,
    pagesize: tuple[float, float] = LETTER,
) -> bytes:
    """The PDF of a signed ``<DTE>``.

    ``resolution_number``/``resolution_year`` are the emisor's SII authorisation (``NroResol`` and
    the year of ``FchResol``); they are not in the DTE itself. Without them the caption under the
    timbre only says where to verify the document. ``certification`` adds the mark that says the
    document has no tax value (the SII's certification environment; resolution number 0).
    """
    documento = _documento(xml_bytes)
    doc = _read(documento)
    barcode = _barcode_image(_ted_bytes(documento))
    resolution = (
        f"Res. Ex. SII N° {resolution_number} de {resolution_year} - " if resolution_number is not None and resolution_year else ""
    )
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=pagesize, invariant=True, pageCompression=1)
    canvas.setTitle(f"{doc.name} N° {doc.folio}")
    canvas.setAuthor(doc.emisor_name)
    _Layout(canvas, pagesize, doc, barcode, f"{resolution}Verifique documento: www.sii.cl", certification).draw()
    canvas.save()
    return buffer.getvalue()


def _documento(xml_bytes: bytes) -> etree._Element:
    root = etree.fromstring(xml_bytes, _PARSER)
    documento = root.find(_S + "Documento")
    if root.tag != _S + "DTE" or documento is None:
        raise ValueError("expected a signed <DTE> with a <Documento>")
    return documento


def _ted_bytes(documento: etree._Element) -> bytes:
    ted = documento.find(_S + "TED")
    if ted is None:
        raise ValueError("the DTE has no <TED>: only stamped documents can be printed")
    return etree.tostring(flattened_ted_part(ted), encoding="ISO-8859-1", xml_declaration=False)


# pdf417gen's row patterns have 1 for a bar; in a greyscale image 0 is black.
_BAR_SHADES = bytes.maketrans(b"01", b"\xff\x00")


def _barcode_image(ted: bytes) -> Image.Image:
    """One pixel per module; the canvas scales it, so the PDF carries a tiny lossless image."""
    codes = _pdf417_rows(ted, TED_COLUMNS, TED_SECURITY_LEVEL)
    bits = "".join(format(value, "b") for row in codes for value in row)
    width = len(bits) // len(codes)
    return Image.frombytes("L", (width, len(codes)), bits.encode("ascii").translate(_BAR_SHADES))


def _pdf417_rows(data: bytes, columns: int, level: int) -> list[list[int]]:
    """``pdf417gen.encode(data, columns, level)``, the same rows, with the error correction computed by
    ``pdf417_error_correction`` (pdf417gen's own loop was 8–10 ms of a TED's ~700 code words)."""
    words = list(compact(data))
    ec_count = 2 ** (level + 1)
    padding = get_padding(len(words), ec_count, columns)
    length_descriptor = len(words) + len(padding) + 1
    validate_barcode_size(length_descriptor, math.ceil((length_descriptor + ec_count) / columns))
    code_words = [length_descriptor, *words, *padding]
    code_words += pdf417_error_correction(code_words, level)
    return list(encode_rows(list(chunks(code_words, columns)), columns, level))


# PDF417's Reed–Solomon error correction over GF(929), as a shift register of 2^(level+1) cells, kept in
# one Python integer of _CELL bits per cell: a step is a shift and an addition of a precomputed row
# instead of a Python loop over the cells. A cell gathers at most one addend (< 929) per step for as many
# steps as there are cells (≤ 512), so it never exceeds 512 × 928 < 2^19 and never carries into the next.
_CELL = 20
_CELL_MASK = (1 << _CELL) - 1


@cache
def _ec_rows(level: int) -> tuple[int, ...]:
    """For each feedback value t, the addends (929 − t·factor mod 929) of every cell, packed."""
    factors = ERROR_CORRECTION_FACTORS[level]
    return tuple(
        sum(((929 - t * factor % 929) % 929) << (_CELL * cell) for cell, factor in enumerate(factors))
        for t in range(929)
    )


def pdf417_error_correction(data_words: list[int], level: int) -> list[int]:
    """The error-correction code words of ``data_words`` at security ``level`` (0–8), exactly those of
    ``pdf417gen.error_correction.compute_error_correction_code_words``."""
    count = 2 ** (level + 1)
    rows, top, everything = _ec_rows(level), _CELL * (count - 1), (1 << (_CELL * count)) - 1
    register = 0
    for word in data_words:
        register = ((register << _CELL) & everything) + rows[(word + (register >> top)) % 929]
    cells = [(register >> (_CELL * cell)) & _CELL_MASK for cell in range(count)]
    return [929 - value if value else 0 for value in (cell % 929 for cell in reversed(cells))]


@dataclass(frozen=True)
class _Line:
    name: str
    description: str
    quantity: str
    price: str
    discount: str
    amount: str


@dataclass(frozen=True)
class _Doc:
    name: str
    folio: str
    fecha: str
    emisor_rut: str
    emisor_name: str
    emisor_lines: tuple[str, ...]
    sii_office: str
    receptor: tuple[tuple[str, str], ...]
    lines: tuple[_Line, ...]
    references: tuple[tuple[str, str, str, str], ...]
    totals: tuple[tuple[str, str], ...]


def _text(element: etree._Element | None, tag: str) -> str:
    return "" if element is None else (element.findtext(_S + tag) or "").strip()


def _first(element: etree._Element | None, *tags: str) -> str:
    return next((value for value in (_text(element, tag) for tag in tags) if value), "")


def _rut(value: str) -> str:
    return Rut(value).verbose if value else ""


def _number(value: str) -> str:
    """Chilean notation: dots between thousands, a comma before decimals (``1.234,5``)."""
    number = Decimal(value)
    sign = "-" if number < 0 else ""
    whole, _, fraction = format(abs(number), "f").partition(".")
    fraction = fraction.rstrip("0")
    return sign + f"{int(whole):,}".replace(",", ".") + ("," + fraction if fraction else "")


def _money(value: str) -> str:
    return f"$ {_number(value)}" if value else ""


def _date(value: str) -> str:
    year, month, day = value.split("-") if value.count("-") == 2 else ("", "", "")
    return f"{day}-{month}-{year}" if year else value


def _read(documento: etree._Element) -> _Doc:
    encabezado = documento.find(_S + "Encabezado")
    id_doc = encabezado.find(_S + "IdDoc")
    emisor = encabezado.find(_S + "Emisor")
    receptor = encabezado.find(_S + "Receptor")
    totales = encabezado.find(_S + "Totales")
    tipo = int(_text(id_doc, "TipoDTE"))

    address = ", ".join(v for v in (_text(emisor, "DirOrigen"), _text(emisor, "CmnaOrigen"), _text(emisor, "CiudadOrigen")) if v)
    emisor_lines = tuple(
        line for line in (
            _first(emisor, "GiroEmis", "GiroEmisor"),
            address,
            _text(emisor, "CorreoEmisor"),
        ) if line
    )
    receptor_rows = tuple(
        (label, value) for label, value in (
            ("Señor(es)", _text(receptor, "RznSocRecep")),
            ("R.U.T.", _rut(_text(receptor, "RUTRecep"))),
            ("Giro", _text(receptor, "GiroRecep")),
            ("Dirección", _text(receptor, "DirRecep")),
            ("Comuna", _text(receptor, "CmnaRecep")),
            ("Ciudad", _text(receptor, "CiudadRecep")),
            ("Contacto", _first(receptor, "Contacto", "CorreoRecep")),
        ) if value
    )

    lines = []
    for detalle in documento.iterfind(_S + "Detalle"):
        name = _text(detalle, "NmbItem") + (" (exento)" if _text(detalle, "IndExe") == "1" else "")
        quantity = _text(detalle, "QtyItem")
        unit = _text(detalle, "UnmdItem")
        discount = _money(_text(detalle, "DescuentoMonto"))
        percent = _text(detalle, "DescuentoPct")
        lines.append(_Line(
            name=name,
            description=_text(detalle, "DscItem"),
            quantity=" ".join(v for v in (_number(quantity) if quantity else "", unit) if v),
            price=_money(_text(detalle, "PrcItem")),
            discount=f"{discount} ({_number(percent)}%)" if percent else discount,
            amount=_money(_text(detalle, "MontoItem")),
        ))

    references = tuple(
        (
            reference_name(_text(ref, "TpoDocRef")),
            _text(ref, "FolioRef"),
            _date(_text(ref, "FchRef")),
            _text(ref, "RazonRef") or CORRECTION_CODES.get(_text(ref, "CodRef"), _text(ref, "CodRef")),
        )
        for ref in documento.iterfind(_S + "Referencia")
    )

    # Boletas carry no TasaIVA; the rate is the same 19%.
    iva_rate = _number(_text(totales, "TasaIVA") or "19")
    totals = [(label, _money(_text(totales, tag))) for label, tag in (("Neto", "MntNeto"), ("Exento", "MntExe"))]
    totals.append((f"IVA {iva_rate}%", _money(_text(totales, "IVA"))))
    totals += [
        (f"Impuesto adicional ({_text(imp, 'TipoImp')})", _money(_text(imp, "MontoImp")))
        for imp in totales.iterfind(_S + "ImptoReten")
    ]
    totals += [("Monto no facturable", _money(_text(totales, "MontoNF"))), ("Total", _money(_text(totales, "MntTotal")))]

    return _Doc(
        name=document_name(tipo).upper(),
        folio=_text(id_doc, "Folio"),
        fecha=_date(_text(id_doc, "FchEmis")),
        emisor_rut=_rut(_text(emisor, "RUTEmisor")),
        emisor_name=_first(emisor, "RznSoc", "RznSocEmisor"),
        emisor_lines=emisor_lines,
        sii_office=_text(emisor, "CmnaOrigen").upper(),
        receptor=receptor_rows,
        lines=tuple(lines),
        references=references,
        totals=tuple((label, value) for label, value in totals if value),
    )


# A detail line with its name and description already wrapped to the column width.
_Row = tuple[_Line, list[str], list[str]]


class _Layout:
    """Draws a ``_Doc`` page by page. Coordinates are reportlab's: points from the bottom left."""

    # The right-aligned detail columns: (title, share of the width). The description takes the rest.
    COLUMNS = (("Cantidad", 0.12), ("Precio unitario", 0.15), ("Descuento", 0.13), ("Monto", 0.14))

    def __init__(self, canvas: Canvas, pagesize, doc: _Doc, barcode: Image.Image, caption: str, certification: bool):
        self.c = canvas
        self.width, self.height = pagesize
        self.doc = doc
        self.barcode = barcode
        self.caption = caption
        self.certification = certification
        self.content_width = self.width - 2 * MARGIN
        shares = [share for _, share in self.COLUMNS]
        self.name_width = self.content_width * (1 - sum(shares))
        self.column_widths = [self.name_width] + [self.content_width * share for share in shares]

    def draw(self) -> None:
        rows = [self._wrap(line) for line in self.doc.lines]
        footer_height = self._references_height() + self._bottom_band_height() + 6 * mm
        pages = self._paginate(rows, footer_height)
        for number, page_rows in enumerate(pages, start=1):
            y = self._page_header(number, len(pages))
            y = self._table(page_rows, y)
            if number == len(pages):
                self._references(y - 4 * mm)
                self._bottom_band()
            self.c.showPage()

    def _paginate(self, rows: list[_Row], footer_height: float) -> list[list[_Row]]:
        """Rows per page; the last page keeps room for references, totals and the timbre."""
        space = self._table_top() - ROW_LEADING * 1.6 - MARGIN
        pages: list[list[_Row]] = [[]]
        used = 0.0
        for row in rows:
            height = self._row_height(row)
            if used + height > space and pages[-1]:
                pages.append([])
                used = 0.0
            pages[-1].append(row)
            used += height
        if used + footer_height > space:
            pages.append([])
        return pages

    def _wrap(self, line: _Line) -> _Row:
        width = self.name_width - 4
        name = simpleSplit(line.name, FONT, ROW_FONT_SIZE, width)
        description = simpleSplit(line.description, FONT, ROW_FONT_SIZE - 1, width) if line.description else []
        return line, name, description

    @staticmethod
    def _row_height(row: _Row) -> float:
        _, name, description = row
        return ROW_LEADING * max(1, len(name)) + (ROW_LEADING - 1) * len(description) + 3

    def _table_top(self) -> float:
        return self.height - MARGIN - 38 * mm - self._receptor_height() - 4 * mm

    def _receptor_height(self) -> float:
        return (len(self.doc.receptor) + 1) * 11 + 6

    def _page_header(self, number: int, pages: int) -> float:
        c, doc = self.c, self.doc
        top = self.height - MARGIN
        if self.certification:
            self._certification_mark()
        if pages > 1:
            c.setFont(FONT, 7)
            c.setFillColor(colors.black)
            c.drawRightString(self.width - MARGIN, MARGIN / 2, f"Página {number} de {pages}")

        box_width, box_height = 78 * mm, 30 * mm
        box_x = self.width - MARGIN - box_width
        center = box_x + box_width / 2
        c.setStrokeColor(RED)
        c.setFillColor(RED)
        c.setLineWidth(2)
        c.rect(box_x, top - box_height, box_width, box_height)
        c.setFont(BOLD, 12)
        texts = [f"R.U.T.: {doc.emisor_rut}", *simpleSplit(doc.name, BOLD, 12, box_width - 6 * mm), f"N° {doc.folio}"]
        # Centre the block vertically: a long document name wraps to two lines.
        y = top - box_height / 2 + (len(texts) - 1) * 16 / 2 - 4
        for text in texts:
            c.drawCentredString(center, y, text)
            y -= 16
        c.setFont(BOLD, 10)
        c.drawCentredString(center, top - box_height - 5 * mm, f"S.I.I. - {doc.sii_office}")

        c.setFillColor(colors.black)
        c.setFont(BOLD, 13)
        text_width = self.content_width - box_width - 8 * mm
        y = top - 5 * mm
        for text in simpleSplit(doc.emisor_name, BOLD, 13, text_width):
            c.drawString(MARGIN, y, text)
            y -= 15
        c.setFont(FONT, 9)
        for line in doc.emisor_lines:
            for text in simpleSplit(line, FONT, 9, text_width):
                c.drawString(MARGIN, y, text)
                y -= 11

        return self._receptor(top - 38 * mm)

    def _receptor(self, top: float) -> float:
        c, doc = self.c, self.doc
        height = self._receptor_height()
        c.setStrokeColor(colors.black)
        c.setLineWidth(0.6)
        c.rect(MARGIN, top - height, self.content_width, height)
        y = top - 12
        c.setFont(BOLD, 9)
        c.drawString(MARGIN + 4, y, "Fecha de emisión:")
        c.setFont(FONT, 9)
        c.drawString(MARGIN + 4 + 30 * mm, y, doc.fecha)
        for label, value in doc.receptor:
            y -= 11
            c.setFont(BOLD, 9)
            c.drawString(MARGIN + 4, y, f"{label}:")
            c.setFont(FONT, 9)
            c.drawString(MARGIN + 4 + 30 * mm, y, value)
        return top - height - 4 * mm

    def _table(self, rows: list[_Row], top: float) -> float:
        c = self.c
        header_height = ROW_LEADING * 1.6
        c.setFillColor(GREY)
        c.setStrokeColor(colors.black)
        c.setLineWidth(0.6)
        c.rect(MARGIN, top - header_height, self.content_width, header_height, fill=1)
        c.setFillColor(colors.black)
        c.setFont(BOLD, ROW_FONT_SIZE)
        baseline = top - header_height + 5
        c.drawString(MARGIN + 3, baseline, "Descripción")
        x = MARGIN + self.name_width
        for (title, _), width in zip(self.COLUMNS, self.column_widths[1:], strict=True):
            c.drawRightString(x + width - 3, baseline, title)
            x += width
        y = top - header_height
        for line, name, description in rows:
            baseline = y - ROW_LEADING + 1
            c.setFont(FONT, ROW_FONT_SIZE)
            for i, text in enumerate(name):
                c.drawString(MARGIN + 3, baseline - i * ROW_LEADING, text)
            x = MARGIN + self.name_width
            for value, width in zip((line.quantity, line.price, line.discount, line.amount), self.column_widths[1:], strict=True):
                c.drawRightString(x + width - 3, baseline, value)
                x += width
            c.setFont(FONT, ROW_FONT_SIZE - 1)
            c.setFillColor(colors.dimgrey)
            for i, text in enumerate(description):
                c.drawString(MARGIN + 8, baseline - (max(1, len(name)) + i) * ROW_LEADING + 1, text)
            c.setFillColor(colors.black)
            y -= self._row_height((line, name, description))
        c.setLineWidth(0.3)
        c.line(MARGIN, y, MARGIN + self.content_width, y)
        return y

    def _references_height(self) -> float:
        return 0.0 if not self.doc.references else 14 + ROW_LEADING * (len(self.doc.references) + 1)

    def _references(self, top: float) -> None:
        c = self.c
        if not self.doc.references:
            return
        c.setFont(BOLD, 9)
        c.drawString(MARGIN, top - 9, "Referencias")
        y = top - 14 - ROW_LEADING + 2
        offsets = (0, 62 * mm, 80 * mm, 102 * mm)
        c.setFont(BOLD, ROW_FONT_SIZE)
        for offset, title in zip(offsets, ("Tipo de documento", "Folio", "Fecha", "Razón"), strict=True):
            c.drawString(MARGIN + offset, y, title)
        c.setFont(FONT, ROW_FONT_SIZE)
        for reference in self.doc.references:
            y -= ROW_LEADING
            for offset, text in zip(offsets, reference, strict=True):
                c.drawString(MARGIN + offset, y, text)

    def _barcode_size(self) -> tuple[float, float]:
        modules, rows = self.barcode.size
        module = max(TED_MIN_MODULE, min(TED_MODULE, TED_MAX_HEIGHT / (rows * TED_ROW_RATIO)))
        return modules * module, rows * TED_ROW_RATIO * module

    def _bottom_band_height(self) -> float:
        totals_height = 14 * len(self.doc.totals) + 6
        return max(self._barcode_size()[1] + 22, totals_height)

    def _bottom_band(self) -> None:
        c = self.c
        width, height = self._barcode_size()
        bottom = MARGIN + 18
        c.drawImage(ImageReader(self.barcode), MARGIN, bottom, width, height)
        center = MARGIN + width / 2
        c.setFont(BOLD, 8)
        c.drawCentredString(center, bottom - 9, "Timbre Electrónico SII")
        c.setFont(FONT, 7)
        c.drawCentredString(center, bottom - 17, self.caption)

        label_x = self.width - MARGIN - 70 * mm
        y = bottom + 14 * (len(self.doc.totals) - 1)
        for label, value in self.doc.totals:
            total = label == "Total"
            c.setFont(BOLD if total else FONT, 11 if total else 9)
            c.drawString(label_x, y, label)
            c.drawRightString(self.width - MARGIN, y, value)
            y -= 14
        c.setLineWidth(0.6)
        c.line(label_x, bottom + 12, self.width - MARGIN, bottom + 12)

    def _certification_mark(self) -> None:
        c = self.c
        c.saveState()
        c.setFillColor(colors.Color(0.85, 0, 0, alpha=0.15))
        # Across the middle of the page, short enough to stay clear of the timbre bottom left: a
        # watermark over the barcode could spoil a scan.
        lines = CERTIFICATION_MARK.split(" — ")
        size = 0.8 * self.content_width / max(stringWidth(line, BOLD, 1) for line in lines)
        c.setFont(BOLD, size)
        c.translate(self.width / 2, self.height * 0.5)
        c.rotate(40)
        for i, line in enumerate(lines):
            c.drawCentredString(0, size * (0.2 - 1.2 * i), line)
        c.restoreState()
        c.setFillColor(RED)
        c.setFont(BOLD, 8)
        c.drawCentredString(self.width / 2, self.height - MARGIN / 2 - 3, CERTIFICATION_MARK)
