"""Local HTTP simulators of every vendor the product talks to (not product code).

Tests start them in-process, ``make demo`` and ``bench/`` run them as processes:
``python -m simulators <name> --port N``. ``SIMULATORS`` names each one's class; see ``base.py``.
"""
SIMULATORS: dict[str, str] = {
    "shopify": "simulators.shopify:ShopifySimulator",
    "woocommerce": "simulators.woocommerce:WooCommerceSimulator",
    "multivende": "simulators.multivende:MultivendeSimulator",
    "libredte": "simulators.libredte:LibreDTESimulator",
    "bhexpress": "simulators.bhexpress:BHExpressSimulator",
    "webfactura": "simulators.webfactura:WebFacturaSimulator",
}
