"""A realistic paid Chilean Shopify order, in the shape of an ``orders/*`` webhook body.

Used as the Shopify sample order (the test sale, a rules preview without real orders) and by the
built-in Demo store, whose orders are Shopify-shaped so they go through the same parser.
"""
import random
from datetime import UTC, datetime

CATALOGUE = [
    ("POL-ORG-M", "Polera algodón orgánico talla M", 12990),
    ("CAF-GRA-1K", "Café de grano tostado 1 kg", 15990),
    ("TAZ-CER-01", "Tazón cerámica artesanal Pomaire", 7990),
    ("MIE-ULM-500", "Miel de ulmo 500 g", 8490),
    ("MER-MPCH-250", "Merkén ahumado 250 g", 4990),
    ("BOL-TEL-01", "Bolsa de tela reutilizable", 3990),
    ("VIN-CAR-750", "Vino Carménère reserva 750 ml", 9990),
    ("LIB-NER-20", "Libro: Veinte poemas de amor", 11900),
]
BUYERS = [
    ("Camila", "Rojas", "camila.rojas@example.cl", "Av. Providencia 1234, depto 56", "Providencia"),
    ("Matías", "González", "matias.gonzalez@example.cl", "Los Carrera 455", "Concepción"),
    ("Valentina", "Muñoz", "valentina.munoz@example.cl", "Errázuriz 1020", "Valparaíso"),
    ("Benjamín", "Soto", "benjamin.soto@example.cl", "Av. Alemania 0671", "Temuco"),
]
SHIPPING_PRICE = 3990


def sample_order(*, number: int, rng: random.Random | None = None, test: bool = False) -> dict:
    """A paid Shopify-shaped CLP order with gross prices (taxes included), like a real Chilean store."""
    rng = rng or random.Random(number)
    first, last, email, street, comuna = rng.choice(BUYERS)
    picked = rng.sample(CATALOGUE, k=rng.randint(1, 4))
    line_items = []
    subtotal = 0
    for index, (sku, title, price) in enumerate(picked, start=1):
        quantity = rng.randint(1, 3)
        subtotal += price * quantity
        line_items.append(
            {
                "id": number * 100 + index,
                "title": title,
                "name": title,
                "sku": sku,
                "quantity": quantity,
                "price": f"{price}.00",
                "total_discount": "0.00",
                "discount_allocations": [],
                "taxable": True,
                "gift_card": False,
                "product_id": 7000 + index,
            }
        )
    shipping = SHIPPING_PRICE if subtotal < 30000 else 0
    total = subtotal + shipping
    now = datetime.now(UTC).replace(microsecond=0).isoformat()
    address = {
        "first_name": first,
        "last_name": last,
        "name": f"{first} {last}",
        "address1": street,
        "address2": "",
        "city": comuna,
        "province": "Región Metropolitana" if comuna == "Providencia" else "",
        "country": "Chile",
        "country_code": "CL",
        "company": None,
        "phone": "+56 9 5555 0000",
    }
    return {
        "id": 5_100_000_000 + number,
        "name": f"#{number}",
        "order_number": number,
        "email": email,
        "created_at": now,
        "processed_at": now,
        "currency": "CLP",
        "presentment_currency": "CLP",
        "financial_status": "paid",
        "test": test,
        "taxes_included": True,
        "subtotal_price": f"{subtotal}.00",
        "total_discounts": "0.00",
        "total_price": f"{total}.00",
        "current_total_price": f"{total}.00",
        "total_tip_received": "0.00",
        "line_items": line_items,
        "shipping_lines": [
            {"title": "Despacho a domicilio", "price": f"{shipping}.00", "discounted_price": f"{shipping}.00", "discount_allocations": []}
        ]
        if shipping
        else [],
        "customer": {"first_name": first, "last_name": last, "email": email},
        "billing_address": address,
        "shipping_address": address,
        "note_attributes": [],
        "tags": "demo",
        "source_name": "web",
        "cancelled_at": None,
        "refunds": [],
    }
