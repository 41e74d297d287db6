"""Where WooCommerce stores keep the buyer's tax data: the default JMESPath field mapping over the order.

WooCommerce has no RUT, razón social or giro field; Chilean checkout-field plugins store them as order
``meta_data`` under their own keys. These are the keys commonly seen; the merchant overrides them in
the rules (block-checkout fields, for example, are ``_wc_billing/<namespace>/<field>``).
"""


def _meta(key: str) -> str:
    return f"meta_data[?key=='{key}'].value | [0]"


DEFAULT_FIELD_MAPPING = {
    # The company RUT first: stores that ask for both use it for facturas.
    "rut": f"[{_meta('_billing_RUT_Empresa')}, {_meta('_billing_rut_empresa')}, {_meta('_billing_rut')}]",
    "razon_social": f"[{_meta('_billing_razon_social')}, billing.company]",
    "giro": _meta("_billing_giro"),
    "address": "join(' ', map(&to_string(@), [billing.address_1, billing.address_2][?@]))",
    "comuna": f"[{_meta('_billing_comuna')}, billing.city]",
    "email": "billing.email",
    "document_choice": f"[{_meta('_billing_documento')}, {_meta('_billing_tipo_documento')}]",
}
