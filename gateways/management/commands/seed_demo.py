import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Account, User
from accounts.services import Actor, account_create
from billers.models import Environment
from billers.services import biller_connection_create
from gateways.models import Gateway
from gateways.services import gateway_activate, gateway_create, inbound_event_receive
from sources.demo.adapter import DemoSource
from sources.services import source_connection_create

DEMO_EMAIL = "demo@billmysales.local"
DEMO_PASSWORD = "demo-billmysales"
SUPPORT_EMAIL = "soporte-demo@billmysales.local"
SUPPORT_PASSWORD = "soporte-demo-billmysales"
DEMO_ACCOUNT = "Tienda Demo SpA"


class Command(BaseCommand):
    help = (
        "Demo only: creates the demo account (Demo store → Sandbox biller, active), one paid demo order, "
        "and a separate staff user for support mode. Idempotent. Refused under production settings."
    )

    def handle(self, *args, **options):
        if not settings.BMS_DEMO_SEED_ALLOWED:
            raise CommandError("seed_demo is for the demo and development only; these settings do not allow it.")
        with transaction.atomic():
            user = User.objects.filter(email=DEMO_EMAIL).first()
            if user is None:
                user = User.objects.create_user(DEMO_EMAIL, DEMO_PASSWORD, full_name="Usuaria Demo")
            if not User.objects.filter(email=SUPPORT_EMAIL).exists():
                User.objects.create_user(SUPPORT_EMAIL, SUPPORT_PASSWORD, full_name="Soporte Demo", is_staff=True)
            account = Account.objects.filter(name=DEMO_ACCOUNT, memberships__user=user).first()
            if account is None:
                account = account_create(name=DEMO_ACCOUNT, owner=user, rut="76086428-5")
            actor = Actor(user=user, role="owner")
            gateway = Gateway.objects.filter(account=account).first()
            if gateway is None:
                source = source_connection_create(account=account, actor=actor, name="Tienda Demo", platform=DemoSource.platform)
                biller = biller_connection_create(
                    account=account, actor=actor, name="Sandbox", provider="sandbox", environment=Environment.CERTIFICATION,
                    emisor_rut="76086428-5", emisor_razon_social=DEMO_ACCOUNT,
                    emisor_giro="Venta al por menor por internet", emisor_acteco=479100,
                    emisor_address="Av. Providencia 1234", emisor_comuna="Providencia",
                )
                gateway = gateway_create(account=account, name="Tienda Demo → Sandbox", source=source, biller=biller, actor=actor)
                gateway_activate(gateway=gateway, actor=actor, reason="Cuenta de demostración: Tienda Demo y Sandbox.")
        payload = DemoSource.sample_order(number=1001)
        _, created = inbound_event_receive(gateway=gateway, delivery_id="seed-order-1001", topic="orders/paid", payload=payload)
        self.stdout.write(json.dumps({
            "email": DEMO_EMAIL, "password": DEMO_PASSWORD, "support_email": SUPPORT_EMAIL,
            "account": account.pk, "gateway": gateway.pk, "order_queued": created,
        }))
        self.stdout.write(self.style.SUCCESS(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}"))
        self.stdout.write(f"Support-mode login (staff, demo only): {SUPPORT_EMAIL} / {SUPPORT_PASSWORD}")
