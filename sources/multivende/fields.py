"""Where a Multivende checkout keeps the buyer's tax data: the default JMESPath field mapping.

Read from the billing object integrators' code uses (see ``orders.py``); to verify against a live
checkout, and overridable in the rules.
"""

DEFAULT_FIELD_MAPPING = {
    "rut": "[BillingAddress.taxId, Client.taxId]",
    "razon_social": "[BillingAddress.businessName, BillingAddress.fullName]",
    "giro": "BillingAddress.businessActivity",
    "address": "join(' ', map(&to_string(@), [BillingAddress.address_1, BillingAddress.address_2][?@]))",
    "comuna": "[BillingAddress.commune, BillingAddress.city]",
    "email": "Client.email",
    "document_choice": "BillingAddress.documentType",
}
