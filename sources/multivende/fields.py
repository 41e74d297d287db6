"""Where a Multivende checkout keeps the buyer's tax data: the default JMESPath field mapping.

Two shapes are read, the newer first (see ``orders.py``): the 2026 one seen in integrators' code
(``CheckoutBillingClients[0].documentType``, ``Client.taxId``, ``Client.type``,
``Client.BillingAddresses[0]``) and the older ``BillingAddress`` object. Neither was seen in a live
response, so the merchant can override each expression in the rules. The first usable candidate wins
(``rules/engine_fields.py``). The 2026 shape shows no razón social or giro field: a company client's
``fullName`` is read as its razón social, and a factura without a giro is held until one is mapped.
"""

_ADDRESS = "join(' ', map(&to_string(@), [{0}.address_1, {0}.address_2][?@]))"

DEFAULT_FIELD_MAPPING = {
    "rut": "[BillingAddress.taxId, Client.taxId]",
    "razon_social": "[BillingAddress.businessName, Client.type == 'company' && Client.fullName, BillingAddress.fullName]",
    "giro": "BillingAddress.businessActivity",
    "address": "[{}, {}]".format(_ADDRESS.format("BillingAddress"), _ADDRESS.format("Client.BillingAddresses[0]")),
    "comuna": "[BillingAddress.commune, BillingAddress.city, Client.BillingAddresses[0].commune, "
              "Client.BillingAddresses[0].city]",
    "email": "Client.email",
    "document_choice": "[CheckoutBillingClients[0].documentType, BillingAddress.documentType]",
}
