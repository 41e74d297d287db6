"""Where Shopify stores keep the buyer's tax data: the default JMESPath field mapping over the order.

The RUT comes first from the checkout's localized field ``TAX_CREDENTIAL_CL``, where the merchant asks
for it (GraphQL ``Order.localizedFields``, https://shopify.dev/docs/api/admin-graphql/latest/enums/LocalizedFieldKey;
reading it needs protected-customer-data approval). REST bodies have no such field, so polled orders
carry it as ``localized_fields`` (``graphql_orders.py``); webhook bodies do not, and fall through to the
next candidates. Shopify has no razón social or giro field: Chilean checkouts collect them (and the RUT,
on shops without the localized field) as cart attributes (``note_attributes``), under names that vary
by app, or relabel the billing *company* field; the merchant can override each expression in the rules.
The first usable candidate wins (see ``rules/engine_fields.py``).
"""


def _note(names: list[str]) -> str:
    quoted = ", ".join(f"'{name}'" for name in names)
    return f"note_attributes[?contains([{quoted}], name)].value | [0]"


LOCALIZED_RUT = "localized_fields[?key=='TAX_CREDENTIAL_CL'].value | [0]"

DEFAULT_FIELD_MAPPING = {
    "rut": "[{}, {}, billing_address.company, billing_address.address2]".format(
        LOCALIZED_RUT, _note(["rut", "RUT", "Rut", "rut_empresa", "RUT Empresa", "RUT empresa"])
    ),
    "razon_social": "[{}, billing_address.company]".format(
        _note(["razon_social", "Razón social", "Razón Social", "Razon social", "Razon Social"])
    ),
    "giro": _note(["giro", "Giro"]),
    "address": "[{}, join(' ', map(&to_string(@), [billing_address.address1, billing_address.address2][?@]))]".format(
        _note(["direccion", "Dirección", "Direccion", "Dirección de facturación"])
    ),
    "comuna": "[{}, billing_address.city]".format(_note(["comuna", "Comuna"])),
    "email": "[email, contact_email, customer.email]",
    "document_choice": _note(
        ["tipo_documento", "Tipo de documento", "Tipo documento", "documento", "Documento", "Boleta o factura"]
    ),
}
