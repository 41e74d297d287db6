import factory

from sources.models import SourceConnection


class SourceConnectionFactory(factory.django.DjangoModelFactory):
    """A Demo store by default; its deliveries are signed with ``DEMO_SECRET``."""

    class Meta:
        model = SourceConnection

    name = "Tienda Demo"
    platform = "demo"
    credentials = factory.LazyFunction(lambda: {"webhook_secret": DEMO_SECRET})


DEMO_SECRET = "demo-webhook-secret"
