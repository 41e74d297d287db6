"""The rules preview (setup step 4 and the "Reglas" tab): the rules as edited, tried on the store's latest real
order or its sample order through the parser, the rules engine and the biller's build — the document type,
the amount and the receptor it would get, or the reason it would not — with nothing written."""
from decimal import Decimal

import pytest

from gateways.models import Emission, Order
from gateways.services import rules_preview
from rules.models import RuleSet
from sources.shopify.samples import sample_order
from tests.gateways.factories import GatewayFactory, OrderFactory

pytestmark = pytest.mark.django_db


def paid(raw: dict) -> int:
    return int(Decimal(raw["total_price"]))


def edited(gateway, **changes) -> RuleSet:
    ruleset = RuleSet.objects.get(pk=gateway.ruleset_id)
    for name, value in changes.items():
        setattr(ruleset, name, value)
    return ruleset


def test_without_orders_the_stores_sample_order_gets_a_boleta_for_what_was_paid(account):
    gateway = GatewayFactory(account=account, active=False)
    expected = paid(sample_order(number=1001))

    preview = rules_preview(gateway=gateway, ruleset=gateway.ruleset)

    assert preview.sample is True and preview.order_number == "#1001"
    assert (preview.action, preview.tipo_dte, preview.total, preview.paid_total) == ("emit", 39, expected, expected)
    assert (preview.receptor_rut, preview.receptor_name, preview.problem) == ("66666666-6", "Sin RUT", "")
    assert preview.issues is True


def test_the_latest_real_order_of_the_store_is_used_and_nothing_is_written(account):
    gateway = GatewayFactory(account=account, active=False)
    raw = sample_order(number=4242)
    OrderFactory(account=account, gateway=gateway, raw=sample_order(number=4100))
    OrderFactory(account=account, gateway=gateway, raw=raw)
    OrderFactory(account=account, gateway=gateway, raw=sample_order(number=9_000_000_001, test=True), is_test=True)
    orders, emissions = Order.objects.count(), Emission.objects.count()

    preview = rules_preview(gateway=gateway, ruleset=gateway.ruleset)

    assert (preview.sample, preview.order_number, preview.tipo_dte, preview.total) == (False, "#4242", 39, paid(raw))
    assert (Order.objects.count(), Emission.objects.count()) == (orders, emissions)


def test_an_exempt_boleta_and_a_manual_mode_are_said(account):
    gateway = GatewayFactory(account=account)
    raw = sample_order(number=1001)
    preview = rules_preview(gateway=gateway, ruleset=edited(gateway, default_document_type=41, mode="manual"))
    assert (preview.action, preview.tipo_dte, preview.total, preview.manual) == ("emit", 41, paid(raw), True)


def test_a_minimum_amount_above_the_order_skips_it_with_the_reason(account):
    gateway = GatewayFactory(account=account)
    assert paid(sample_order(number=1001)) == 36970
    preview = rules_preview(gateway=gateway, ruleset=edited(gateway, min_amount=10_000_000))
    assert preview.action == "skip" and preview.issues is False
    assert preview.problem == "Monto a facturar $36.970 bajo el mínimo configurado ($10.000.000)."


def test_a_factura_for_a_buyer_without_rut_is_held_with_the_reason(account):
    gateway = GatewayFactory(account=account)
    preview = rules_preview(gateway=gateway, ruleset=edited(gateway, default_document_type=33))
    assert preview.action == "hold" and "RUT" in preview.problem


def test_the_document_is_the_one_the_billers_build_gives(account):
    # BHEXPRESS turns the sale into a boleta de honorarios (900): the preview shows what the biller would issue.
    gateway = GatewayFactory(account=account, biller__provider="bhexpress", biller__credentials={"api_token": "t"})
    preview = rules_preview(gateway=gateway, ruleset=gateway.ruleset)
    assert (preview.action, preview.tipo_dte, preview.total, preview.problem) == ("emit", 900, paid(sample_order(number=1001)), "")


def test_a_sale_the_biller_does_not_issue_is_the_billers_refusal(account):
    gateway = GatewayFactory(account=account, biller__provider="bhexpress", biller__credentials={"api_token": "t"},
                             biller__config={"sales": "exempt"})
    preview = rules_preview(gateway=gateway, ruleset=gateway.ruleset)
    assert (preview.action, preview.tipo_dte, preview.total, preview.issues) == ("emit", 39, None, False)
    assert "no emite boleta electrónica (39)" in preview.problem


def test_the_preview_endpoint_renders_the_form_as_it_stands(session_client, account):
    gateway = GatewayFactory(account=account)
    form = {"default_document_type": 39, "price_basis": "gross", "mode": "auto", "min_amount": 0, "paid_only": "on",
            "shipping_as_line": "on", "factura_on_request": "on"}
    expected = paid(sample_order(number=1001))
    page = session_client.get(f"/gateways/{gateway.pk}/rules/preview/", form).content.decode()
    amount = f"${expected:,}".replace(",", ".")
    assert f"Este pedido recibiría boleta electrónica (39) por {amount}, receptor 66.666.666-6 (Sin RUT)." in page

    page = session_client.get(f"/gateways/{gateway.pk}/rules/preview/", {**form, "min_amount": 90_000_000}).content.decode()
    assert "No se emitiría" in page
    gateway.ruleset.refresh_from_db()
    assert gateway.ruleset.min_amount == 0


def test_an_invalid_field_keeps_its_saved_value_in_the_preview(session_client, account):
    gateway = GatewayFactory(account=account)
    page = session_client.get(f"/gateways/{gateway.pk}/rules/preview/", {
        "default_document_type": 39, "price_basis": "gross", "mode": "auto", "min_amount": 0, "field_mapping": "[1, 2]",
    }).content.decode()
    assert "Este pedido recibiría boleta electrónica (39)" in page and "Hay campos con errores" in page


def test_the_preview_of_another_accounts_gateway_is_404(session_client, other_account):
    gateway = GatewayFactory(account=other_account)
    assert session_client.get(f"/gateways/{gateway.pk}/rules/preview/").status_code == 404
