"""REST API for gateways, orders, documents, unread deliveries and outgoing webhooks. Every view is
scoped by ``AccountScopedViewSet``; objects named in a body are looked up inside the account, so another
account's id is "not found"."""
import csv

from django.db import transaction
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.scoping import AccountScopedViewSet, request_account
from billers.dte.display import document_name
from billers.models import BillerConnection
from billmysales.api.errors import ApiError
from billmysales.api.filters import BooleanFilter, ChoiceFilter, DateFilter, DateTimeFilter, IntegerFilter
from rules.api.serializers import RuleSetSerializer
from rules.services import effective_field_mapping, ruleset_update
from sources.models import SourceConnection
from sources.registry import SourceNotRegistered, source_adapter_class

from .. import outbox, polling, selectors, services
from ..models import (
    BackfillJob,
    Document,
    DocumentKind,
    Gateway,
    InboundEvent,
    Order,
    OrderStatus,
    SiiStatus,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)
from ..services.manual_credit_notes import order_credit_note_request
from ..services.webhook_endpoints import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_update,
)
from ..services.webhooks_setup import gateway_webhooks_enqueue
from .serializers import (
    ActivateInputSerializer,
    BackfillInputSerializer,
    BackfillJobSerializer,
    BulkEmitInputSerializer,
    BulkEmitOutputSerializer,
    CreditNoteInputSerializer,
    DocumentOutputSerializer,
    GatewayCreateInputSerializer,
    GatewayOutputSerializer,
    GatewayUpdateInputSerializer,
    OrderDetailOutputSerializer,
    OrderListOutputSerializer,
    SkipInputSerializer,
    TestSaleReportSerializer,
    TextCorrectionInputSerializer,
    UnreadDeliverySerializer,
    WebhookDeliverySerializer,
    WebhookEndpointCreatedSerializer,
    WebhookEndpointSerializer,
)

# Why an order was not emitted → the error code integrators branch on.
REFUSAL_CODES = {"currency": "currency_not_supported", "invalid_rut": "invalid_rut", "total_mismatch": "total_mismatch"}


class RuleSetOutputSerializer(RuleSetSerializer):
    effective_field_mapping = serializers.SerializerMethodField()

    class Meta(RuleSetSerializer.Meta):
        fields = RuleSetSerializer.Meta.fields + ["effective_field_mapping"]

    def get_effective_field_mapping(self, obj) -> dict[str, str]:
        try:
            defaults = source_adapter_class(obj.gateway.source.platform).default_field_mapping
        except SourceNotRegistered:
            defaults = {}
        return effective_field_mapping(ruleset=obj, field_defaults=defaults)


class GatewayViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """Gateways: one store joined to one biller under one set of rules."""

    serializer_class = GatewayOutputSerializer

    def scoped_queryset(self):
        return Gateway.objects.select_related("source", "biller", "ruleset")

    def _connections(self, data: dict) -> dict:
        """The source and biller named in the body, looked up inside this account only."""
        found = {}
        for field, model in (("source", SourceConnection), ("biller", BillerConnection)):
            if field in data:
                found[field] = model.objects.filter(account=self.account, pk=data[field]).first()
                if found[field] is None:
                    message = _("No existe en esta cuenta.")
                    raise ApiError("not_found", message, status=404, fields={field: [message]})
        return found

    @extend_schema(request=GatewayCreateInputSerializer, responses={201: GatewayOutputSerializer})
    def create(self, request):
        data = GatewayCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        connections = self._connections(data.validated_data)
        gateway = services.gateway_create(
            account=self.account, name=data.validated_data["name"], environment=data.validated_data["environment"],
            actor=self.actor, **connections,
        )
        return Response(GatewayOutputSerializer(gateway).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=GatewayUpdateInputSerializer, responses={200: GatewayOutputSerializer})
    def partial_update(self, request, pk=None):
        gateway = self.get_object()
        data = GatewayUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changes = {**data.validated_data, **self._connections(data.validated_data)}
        gateway = services.gateway_update(gateway=gateway, actor=self.actor, **changes)
        return Response(GatewayOutputSerializer(gateway).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.gateway_delete(gateway=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=ActivateInputSerializer, responses={200: GatewayOutputSerializer})
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        """Needs a test sale that passed, or an owner or admin who gives the reason."""
        gateway = self.get_object()
        data = ActivateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        gateway = services.gateway_activate(gateway=gateway, actor=self.actor, reason=data.validated_data["reason"])
        return Response(GatewayOutputSerializer(gateway).data)

    @extend_schema(request=None, responses={200: GatewayOutputSerializer})
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        gateway = services.gateway_deactivate(gateway=self.get_object(), actor=self.actor)
        return Response(GatewayOutputSerializer(gateway).data)

    @extend_schema(request=BackfillInputSerializer, responses={202: BackfillJobSerializer})
    @action(detail=True, methods=["post"])
    def backfill(self, request, pk=None):
        """Fetches and bills the gateway's orders of a date range; follow the job's progress at /backfills/{id}/."""
        gateway = self.get_object()
        data = BackfillInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = polling.backfill_job_create(gateway=gateway, actor=self.actor, **data.validated_data)
        except ValueError as exc:
            raise ApiError("invalid", str(exc), fields={"end": [str(exc)]}) from exc
        return Response(BackfillJobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(methods=["GET"], responses={200: RuleSetOutputSerializer})
    @extend_schema(methods=["PATCH"], request=RuleSetSerializer, responses={200: RuleSetOutputSerializer})
    @action(detail=True, methods=["get", "patch"])
    def rules(self, request, pk=None):
        """The gateway's billing rules; PATCH changes only the fields sent."""
        ruleset = self.get_object().ruleset
        if request.method == "PATCH":
            data = RuleSetSerializer(ruleset, data=request.data, partial=True)
            data.is_valid(raise_exception=True)
            ruleset = ruleset_update(ruleset=ruleset, actor=self.actor, **data.validated_data)
        return Response(RuleSetOutputSerializer(ruleset).data)

    @extend_schema(request=None, responses={200: TestSaleReportSerializer, 422: TestSaleReportSerializer})
    @action(detail=True, methods=["post"], url_path="test-sale")
    def test_sale(self, request, pk=None):
        """A sample order in the store's own shape through the real pipeline and the biller in certification."""
        report = services.gateway_test_sale(gateway=self.get_object(), actor=self.actor)
        return Response(report.as_dict(), status=status.HTTP_200_OK if report.ok else status.HTTP_422_UNPROCESSABLE_ENTITY)

    @extend_schema(request=None, responses={202: OpenApiResponse(description=gettext_lazy("Suscripción en cola"))})
    @action(detail=True, methods=["post"], url_path="subscribe-webhooks")
    def subscribe_webhooks(self, request, pk=None):
        """Subscribes the gateway's address at its store again (stores that allow it)."""
        with transaction.atomic():
            gateway_webhooks_enqueue(self.get_object())
        return Response({"queued": True}, status=status.HTTP_202_ACCEPTED)


class BackfillJobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """Backfills and their progress."""

    serializer_class = BackfillJobSerializer

    def scoped_queryset(self):
        return BackfillJob.objects.all()


class OrderFilter(filters.FilterSet):
    status = ChoiceFilter(choices=OrderStatus.choices)
    gateway = IntegerFilter()
    number = filters.CharFilter()
    document_type = IntegerFilter(field_name="documents__tipo_dte", distinct=True,
                                  help_text=gettext_lazy("Órdenes con un documento de este tipo (39, 33, 61…)."))
    received_after = DateTimeFilter(field_name="received_at", lookup_expr="gte")
    received_before = DateTimeFilter(field_name="received_at", lookup_expr="lt")
    q = filters.CharFilter(method="search", help_text=gettext_lazy("Número de orden, RUT, correo, folio o id externo."))

    class Meta:
        model = Order
        fields = ["status", "gateway", "number", "document_type", "received_after", "received_before", "q"]

    def search(self, queryset, name, value):
        account, _role, _support = request_account(self.request)
        return selectors.order_search(queryset, value, account=account)


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """Orders: what the store sent, what the rules decided and why, and the documents."""

    filterset_class = OrderFilter

    def scoped_queryset(self):
        if self.action == "list":
            return Order.objects.all()
        return selectors.order_detail_queryset()

    def get_serializer_class(self):
        return OrderListOutputSerializer if self.action == "list" else OrderDetailOutputSerializer

    def _answer(self, order: Order, refused_if_not=None):
        order = selectors.order_detail_queryset().get(pk=order.pk)
        if refused_if_not is not None and order.status not in refused_if_not:
            reasons = order.decision.get("reasons") or []
            code = REFUSAL_CODES.get(reasons[-1]["code"], "not_emitted") if reasons else "not_emitted"
            raise ApiError(code, _("La orden quedó %(status)s: %(reason)s") % {
                "status": order.get_status_display().lower(), "reason": order.status_reason}, status=422)
        return Response(OrderDetailOutputSerializer(order).data)

    @extend_schema(request=None, responses={200: OrderDetailOutputSerializer})
    @action(detail=True, methods=["post"])
    def emit(self, request, pk=None):
        """Emit now (rules re-run; manual mode and an inactive gateway do not make it wait)."""
        order = services.order_emit_now(order=self.get_object(), actor=self.actor)
        return self._answer(order, refused_if_not=(OrderStatus.READY, OrderStatus.ISSUING, OrderStatus.ISSUED))

    @extend_schema(request=None, responses={200: OrderDetailOutputSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return self._answer(services.order_retry(order=self.get_object(), actor=self.actor))

    @extend_schema(request=SkipInputSerializer, responses={200: OrderDetailOutputSerializer})
    @action(detail=True, methods=["post"])
    def skip(self, request, pk=None):
        order = self.get_object()
        data = SkipInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._answer(services.order_skip(order=order, reason=data.validated_data["reason"], actor=self.actor))

    @extend_schema(request=CreditNoteInputSerializer, responses={202: OrderDetailOutputSerializer})
    @action(detail=True, methods=["post"], url_path="credit-note")
    def credit_note(self, request, pk=None):
        """A credit note by hand: the whole document (no lines) or some of its lines."""
        order = self.get_object()
        data = CreditNoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        order_credit_note_request(order=order, actor=self.actor, reason=data.validated_data["reason"],
                                  lines=data.validated_data.get("lines"))
        response = self._answer(order)
        response.status_code = status.HTTP_202_ACCEPTED
        return response

    @extend_schema(request=TextCorrectionInputSerializer, responses={202: OrderDetailOutputSerializer})
    @action(detail=True, methods=["post"], url_path="text-correction")
    def text_correction(self, request, pk=None):
        """Corrects the receptor's text on the order's issued factura with a zero-amount credit note (CodRef 2)."""
        order = self.get_object()
        data = TextCorrectionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        corrections = {name: value for name, value in data.validated_data.items() if name != "reason"}
        services.order_text_correction(order=order, corrections=corrections, reason=data.validated_data["reason"],
                                       actor=self.actor)
        response = self._answer(order)
        response.status_code = status.HTTP_202_ACCEPTED
        return response

    @extend_schema(request=BulkEmitInputSerializer, responses={200: BulkEmitOutputSerializer})
    @action(detail=False, methods=["post"], url_path="bulk-emit")
    def bulk_emit(self, request):
        data = BulkEmitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        results = services.orders_bulk_emit(account=self.account, order_ids=data.validated_data["ids"], actor=self.actor)
        return Response({"results": results})


class DocumentFilter(filters.FilterSet):
    kind = ChoiceFilter(choices=DocumentKind.choices)
    tipo_dte = IntegerFilter()
    order = IntegerFilter()
    gateway = IntegerFilter(field_name="order__gateway")
    folio = IntegerFilter()
    certification = BooleanFilter()
    sii_status = ChoiceFilter(choices=SiiStatus.choices)
    fecha_from = DateFilter(field_name="fecha", lookup_expr="gte")
    fecha_to = DateFilter(field_name="fecha", lookup_expr="lte")

    class Meta:
        model = Document
        fields = ["kind", "tipo_dte", "order", "gateway", "folio", "certification", "sii_status", "fecha_from", "fecha_to"]


CSV_COLUMNS = ["id", "fecha", "tipo_dte", "documento", "folio", "total", "neto", "iva", "exento", "orden", "pasarela",
               "certificacion", "estado_sii"]


class _Echo:
    def write(self, value):
        return value


class DocumentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """Issued documents, their files and a CSV export."""

    serializer_class = DocumentOutputSerializer
    filterset_class = DocumentFilter

    def scoped_queryset(self):
        return Document.objects.select_related("biller").prefetch_related("side_effects")

    @staticmethod
    def _file(read, document: Document) -> bytes:
        try:
            return read(document=document)
        except services.DocumentFileUnavailable as exc:
            raise ApiError("file_unavailable", str(exc), status=404) from None

    @extend_schema(responses={(200, "application/xml"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def xml(self, request, pk=None):
        document = self.get_object()
        response = HttpResponse(self._file(services.document_xml_bytes, document), content_type="application/xml; charset=ISO-8859-1")
        response["Content-Disposition"] = f'attachment; filename="{selectors.document_filename(document=document, extension="xml")}"'
        return response

    @extend_schema(responses={(200, "application/pdf"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"])
    def pdf(self, request, pk=None):
        document = self.get_object()
        response = HttpResponse(self._file(services.document_pdf_bytes, document), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{selectors.document_filename(document=document, extension="pdf")}"'
        return response

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR}, filters=True)
    @action(detail=False, methods=["get"])
    def export(self, request):
        """The filtered documents as CSV (UTF-8), for accounting."""
        documents = self.filter_queryset(self.get_queryset()).select_related("order").order_by("-id")
        writer = csv.writer(_Echo())

        def rows():
            yield "\ufeff" + writer.writerow(CSV_COLUMNS)
            for d in documents.iterator(chunk_size=1000):
                t = d.totals or {}
                yield writer.writerow([
                    d.pk, d.fecha.isoformat(), d.tipo_dte, document_name(d.tipo_dte), d.folio, d.mnt_total, t.get("MntNeto", ""),
                    t.get("IVA", ""), t.get("MntExe", ""), d.order.number, d.order.gateway_id, "sí" if d.certification else "no",
                    d.get_sii_status_display(),
                ])

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="documentos.csv"'
        return response


class UnreadDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """Store deliveries whose order could not be read or processed, with the reason; reprocess after a fix."""

    serializer_class = UnreadDeliverySerializer

    def scoped_queryset(self):
        return InboundEvent.objects.filter(status__in=selectors.UNREAD_STATUSES).only(
            "id", "gateway_id", "delivery_id", "topic", "status", "error", "attempts", "received_at", "processed_at", "account_id"
        )

    @extend_schema(request=None, responses={202: UnreadDeliverySerializer})
    @action(detail=True, methods=["post"])
    def reprocess(self, request, pk=None):
        try:
            event = services.inbound_event_reprocess(event=self.get_object(), actor=self.actor)
        except ValueError as exc:
            raise ApiError("not_reprocessable", str(exc), status=422) from exc
        return Response(UnreadDeliverySerializer(event).data, status=status.HTTP_202_ACCEPTED)


class WebhookEndpointViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet,
):
    """Where the account's events are delivered (signed; see the README for verifying the signature)."""

    serializer_class = WebhookEndpointSerializer

    def scoped_queryset(self):
        return WebhookEndpoint.objects.all()

    @extend_schema(
        request=WebhookEndpointSerializer, responses={201: WebhookEndpointCreatedSerializer},
        examples=[OpenApiExample(gettext_lazy("Documentos emitidos"), request_only=True,
                                 value={"url": "https://erp.example.cl/hooks/billmysales", "events": ["document.issued"]})],
    )
    def create(self, request):
        data = WebhookEndpointSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = webhook_endpoint_create(account=self.account, actor=self.actor, **data.validated_data)
        return Response(WebhookEndpointCreatedSerializer(endpoint).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=WebhookEndpointSerializer, responses={200: WebhookEndpointSerializer})
    def partial_update(self, request, pk=None):
        endpoint = self.get_object()
        data = WebhookEndpointSerializer(endpoint, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(WebhookEndpointSerializer(webhook_endpoint_update(endpoint=endpoint, actor=self.actor, **data.validated_data)).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        webhook_endpoint_delete(endpoint=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: WebhookEndpointCreatedSerializer})
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request, pk=None):
        endpoint = webhook_endpoint_rotate_secret(endpoint=self.get_object(), actor=self.actor)
        return Response(WebhookEndpointCreatedSerializer(endpoint).data)

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Sends a signed test event to the endpoint."""
        delivery = outbox.webhook_test_event_send(endpoint=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryFilter(filters.FilterSet):
    endpoint = IntegerFilter()
    status = ChoiceFilter(choices=WebhookDelivery.Status.choices)
    event_type = ChoiceFilter(choices=WebhookEventType.choices)

    class Meta:
        model = WebhookDelivery
        fields = ["endpoint", "status", "event_type"]


class WebhookDeliveryViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """Every delivery of every event, with its tries (status code, answer excerpt); re-sendable."""

    serializer_class = WebhookDeliverySerializer
    filterset_class = WebhookDeliveryFilter

    def scoped_queryset(self):
        return WebhookDelivery.objects.prefetch_related("attempt_log")

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    @action(detail=True, methods=["post"])
    def resend(self, request, pk=None):
        delivery = outbox.webhook_delivery_resend(delivery=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

