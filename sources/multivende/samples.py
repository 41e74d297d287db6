"""A realistic paid Multivende checkout (``GET /api/checkouts/{id}``), for the test sale and rules previews.

It carries the fields the parser reads in both shapes (the 2026 ``Client`` / ``CheckoutBillingClients``
one and the older ``BillingAddress``), as a Mercado Libre sale synced into Multivende would. Multivende
checkouts carry no "test" flag: the test sale marks its order itself.
"""
import random
import uuid
from datetime import UTC, datetime, timedelta

CATALOGUE = [
    ("AUD-JBL-T520-AZ", "Audífonos inalámbricos JBL Tune 520BT", "Azul", 29990),
    ("CAB-USBC-1M", "Cable USB-C 1 m trenzado", None, 3995),
    ("PAR-BT-MINI", "Parlante Bluetooth mini resistente al agua", "Negro", 19990),
    ("MOU-LOG-M190", "Mouse inalámbrico Logitech M190", "Gris", 9990),
    ("CAR-65W-GAN", "Cargador GaN 65 W", None, 24990),
]
BUYERS = [
    ("Josefa Contreras", "jcontreras.8f21b@mail.mercadolibre.cl", "+56 9 3344 5566", "Av. Pedro de Valdivia 1781", "Providencia"),
    ("Tomás Fuentes", "tfuentes.77a1c@mail.mercadolibre.cl", "+56 9 8765 4321", "Blanco Encalada 2120", "Santiago"),
    ("Antonia Reyes", "areyes.2b9e0@mail.mercadolibre.cl", "+56 9 5566 7788", "Av. Brasil 345", "Valparaíso"),
]
SHIPPING_COST = 3490
NAMESPACE = uuid.UUID("6f1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b")


def _id(number: int, what: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"{number}/{what}"))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def sample_order(*, number: int, test: bool = False) -> dict:
    """A paid CLP checkout with gross prices (Multivende's ``gross``) and Mercado Envíos shipping."""
    rng = random.Random(number)
    name, email, phone, street, comuna = rng.choice(BUYERS)
    now = datetime.now(UTC).replace(microsecond=0)
    items, total = [], SHIPPING_COST
    for index, (sku, product, size, price) in enumerate(rng.sample(CATALOGUE, k=rng.randint(1, 3))):
        count = rng.randint(1, 2)
        total += price * count
        items.append({
            "_id": _id(number, f"item-{index}"), "code": sku, "count": count, "gross": price,
            "totalWithDiscount": price * count, "ProductVersionId": _id(number, f"version-{index}"),
            "ProductVersion": {"code": sku, "internalCode": sku, "ProductId": _id(number, f"product-{index}"),
                               "Product": {"code": sku.rsplit("-", 1)[0], "name": product},
                               "Size": {"name": size} if size else None},
        })
    checkout_id, client_id = _id(number, "checkout"), _id(number, "client")
    return {
        "_id": checkout_id, "code": f"MV-{number % 100_000_000:08d}", "status": "completed", "verifyStatus": "verified",
        "paymentStatus": "completed", "deliveryStatus": "pending", "origin": "mercadolibre", "currency": "CLP",
        "soldAt": _iso(now - timedelta(minutes=8)), "createdAt": _iso(now - timedelta(minutes=6)), "updatedAt": _iso(now),
        "BillingAddressId": None, "gross": total,
        "Client": {"_id": client_id, "fullName": name, "email": email, "phoneNumber": phone, "taxId": None,
                   "type": "person", "BillingAddresses": [{"address_1": street, "address_2": None, "city": comuna}]},
        "CheckoutBillingClients": [{"documentType": "Boleta"}],
        "CheckoutItems": items,
        "CheckoutPayments": [{"_id": _id(number, "payment"), "paymentStatus": "completed", "amount": total,
                              "paymentMethod": "mercadopago"}],
        "CheckoutLink": {"externalOrderNumber": str(2_000_000_000_000_000 + number), "CheckoutId": checkout_id},
        "DeliveryOrderInCheckouts": [{"DeliveryOrderId": _id(number, "delivery"), "DeliveryOrder": {
            "code": f"ML-{number % 100_000_000:08d}", "cost": SHIPPING_COST, "courierName": "Mercado Envíos Flex",
            "shippingMode": "me2", "deliveryStatus": "pending",
            "ShippingAddress": {"address_1": street, "address_2": None, "city": comuna}}}],
    }
