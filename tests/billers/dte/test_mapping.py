"""Order → document: reconciliation with the paid total, refusals, and the property over any order."""
import datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from billers.dte import MappingRefused, build_document, build_dte_xml, credentials, validate_dte_xml
from billers.dte.amounts import round_half_up
from billers.dte.sale import Emisor, Receptor, Reference, Sale, SaleLine
from billers.dte.sanitize import fit
from billers.dte.types import DOCUMENT_TYPES

from .conftest import SHARED

EMISOR = Emisor(rut="76192083-9", razon_social="Tienda SpA", giro="Comercio", acteco=479100, address="Calle 1", comuna="Santiago")
EMPRESA = Receptor(rut="60803000-K", razon_social="SII", giro="Gobierno", address="Teatinos 120", comuna="Santiago")
FECHA = datetime.date(2026, 11, 21)
SIGNER = credentials.test_signer()
SCHEMA_DIR = SHARED / "sii" / "xsd" if SHARED else None
NC_REFERENCE = (Reference(33, 10, "2026-11-01", 3, "Devolución parcial"),)
KNOWN_CODES = {
    "total_mismatch", "too_many_lines", "invalid_amounts", "line_discount_exceeds_amount",
    "incomplete_receptor", "invalid_receptor_rut",
}


def build(sale):
    return build_document(sale, emisor=EMISOR, folio=1, fecha=FECHA)


def refusal(sale) -> MappingRefused:
    with pytest.raises(MappingRefused) as exc_info:
        build(sale)
    return exc_info.value


def test_gross_factura_uses_mnt_bruto_so_the_total_is_what_was_paid():
    # Three gross lines of 9 990: converting each to net would give 3 × 8 395 = 25 185 net and
    # round(25 185 × 1.19) = 29 970; here the gross lines make it exact by construction.
    lines = tuple(SaleLine(f"Item {i}", Decimal(1), Decimal(9990)) for i in range(3)) + (SaleLine("Despacho", Decimal(1), Decimal(2990)),)
    doc = build(Sale(tipo_dte=33, lines=lines, paid_total=32960, receptor=EMPRESA))
    t = doc.totales
    assert doc.encabezado.id_doc.mnt_bruto == 1
    assert (t.mnt_neto, t.iva, t.mnt_total) == (27697, 5263, 32960)


def test_mismatch_is_refused_naming_the_amounts_and_the_difference():
    sale = Sale(tipo_dte=33, lines=(SaleLine("Café", Decimal(3), Decimal(1000)),), paid_total=3571, price_basis="net", receptor=EMPRESA)
    error = refusal(sale)
    assert error.code == "total_mismatch"
    assert error.details["document_total"] == 3570 and error.details["difference"] == -1
    assert "$3.570" in error.message and "$3.571" in error.message and "$1" in error.message


@pytest.mark.parametrize(
    "sale, code",
    [
        (Sale(33, (SaleLine("x", Decimal(1), Decimal(100)),), 100, currency="USD", receptor=EMPRESA), "currency"),
        (Sale(39, (SaleLine("x", Decimal(1), Decimal(100)),), Decimal("100.5")), "non_integer_amount"),
        (Sale(39, (SaleLine("x", 1.5, Decimal(100)),), 150), "non_decimal_amount"),
        (Sale(39, (SaleLine("x", Decimal(1), Decimal(100)),), 0), "non_positive_total"),
        (Sale(33, (SaleLine("x", Decimal(1), Decimal(100)),), 100, receptor=Receptor(rut="12345678-9", razon_social="A", giro="B", address="C", comuna="D")), "invalid_receptor_rut"),
        (Sale(33, (SaleLine("x", Decimal(1), Decimal(100)),), 100), "invalid_receptor_rut"),
        (Sale(33, (SaleLine("x", Decimal(1), Decimal(100)),), 100, receptor=Receptor(rut="60803000-K", razon_social="SII")), "incomplete_receptor"),
        (Sale(39, (SaleLine("x", Decimal(1), Decimal(100)),), 100, receptor=Receptor(rut="1-2")), "invalid_receptor_rut"),
        (Sale(33, tuple(SaleLine("x", Decimal(1), Decimal(10)) for _ in range(61)), 610, receptor=EMPRESA), "too_many_lines"),
        (Sale(39, tuple(SaleLine("x", Decimal(1), Decimal(10)) for _ in range(1001)), 10010), "too_many_lines"),
        (Sale(34, (SaleLine("x", Decimal(1), Decimal(100)),), 100, receptor=EMPRESA), "taxable_line_on_exempt_document"),
        (Sale(33, (SaleLine("x", Decimal(1), Decimal(100), exempt=True),), 100, receptor=EMPRESA), "exempt_only_on_taxable_document"),
        (Sale(61, (SaleLine("x", Decimal(1), Decimal(100)),), 100, receptor=EMPRESA), "missing_reference"),
        (Sale(39, (SaleLine("x", Decimal(1), Decimal(100), discount=101),), 1), "line_discount_exceeds_amount"),
        (Sale(39, (SaleLine("x", Decimal(0), Decimal(100)),), 1), "invalid_quantity"),
        (Sale(39, (SaleLine("x", Decimal(10) ** 30, Decimal(100)),), 1), "amount_too_large"),
    ],
)
def test_refusals_have_specific_codes(sale, code):
    error = refusal(sale)
    assert error.code == code
    assert error.message


