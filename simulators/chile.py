"""Realistic Chilean sales for the store simulators: buyers, companies, valid RUTs, CLP gross prices.

Each store simulator renders a ``Sale`` in its own platform's shape, so Shopify, WooCommerce and
Multivende orders share one generator and differ only where the platforms do. Amounts are integer
CLP with IVA included (what Chilean shops show and charge); the IVA split rounds half up per line.
A seeded ``random.Random`` makes every run reproducible.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

IVA = Decimal("0.19")

FIRST_NAMES = (
    "Camila", "Matías", "Valentina", "Benjamín", "Josefa", "Vicente", "Catalina", "Tomás", "Antonia",
    "Agustín", "Francisca", "Joaquín", "Martina", "Ignacio", "Florencia", "Sebastián", "Isidora", "Cristóbal",
)
LAST_NAMES = (
    "González", "Muñoz", "Rojas", "Díaz", "Pérez", "Soto", "Contreras", "Silva", "Martínez", "Sepúlveda",
    "Morales", "Rodríguez", "López", "Fuentes", "Hernández", "Torres", "Araya", "Flores", "Espinoza", "Núñez",
)
# (comuna, región, región code as Shopify and WooCommerce's Chilean states name it, postcode)
COMUNAS = (
    ("Providencia", "Región Metropolitana", "RM", "7500000"),
    ("Las Condes", "Región Metropolitana", "RM", "7550000"),
    ("Ñuñoa", "Región Metropolitana", "RM", "7750000"),
    ("Maipú", "Región Metropolitana", "RM", "9250000"),
    ("Puente Alto", "Región Metropolitana", "RM", "8150000"),
    ("Valparaíso", "Valparaíso", "VS", "2340000"),
    ("Viña del Mar", "Valparaíso", "VS", "2520000"),
    ("Concepción", "Biobío", "BI", "4030000"),
    ("Temuco", "La Araucanía", "AR", "4780000"),
    ("La Serena", "Coquimbo", "CO", "1700000"),
    ("Antofagasta", "Antofagasta", "AN", "1240000"),
    ("Puerto Montt", "Los Lagos", "LL", "5480000"),
)
STREETS = (
    "Av. Providencia", "Av. Apoquindo", "Av. Irarrázaval", "Calle Prat", "Av. Libertad", "Los Carrera",
    "Av. Alemania", "Av. Pedro de Valdivia", "Calle Colón", "Av. Vicuña Mackenna", "Av. Grecia", "Calle Serrano",
)
COMPANIES = (
    ("Comercial Los Andes SpA", "Venta al por mayor de artículos de ferretería"),
    ("Distribuidora Austral Ltda.", "Venta al por menor de calzado y prendas de vestir"),
    ("Inversiones Costanera SpA", "Actividades de consultoría informática"),
    ("Servicios Gastronómicos del Pacífico Ltda.", "Actividades de restaurantes y de servicio móvil de comidas"),
    ("Constructora Cordillera SpA", "Construcción de edificios para uso residencial"),
    ("Librería y Papelería Central EIRL", "Venta al por menor de libros y artículos de papelería"),
)
# (name, sku, gross unit price in CLP)
PRODUCTS = (
    ("Aceite de oliva extra virgen 500 ml", "ACE-OLI-500", 8990),
    ("Sal de mar de Cáhuil 1 kg", "SAL-CAH-1K", 4990),
    ("Taladro percutor Bosch GSB 650W", "BOS-GSB-650", 54990),
    ("Set brocas acero rápido 19 piezas", "BRO-HSS-19", 12990),
    ("Polera algodón orgánico talla M", "POL-ORG-M", 12990),
    ("Tazón cerámica artesanal Pomaire", "TAZ-CER-01", 7990),
    ("Zapatillas trekking Lippi Cumbre", "LIP-CUM-42", 59990),
    ("Calcetines merino pack 3", "CAL-MER-3", 9990),
    ("Té verde orgánico 100 g", "TE-VER-100", 4495),
    ("Audífonos inalámbricos JBL Tune 520BT", "AUD-JBL-T520", 29990),
    ("Cable USB-C 1 m trenzado", "CAB-USBC-1M", 3995),
    ("Parka impermeable Doite", "DOI-PAR-M", 39990),
    ("Vino Carmenère reserva 750 ml", "VIN-CAR-750", 6990),
    ("Merkén ahumado 100 g", "MER-AHU-100", 3490),
    ("Mochila urbana 25 L", "MOC-URB-25", 24990),
)
CARRIERS = (("Despacho Starken a domicilio", "starken", 3990), ("Chilexpress", "chilexpress", 4490),
            ("Envío Blue Express", "bluexpress", 3490))


def rut_check_digit(number: int) -> str:
    """Módulo 11, as the SII computes it."""
    total, factor = 0, 2
    while number:
        total += (number % 10) * factor
        number //= 10
        factor = 2 if factor == 7 else factor + 1
    digit = 11 - total % 11
    return {10: "K", 11: "0"}.get(digit, str(digit))


def format_rut(number: int) -> str:
    """``76.086.428-5``: dotted, with the check digit, the way Chilean checkouts collect it."""
    return f"{number:,}".replace(",", ".") + "-" + rut_check_digit(number)


def iva_of(gross: int) -> int:
    """The IVA inside a gross amount, rounded half up to a peso."""
    net = (Decimal(gross) / (1 + IVA)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return gross - int(net)


@dataclass
class Buyer:
    first_name: str
    last_name: str
    email: str
    phone: str
    address1: str
    address2: str
    comuna: str
    region: str
    region_code: str
    postcode: str
    rut: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass
class Company:
    rut: str
    razon_social: str
    giro: str


@dataclass
class Line:
    name: str
    sku: str
    quantity: int
    unit_gross: int
    discount: int = 0  # gross CLP taken off the whole line

    @property
    def total_gross(self) -> int:
        return self.unit_gross * self.quantity - self.discount


@dataclass
class Sale:
    """A checkout as the buyer saw it: gross CLP, a boleta or a factura, perhaps shipping and a coupon."""

    buyer: Buyer
    lines: list[Line]
    document: str = "boleta"  # or "factura"
    company: Company | None = None
    shipping: tuple[str, str, int] | None = None  # (title, code, gross)
    coupon: str | None = None
    payment: str = "webpay_plus"
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(line.total_gross for line in self.lines) + (self.shipping[2] if self.shipping else 0)

    @property
    def discount(self) -> int:
        return sum(line.discount for line in self.lines)


def random_rut_number(rng: random.Random, company: bool) -> int:
    return rng.randint(76_000_000, 77_999_999) if company else rng.randint(8_000_000, 24_999_999)


def random_buyer(rng: random.Random) -> Buyer:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    comuna, region, code, postcode = rng.choice(COMUNAS)
    ascii_last = last.translate(str.maketrans("áéíóúñÁÉÍÓÚÑ", "aeiounAEIOUN")).lower()
    ascii_first = first.translate(str.maketrans("áéíóúñÁÉÍÓÚÑ", "aeiounAEIOUN")).lower()
    return Buyer(
        first_name=first, last_name=last,
        email=f"{ascii_first}.{ascii_last}{rng.randint(1, 999)}@{rng.choice(('gmail.com', 'outlook.cl', 'yahoo.com'))}",
        phone=f"+56 9 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
        address1=f"{rng.choice(STREETS)} {rng.randint(100, 9999)}",
        address2=rng.choice(("", "", f"Depto {rng.randint(101, 2405)}", f"Oficina {rng.randint(101, 1802)}")),
        comuna=comuna, region=region, region_code=code, postcode=postcode,
        rut=format_rut(random_rut_number(rng, company=False)),
    )


def random_sale(rng: random.Random, document: str | None = None) -> Sale:
    """A plausible Chilean online sale; ``document`` forces ``boleta`` or ``factura``."""
    document = document or ("factura" if rng.random() < 0.25 else "boleta")
    products = rng.sample(PRODUCTS, rng.randint(1, 3))
    lines = [Line(name, sku, rng.choice((1, 1, 1, 2, 3)), price) for name, sku, price in products]
    coupon = None
    if rng.random() < 0.2:
        coupon = rng.choice(("CYBER10", "BIENVENIDA10"))
        lines[0].discount = int((Decimal(lines[0].unit_gross * lines[0].quantity) / 10).quantize(
            Decimal(1), rounding=ROUND_HALF_UP))
    company = None
    if document == "factura":
        razon_social, giro = rng.choice(COMPANIES)
        company = Company(format_rut(random_rut_number(rng, company=True)), razon_social, giro)
    shipping = rng.choice(CARRIERS) if rng.random() < 0.8 else None
    return Sale(buyer=random_buyer(rng), lines=lines, document=document, company=company, shipping=shipping,
                coupon=coupon, payment=rng.choice(("webpay_plus", "webpay_plus", "mercadopago", "flow")))
