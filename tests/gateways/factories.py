import factory

from billers.models import BillerConnection, Environment, Provider
from gateways.models import Gateway
from rules.models import RuleSet
from sources.models import Platform, SourceConnection


class SourceConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SourceConnection

    name = "Tienda Demo"
    platform = Platform.DEMO


class BillerConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BillerConnection

    name = "Sandbox"
    provider = Provider.SANDBOX
    environment = Environment.CERTIFICATION
    emisor_rut = "76086428-5"
    emisor_razon_social = "Comercial Los Andes SpA"
    emisor_giro = "Venta al por menor por internet"
    emisor_acteco = 479100
    emisor_address = "Av. Providencia 1234"
    emisor_comuna = "Providencia"


class GatewayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Gateway

    name = "Tienda → Sandbox"
    source = factory.SubFactory(SourceConnectionFactory, account=factory.SelfAttribute("..account"))
    biller = factory.SubFactory(BillerConnectionFactory, account=factory.SelfAttribute("..account"))
    ruleset = factory.SubFactory("tests.gateways.factories.RuleSetFactory", account=factory.SelfAttribute("..account"))
    active = True


class RuleSetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = RuleSet
