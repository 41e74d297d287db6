import json

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Account, User
from accounts.services import Actor, account_create
from billers.models import BillerConnection, Environment, Provider
from gateways.models import Gateway
from gateways.services import gateway_activate, gateway_create, inbound_event_receive
from sources.demo.adapter import demo_order_payload
from sources.models import Platform, SourceConnection

DEMO_EMAIL = "demo@billmysales.local"
DEMO_PASSWORD = "demo-billmysales"
DEMO_ACCOUNT = "Tienda Demo SpA"


class Command(BaseCommand):
    help = "Creates the demo account (Demo store → Sandbox biller, active) and one paid demo order. Idempotent."

    def handle(self, *args, **options):
        with transaction.atomic():
            user = User.objects.filter(email=DEMO_EMAIL).first()
            if user is None:
                user = User.objects.create_user(DEMO_EMAIL, DEMO_PASSWORD, full_name="Usuaria Demo", is_staff=True)
            account = Account.objects.filter(name=DEMO_ACCOUNT, memberships__user=user).first()
            if account is None:
                account = account_create(name=DEMO_ACCOUNT, owner=user, rut="76086428-5")
            actor = Actor(user=user)
            gateway = Gateway.objects.filter(account=account).first()
            if gateway is None:
                source = SourceConnection.objects.create(
                    account=account, name="Tienda Demo", platform=Platform.DEMO, store_url="https://demo.billmysales.local"
                )
                biller = BillerConnection.objects.create(
                    account=account, name="Sandbox", provider=Provider.SANDBOX, environment=Environment.CERTIFICATION,
                    emisor_rut="76086428-5", emisor_razon_social=DEMO_ACCOUNT,
                    emisor_giro="Venta al por menor por internet", emisor_acteco=479100,
                    emisor_address="Av. Providencia 1234", emisor_comuna="Providencia",
                )
                gateway = gateway_create(account=account, name="Tienda Demo → Sandbox", source=source, biller=biller, actor=actor)
                gateway_activate(gateway=gateway, actor=actor)
        payload = demo_order_payload(number=1001)
        _, created = inbound_event_receive(gateway=gateway, delivery_id="seed-order-1001", topic="orders/paid", payload=payload)
        self.stdout.write(json.dumps({"email": DEMO_EMAIL, "password": DEMO_PASSWORD, "account": account.pk, "gateway": gateway.pk, "order_queued": created}))
        self.stdout.write(self.style.SUCCESS(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}"))
