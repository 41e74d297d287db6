"""A realistic paid Chilean WooCommerce order, in the shape of the REST v3 order (and ``order.*`` webhook body).

Like most Chilean stores it does not compute IVA in WooCommerce: prices are gross, ``total_tax`` is 0
and ``prices_include_tax`` false; amounts are CLP strings without decimals; the comuna comes from a
checkout-field plugin's ``_billing_comuna`` meta.
"""
import random
from datetime import UTC, datetime

CATALOGUE = [
    ("POL-ORG-M", "Polera algodón orgánico talla M", 12990),
    ("CAF-GRA-1K", "Café de grano tostado 1 kg", 15990),
    ("TAZ-CER-01", "Tazón cerámica artesanal Pomaire", 7990),
    ("MIE-ULM-500", "Miel de ulmo 500 g", 8490),
    ("VIN-CAR-750", "Vino Carménère reserva 750 ml", 9990),
]
BUYERS = [
    ("Camila", "Rojas", "camila.rojas@example.cl", "Av. Providencia 1234", "depto 56", "Providencia"),
    ("Matías", "González", "matias.gonzalez@example.cl", "Los Carrera 455", "", "Concepción"),
    ("Valentina", "Muñoz", "valentina.munoz@example.cl", "Errázuriz 1020", "", "Valparaíso"),
]
SHIPPING_PRICE = 3990


def sample_order(*, number: int, rng: random.Random | None = None, test: bool = False) -> dict:
    rng = rng or random.Random(number)
    first, last, email, street, street2, comuna = rng.choice(BUYERS)
    line_items, subtotal = [], 0
    for index, (sku, title, price) in enumerate(rng.sample(CATALOGUE, k=rng.randint(1, 3)), start=1):
        quantity = rng.randint(1, 2)
        subtotal += price * quantity
        line_items.append({
            "id": number * 100 + index, "name": title, "product_id": 2000 + index, "variation_id": 0,
            "quantity": quantity, "tax_class": "", "subtotal": str(price * quantity), "subtotal_tax": "0",
            "total": str(price * quantity), "total_tax": "0", "taxes": [], "meta_data": [], "sku": sku, "price": price,
        })
    shipping = SHIPPING_PRICE if subtotal < 30000 else 0
    now = datetime.now(UTC).replace(microsecond=0)
    gmt = now.strftime("%Y-%m-%dT%H:%M:%S")
    billing = {
        "first_name": first, "last_name": last, "company": "", "address_1": street, "address_2": street2,
        "city": comuna, "state": "CL-RM", "postcode": "", "country": "CL", "email": email, "phone": "+56 9 5555 0000",
    }
    return {
        "id": number, "parent_id": 0, "number": str(number), "order_key": f"wc_order_{number}",
        "created_via": "checkout", "status": "processing", "currency": "CLP",
        "date_created": gmt, "date_created_gmt": gmt, "date_modified": gmt, "date_modified_gmt": gmt,
        "date_paid": gmt, "date_paid_gmt": gmt, "date_completed": None, "date_completed_gmt": None,
        "discount_total": "0", "discount_tax": "0", "shipping_total": str(shipping), "shipping_tax": "0",
        "cart_tax": "0", "total": str(subtotal + shipping), "total_tax": "0", "prices_include_tax": False,
        "customer_id": 0, "customer_note": "", "billing": billing,
        "shipping": {k: v for k, v in billing.items() if k not in ("email",)},
        "payment_method": "webpay", "payment_method_title": "Webpay Plus", "transaction_id": f"wp-{number}",
        "meta_data": [
            {"id": number * 10 + 1, "key": "_billing_comuna", "value": comuna},
            {"id": number * 10 + 2, "key": "_billing_documento", "value": "boleta"},
        ],
        "line_items": line_items, "tax_lines": [],
        "shipping_lines": [
            {"id": number * 100 + 99, "method_title": "Despacho a domicilio", "method_id": "flat_rate",
             "instance_id": "1", "total": str(shipping), "total_tax": "0", "taxes": [], "meta_data": []}
        ] if shipping else [],
        "fee_lines": [], "coupon_lines": [], "refunds": [],
    }
