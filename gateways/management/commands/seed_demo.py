import json

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.models import Account, User
from accounts.services import Actor, account_create
from billers.models import BillerConnection, Environment
from billers.services import biller_connection_create
from gateways.models import Document, Gateway
from gateways.services import gateway_activate, gateway_create, inbound_event_receive
from sources.demo.adapter import DemoSource
from sources.services import source_connection_create

DEMO_EMAIL = "demo@billmysales.local"
DEMO_PASSWORD = "demo-billmysales"
SUPPORT_EMAIL = "soporte-demo@billmysales.local"
SUPPORT_PASSWORD = "soporte-demo-billmysales"
DEMO_ACCOUNT = "Tienda Demo SpA"
DEMO_RUT = "76086428-5"
EMISOR = {
    "emisor_rut": DEMO_RUT, "emisor_razon_social": DEMO_ACCOUNT, "emisor_giro": "Venta al por menor por internet",
    "emisor_acteco": 479100, "emisor_address": "Av. Providencia 1234", "emisor_comuna": "Providencia",
}
# The LibreDTE simulator's user: any 32 characters (the simulator has no passwords).
LIBREDTE_HASH = "demo0000000000000000000000000000"
LIBREDTE_GATEWAY = "Tienda Demo → LibreDTE (simulado)"


class Command(BaseCommand):
    help = (
        "Demo only: creates the demo account (Demo store → Sandbox biller, active), one paid demo order, "
        "and a separate staff user for support mode. Idempotent. Refused under production settings."
    )

    def add_arguments(self, parser):
        parser.add_argument("--libredte-url", default="", help="A running LibreDTE simulator: adds a second gateway that issues there.")

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
                account = account_create(name=DEMO_ACCOUNT, owner=user, rut=DEMO_RUT)
            actor = Actor(user=user, role="owner")
            gateway = Gateway.objects.filter(account=account).exclude(name=LIBREDTE_GATEWAY).first()
            if gateway is None:
                source = source_connection_create(account=account, actor=actor, name="Tienda Demo", platform=DemoSource.platform)
                biller = biller_connection_create(
                    account=account, actor=actor, name="Sandbox", provider="sandbox", environment=Environment.CERTIFICATION, **EMISOR,
                )
                gateway = gateway_create(account=account, name="Tienda Demo → Sandbox", source=source, biller=biller, actor=actor)
                gateway_activate(gateway=gateway, actor=actor, reason="Cuenta de demostración: Tienda Demo y Sandbox.")
        payload = DemoSource.sample_order(number=1001)
        _, created = inbound_event_receive(gateway=gateway, delivery_id="seed-order-1001", topic="orders/paid", payload=payload)
        summary = {"email": DEMO_EMAIL, "password": DEMO_PASSWORD, "support_email": SUPPORT_EMAIL,
                   "account": account.pk, "gateway": gateway.pk, "order_queued": created}
        if options["libredte_url"]:
            libredte = self._libredte_gateway(account, actor, options["libredte_url"].rstrip("/"))
            _, queued = inbound_event_receive(gateway=libredte, delivery_id="seed-order-2001", topic="orders/paid",
                                              payload=DemoSource.sample_order(number=2001))
            summary.update(libredte_gateway=libredte.pk, libredte_order_queued=queued)
        self.stdout.write(json.dumps(summary))
        self.stdout.write(self.style.SUCCESS(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}"))
        self.stdout.write(f"Support-mode login (staff, demo only): {SUPPORT_EMAIL} / {SUPPORT_PASSWORD}")

    def _libredte_gateway(self, account: Account, actor: Actor, url: str) -> Gateway:
        """A second gateway issuing at the LibreDTE simulator: the company is registered there with folios
        that continue after the documents this demo database already holds (the simulator starts empty)."""
        with transaction.atomic():
            gateway = Gateway.objects.filter(account=account, name=LIBREDTE_GATEWAY).select_related("biller").first()
            if gateway is None:
                source = source_connection_create(account=account, actor=actor, name="Tienda Demo 2", platform=DemoSource.platform)
                biller = biller_connection_create(
                    account=account, actor=actor, name="LibreDTE (simulado)", provider="libredte",
                    environment=Environment.CERTIFICATION, credentials={"api_hash": LIBREDTE_HASH},
                    config={"base_url": url}, **EMISOR,
                )
                gateway = gateway_create(account=account, name=LIBREDTE_GATEWAY, source=source, biller=biller, actor=actor)
                gateway_activate(gateway=gateway, actor=actor, reason="Cuenta de demostración: LibreDTE simulado.")
            elif gateway.biller.config.get("base_url") != url:
                BillerConnection.objects.filter(pk=gateway.biller_id).update(config={**gateway.biller.config, "base_url": url})
        folios = {}
        for tipo in (33, 34, 39, 41, 56, 61):
            issued = Document.objects.filter(biller_id=gateway.biller_id, tipo_dte=tipo).order_by("-folio").values_list("folio", flat=True)
            next_folio = (issued.first() or 0) + 1
            folios[str(tipo)] = {"desde": 1, "hasta": next_folio + 100_000, "siguiente": next_folio}
        answer = requests.post(f"{url}/_sim/companies", timeout=10, json={
            "rut": DEMO_RUT, "razon_social": DEMO_ACCOUNT, "giro": EMISOR["emisor_giro"], "acteco": EMISOR["emisor_acteco"],
            "direccion": EMISOR["emisor_address"], "comuna": EMISOR["emisor_comuna"], "hash": LIBREDTE_HASH,
            "folios": folios, "certificacion": True,
        })
        if answer.status_code != 200:
            raise CommandError(f"The LibreDTE simulator at {url} refused the demo company: {answer.status_code} {answer.text[:300]}")
        return gateway