def test_emisor_without_acteco_cannot_issue_facturas():
    sale = Sale(33, (SaleLine("x", Decimal(1), Decimal(100)),), 100, receptor=EMPRESA)
    with pytest.raises(MappingRefused) as exc_info:
        build_document(sale, emisor=Emisor(rut="76192083-9", razon_social="A", giro="B"), folio=1, fecha=FECHA)
    assert exc_info.value.code == "invalid_emisor" and "acteco" in exc_info.value.message


def test_boleta_without_rut_goes_to_consumidor_final():
    doc = build(Sale(39, (SaleLine("x", Decimal(1), Decimal(1190)),), 1190, receptor=Receptor(rut="", razon_social="")))
    assert (doc.encabezado.receptor.rut, doc.encabezado.receptor.razon_social) == ("66666666-6", "Sin RUT")
    assert (doc.totales.mnt_neto, doc.totales.iva) == (1000, 190)


def test_credit_note_references_the_original():
    doc = build(Sale(61, (SaleLine("Devolución", Decimal(1), Decimal(5990)),), 5990, receptor=EMPRESA, references=NC_REFERENCE))
    ref = doc.referencia[0]
    assert (ref.tpo_doc_ref, ref.folio_ref, ref.cod_ref, ref.fch_ref) == ("33", "10", 3, datetime.date(2026, 11, 1))
    assert doc.totales.mnt_total == 5990


# --- the property ---------------------------------------------------------------------------

names = st.text(max_size=120)
quantities = st.one_of(st.integers(1, 20).map(Decimal), st.decimals(Decimal("0.001"), Decimal("50"), places=3))
prices = st.one_of(st.integers(0, 500_000).map(Decimal), st.decimals(Decimal("0.01"), Decimal("99999"), places=2))


@st.composite
def orders(draw):
    tipo = draw(st.sampled_from([33, 34, 39, 41, 61]))
    basis = draw(st.sampled_from(["gross", "net"]))
    n = draw(st.integers(1, 80))
    lines = []
    for _ in range(n):
        qty, price = draw(quantities), draw(prices)
        amount = round_half_up(qty * price)
        exempt = True if tipo in (34, 41) else draw(st.integers(0, 4)) == 0
        discount = draw(st.integers(0, amount)) if amount and draw(st.booleans()) else 0
        lines.append(SaleLine(draw(names), qty, price, discount=discount, exempt=exempt, sku=draw(st.text(max_size=40))))
    if tipo in (33, 39) and all(line.exempt for line in lines):
        lines[0] = SaleLine(lines[0].name, lines[0].quantity, lines[0].unit_price, discount=lines[0].discount)
    if draw(st.booleans()):
        lines.append(SaleLine("Despacho", Decimal(1), Decimal(draw(st.integers(1, 9990))), exempt=tipo in (34, 41)))
    taxable = sum(round_half_up(line.quantity * line.unit_price) - line.discount for line in lines if not line.exempt)
    exempt_sum = sum(round_half_up(line.quantity * line.unit_price) - line.discount for line in lines if line.exempt)
    base = exempt_sum if tipo in (34, 41) else taxable
    global_discount = draw(st.integers(0, base)) if base and draw(st.booleans()) else 0
    if basis == "gross":
        store_total = taxable + exempt_sum - global_discount
    else:
        net = taxable - global_discount if tipo not in (34, 41) else 0
        store_total = net + round_half_up(Decimal(net) * Decimal("0.19")) + exempt_sum - (global_discount if tipo in (34, 41) else 0)
    perturbation = draw(st.sampled_from([0, 0, 0, 0, 1, -1, 2]))
    receptor = Receptor(rut="60803000-K", razon_social=draw(names), giro=draw(names), address=draw(names), comuna=draw(names), email="a@b.cl")
    sale = Sale(
        tipo_dte=tipo, lines=tuple(lines), paid_total=store_total + perturbation, price_basis=basis,
        receptor=receptor, global_discount=global_discount, references=NC_REFERENCE if tipo == 61 else (),
    )
    return sale, perturbation


def _should_succeed(sale, perturbation) -> bool:
    """Orders a merchant would rightly expect to be billed: correct total, fits, complete buyer data."""
    receptor = sale.receptor
    complete = all(fit(v, 100) for v in (receptor.razon_social, receptor.giro, receptor.address, receptor.comuna))
    drift_possible = sale.price_basis == "net" and sale.tipo_dte == 39
    return (perturbation == 0 and not drift_possible and sale.paid_total > 0 and len(sale.lines) <= DOCUMENT_TYPES[sale.tipo_dte].max_lines
            and (complete or sale.tipo_dte in (39, 41)))


@pytest.mark.skipif(SHARED is None, reason="needs the shared SII schemas (BMS_SHARED_DIR)")
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(orders())
def test_any_order_is_billed_exactly_or_refused_with_a_reason(order):
    sale, perturbation = order
    assume(sale.paid_total > 0)
    try:
        doc = build(sale)
    except MappingRefused as refused:
        assert refused.code in KNOWN_CODES, refused
        assert refused.message
        if refused.code == "total_mismatch":
            assert refused.details["difference"] == refused.details["document_total"] - sale.paid_total != 0
        assert not _should_succeed(sale, perturbation), refused
        return
    assert doc.totales.mnt_total == sale.paid_total
    assert perturbation == 0 or sale.price_basis == "net"
    xml = build_dte_xml(doc, signer=SIGNER)
    assert validate_dte_xml(xml, schema_dir=SCHEMA_DIR) == []
