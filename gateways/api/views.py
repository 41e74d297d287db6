"""REST API for gateways, orders and documents. Every view is scoped by ``AccountScopedViewSet``."""
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from accounts.scoping import AccountScopedViewSet
from billers.models import BillerConnection
from rules.api.serializers import RuleSetSerializer
from rules.services import effective_field_mapping, ruleset_update
from sources.models import SourceConnection
from sources.registry import SourceNotRegistered, source_adapter_class

from .. import selectors, services
from ..models import Document, Emission, EmissionAttempt, Gateway, Order, OrderStatus, SideEffect


class KeysetPagination(CursorPagination):
    """Keyset pagination on the primary key: the first page costs the same with 1 M rows, no COUNT."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def _django_errors(exc: DjangoValidationError) -> ValidationError:
    return ValidationError({"detail": exc.messages})


class GatewayOutputSerializer(serializers.ModelSerializer):
    source = serializers.PrimaryKeyRelatedField(read_only=True)
    biller = serializers.PrimaryKeyRelatedField(read_only=True)
    webhook_path = serializers.SerializerMethodField()

    class Meta:
        model = Gateway
        fields = ["id", "name", "source", "biller", "environment", "active", "activated_at", "webhook_path", "created_at"]

    def get_webhook_path(self, obj) -> str:
        return f"/hooks/{obj.webhook_token}/"


class GatewayCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120)
    source = serializers.IntegerField()
    biller = serializers.IntegerField()
    environment = serializers.ChoiceField(choices=Gateway.Environment.choices, default=Gateway.Environment.CERTIFICATION)


class BackfillInputSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class RuleSetOutputSerializer(RuleSetSerializer):
    effective_field_mapping = serializers.SerializerMethodField()

    class Meta(RuleSetSerializer.Meta):
        fields = RuleSetSerializer.Meta.fields + ["effective_field_mapping"]

    def get_effective_field_mapping(self, obj) -> dict:
        try:
            defaults = source_adapter_class(obj.gateway.source.platform).default_field_mapping
        except SourceNotRegistered:
            defaults = {}
        return effective_field_mapping(ruleset=obj, field_defaults=defaults)


class GatewayViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    serializer_class = GatewayOutputSerializer
    pagination_class = KeysetPagination

    def scoped_queryset(self):
        return Gateway.objects.all()

    @extend_schema(request=GatewayCreateInputSerializer, responses={201: GatewayOutputSerializer})
    def create(self, request):
        data = GatewayCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # Referenced rows are looked up inside this account: another account's id is "not found".
        source = SourceConnection.objects.filter(account=self.account, pk=data.validated_data["source"]).first()
        biller = BillerConnection.objects.filter(account=self.account, pk=data.validated_data["biller"]).first()
        if source is None or biller is None:
            raise ValidationError({"detail": "El origen de datos o el facturador no existe en esta cuenta."})
        try:
            gateway = services.gateway_create(
                account=self.account, name=data.validated_data["name"], source=source, biller=biller,
                environment=data.validated_data["environment"], actor=self.actor,
            )
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(GatewayOutputSerializer(gateway).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: GatewayOutputSerializer})
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        gateway = services.gateway_activate(gateway=self.get_object(), actor=self.actor)
        return Response(GatewayOutputSerializer(gateway).data)

    @extend_schema(request=None, responses={200: GatewayOutputSerializer})
    @action(detail=True, methods=["post"])
    def deactivate(self, request, pk=None):
        gateway = services.gateway_deactivate(gateway=self.get_object(), actor=self.actor)
        return Response(GatewayOutputSerializer(gateway).data)

    @extend_schema(request=BackfillInputSerializer, responses={200: serializers.DictField()})
    @action(detail=True, methods=["post"])
    def backfill(self, request, pk=None):
        data = BackfillInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        count = services.orders_backfill(gateway=self.get_object(), actor=self.actor, **data.validated_data)
        return Response({"orders": count})

    @extend_schema(methods=["GET"], responses={200: RuleSetOutputSerializer})
    @extend_schema(methods=["PATCH"], request=RuleSetSerializer, responses={200: RuleSetOutputSerializer})
    @action(detail=True, methods=["get", "patch"])
    def rules(self, request, pk=None):
        """The gateway's billing rules; PATCH changes only the fields sent."""
        ruleset = self.get_object().ruleset
        if request.method == "PATCH":
            data = RuleSetSerializer(ruleset, data=request.data, partial=True)
            data.is_valid(raise_exception=True)
            try:
                ruleset = ruleset_update(ruleset=ruleset, actor=self.actor, **data.validated_data)
            except DjangoValidationError as exc:
                raise ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}) from exc
        return Response(RuleSetOutputSerializer(ruleset).data)

    @extend_schema(request=None, responses={200: serializers.DictField()})
    @action(detail=True, methods=["post"], url_path="test-sale")
    def test_sale(self, request, pk=None):
        report = services.gateway_test_sale(gateway=self.get_object(), actor=self.actor)
        return Response(report.as_dict(), status=status.HTTP_200_OK if report.ok else status.HTTP_422_UNPROCESSABLE_ENTITY)


class AttemptOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = EmissionAttempt
        fields = ["number", "outcome", "error_class", "error_message", "started_at", "duration_ms", "request_summary"]


class SideEffectOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = SideEffect
        fields = ["kind", "outcome", "message", "updated_at"]


class DocumentOutputSerializer(serializers.ModelSerializer):
    order = serializers.PrimaryKeyRelatedField(read_only=True)
    side_effects = SideEffectOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Document
        fields = [
            "id", "order", "kind", "sequence", "tipo_dte", "folio", "fecha", "mnt_total", "totals",
            "certification", "biller_document_id", "pdf_url", "credited_document", "issued_at", "side_effects",
        ]


class EmissionOutputSerializer(serializers.ModelSerializer):
    attempts = AttemptOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Emission
        fields = ["kind", "sequence", "reference", "status", "status_reason", "attempt_count", "next_attempt_at", "attempts"]


class OrderListOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Order
        fields = [
            "id", "gateway", "external_id", "number", "status", "status_reason", "payment_status",
            "paid_total", "currency", "buyer_name", "is_test", "received_at", "updated_at",
        ]


class OrderDetailOutputSerializer(OrderListOutputSerializer):
    decision = serializers.JSONField()
    emissions = EmissionOutputSerializer(many=True, read_only=True)
    documents = DocumentOutputSerializer(many=True, read_only=True)

    class Meta(OrderListOutputSerializer.Meta):
        fields = OrderListOutputSerializer.Meta.fields + ["buyer_email", "decision", "emissions", "documents"]


class OrderFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=OrderStatus.choices)
    gateway = filters.NumberFilter()
    number = filters.CharFilter()

    class Meta:
        model = Order
        fields = ["status", "gateway", "number"]


class SkipInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=500)


class BulkEmitInputSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(), max_length=500)


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    pagination_class = KeysetPagination
    filterset_class = OrderFilter

    def scoped_queryset(self):
        if self.action == "retrieve":
            return selectors.order_detail_queryset()
        return Order.objects.all()

    def get_serializer_class(self):
        return OrderDetailOutputSerializer if self.action != "list" else OrderListOutputSerializer

    def _act(self, fn, order=None, **kwargs):
        try:
            order = fn(order=order or self.get_object(), actor=self.actor, **kwargs)
        except DjangoValidationError as exc:
            raise _django_errors(exc) from exc
        return Response(OrderDetailOutputSerializer(selectors.order_detail_queryset().get(pk=order.pk)).data)

    @extend_schema(request=None, responses={200: OrderDetailOutputSerializer})
    @action(detail=True, methods=["post"])
    def emit(self, request, pk=None):
        return self._act(services.order_emit_now)

    @extend_schema(request=None, responses={200: OrderDetailOutputSerializer})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        return self._act(services.order_retry)

    @extend_schema(request=SkipInputSerializer, responses={200: OrderDetailOutputSerializer})
    @action(detail=True, methods=["post"])
    def skip(self, request, pk=None):
        order = self.get_object()
        data = SkipInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._act(services.order_skip, order=order, reason=data.validated_data["reason"])

    @extend_schema(request=BulkEmitInputSerializer, responses={200: serializers.DictField()})
    @action(detail=False, methods=["post"], url_path="bulk-emit")
    def bulk_emit(self, request):
        data = BulkEmitInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        results = services.orders_bulk_emit(account=self.account, order_ids=data.validated_data["ids"], actor=self.actor)
        return Response({"results": results})


class DocumentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    serializer_class = DocumentOutputSerializer
    pagination_class = KeysetPagination
    filterset_fields = ["kind", "tipo_dte", "order"]

    def scoped_queryset(self):
        return Document.objects.select_related("biller").prefetch_related("side_effects")

    @extend_schema(responses={(200, "application/xml"): bytes})
    @action(detail=True, methods=["get"])
    def xml(self, request, pk=None):
        document = self.get_object()
        response = HttpResponse(bytes(document.xml), content_type="application/xml; charset=ISO-8859-1")
        response["Content-Disposition"] = f'attachment; filename="{selectors.document_filename(document=document, extension="xml")}"'
        return response

    @extend_schema(responses={(200, "application/pdf"): bytes})
    @action(detail=True, methods=["get"])
    def pdf(self, request, pk=None):
        document = self.get_object()
        response = HttpResponse(services.document_pdf_bytes(document=document), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{selectors.document_filename(document=document, extension="pdf")}"'
        return response

