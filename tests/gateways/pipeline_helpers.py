"""Helpers to drive the pipeline in-process: the same services the workers run, called directly."""
import copy

from gateways.emission import emission_run
from gateways.models import Emission, EmissionStatus


def run_pending(order) -> list:
    """Runs every due emission of ``order`` once, as a worker would; returns the documents issued."""
    documents = []
    for emission in Emission.objects.filter(order=order, status=EmissionStatus.PENDING).order_by("id"):
        document = emission_run(emission_id=emission.pk)
        if document is not None:
            documents.append(document)
    return documents


def with_refund(payload: dict, *, refund_id: int, amount: int, lines: list[tuple[int, int, int]] = ()) -> dict:
    """The Shopify-shaped payload with one more successful refund: ``lines`` = (line id, qty, gross amount)."""
    payload = copy.deepcopy(payload)
    payload.setdefault("refunds", []).append(
        {
            "id": refund_id,
            "created_at": payload["created_at"],
            "note": "Devolución del cliente",
            "refund_line_items": [
                {"line_item_id": line_id, "quantity": qty, "subtotal": f"{gross}.00", "total_tax": "0.00"}
                for line_id, qty, gross in lines
            ],
            "transactions": [{"kind": "refund", "status": "success", "amount": f"{amount}.00"}],
            "order_adjustments": [],
        }
    )
    payload["financial_status"] = "refunded" if amount >= int(payload["total_price"][:-3]) else "partially_refunded"
    return payload
