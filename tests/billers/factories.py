import factory

from billers.models import BillerConnection, Environment


class BillerConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BillerConnection

    name = "Sandbox"
    provider = "sandbox"
    environment = Environment.CERTIFICATION
    emisor_rut = "76086428-5"
    emisor_razon_social = "Comercial Los Andes SpA"
    emisor_giro = "Venta al por menor por internet"
    emisor_acteco = 479100
    emisor_address = "Av. Providencia 1234"
    emisor_comuna = "Providencia"
