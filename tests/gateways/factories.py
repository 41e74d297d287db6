import datetime

import factory

from gateways.models import Gateway
from tests.billers.factories import BillerConnectionFactory
from tests.rules.factories import RuleSetFactory
from tests.sources.factories import SourceConnectionFactory


class GatewayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Gateway

    name = "Tienda → Sandbox"
    source = factory.SubFactory(SourceConnectionFactory, account=factory.SelfAttribute("..account"))
    biller = factory.SubFactory(BillerConnectionFactory, account=factory.SelfAttribute("..account"))
    ruleset = factory.SubFactory(RuleSetFactory, account=factory.SelfAttribute("..account"))
    active = True


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "gateways.Order"

    gateway = factory.SubFactory(GatewayFactory, account=factory.SelfAttribute("..account"))
    external_id = factory.Sequence(lambda n: f"ext-{n}")
    number = factory.Sequence(lambda n: f"#{1000 + n}")
    status = "issued"
    paid_total = 11990
    currency = "CLP"
    buyer_name = "Camila Rojas"
    buyer_email = "camila@example.cl"


class EmissionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "gateways.Emission"

    order = factory.SubFactory(OrderFactory, account=factory.SelfAttribute("..account"))
    kind = "invoice"
    sequence = 1
    reference = factory.Sequence(lambda n: f"ref-{n}")
    status = "issued"
    sale = factory.LazyFunction(lambda: {"tipo_dte": 39, "paid_total": 11990, "lines": []})


class DocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "gateways.Document"

    emission = factory.SubFactory(EmissionFactory, account=factory.SelfAttribute("..account"))
    order = factory.SelfAttribute("emission.order")
    biller = factory.SelfAttribute("order.gateway.biller")
    kind = "invoice"
    tipo_dte = 39
    folio = factory.Sequence(lambda n: n + 1)
    fecha = datetime.date(2026, 11, 21)
    mnt_total = 11990
    certification = True
    xml = b"<DTE/>"


__all__ = [
    "BillerConnectionFactory", "DocumentFactory", "EmissionFactory", "GatewayFactory", "OrderFactory",
    "RuleSetFactory", "SourceConnectionFactory",
]
