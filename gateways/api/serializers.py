"""What the pipeline's API reads and answers."""
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import serializers

from billmysales.api.fields import StrictCharField, StrictModelSerializer

from ..models import (
    BackfillJob,
    Document,
    Emission,
    EmissionAttempt,
    Gateway,
    InboundEvent,
    Order,
    SideEffect,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEventType,
)


class GatewayOutputSerializer(StrictModelSerializer):
    source = serializers.PrimaryKeyRelatedField(read_only=True)
    biller = serializers.PrimaryKeyRelatedField(read_only=True)
    webhook_path = serializers.SerializerMethodField()

    class Meta:
        model = Gateway
        fields = ["id", "name", "source", "biller", "environment", "active", "activated_at", "test_passed_at",
                  "webhook_path", "created_at"]

    def get_webhook_path(self, obj) -> str:
        return f"/hooks/{obj.webhook_token}/"


class GatewayCreateInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=120)
    source = serializers.IntegerField(min_value=1)
    biller = serializers.IntegerField(min_value=1)
    environment = serializers.ChoiceField(choices=Gateway.Environment.choices, default=Gateway.Environment.CERTIFICATION)


class GatewayUpdateInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=120, required=False)
    source = serializers.IntegerField(min_value=1, required=False)
    biller = serializers.IntegerField(min_value=1, required=False)
    environment = serializers.ChoiceField(choices=Gateway.Environment.choices, required=False)


class ActivateInputSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500, required=False, allow_blank=True, default="",
                                   help_text=gettext_lazy("Obligatorio para activar sin una venta de prueba correcta (dueños y "
                                                          "administradores)."))


class BackfillInputSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class BackfillJobSerializer(StrictModelSerializer):
    class Meta:
        model = BackfillJob
        fields = ["id", "gateway", "start", "end", "status", "pages", "orders_seen", "orders_ready", "stored_redecided",
                  "error", "created_at", "updated_at", "finished_at"]


class TestSaleStepSerializer(serializers.Serializer):
    name = StrictCharField()
    ok = serializers.BooleanField()
    detail = StrictCharField()


class TestSaleReportSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    order_id = serializers.IntegerField(allow_null=True)
    document_id = serializers.IntegerField(allow_null=True)
    steps = TestSaleStepSerializer(many=True)


class AttemptOutputSerializer(StrictModelSerializer):
    class Meta:
        model = EmissionAttempt
        fields = ["number", "outcome", "error_class", "error_message", "started_at", "duration_ms", "request_summary"]


class SideEffectOutputSerializer(StrictModelSerializer):
    class Meta:
        model = SideEffect
        fields = ["kind", "outcome", "message", "updated_at"]


class DocumentOutputSerializer(StrictModelSerializer):
    order = serializers.PrimaryKeyRelatedField(read_only=True)
    side_effects = SideEffectOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Document
        fields = [
            "id", "order", "kind", "sequence", "tipo_dte", "folio", "fecha", "mnt_total", "totals", "certification",
            "biller_document_id", "pdf_url", "sii_track_id", "sii_status", "sii_status_detail", "credited_document",
            "issued_at", "side_effects",
        ]


class EmissionOutputSerializer(StrictModelSerializer):
    attempts = AttemptOutputSerializer(many=True, read_only=True)

    class Meta:
        model = Emission
        fields = ["kind", "sequence", "reference", "status", "status_reason", "attempt_count", "next_attempt_at", "attempts"]


class OrderListOutputSerializer(StrictModelSerializer):
    class Meta:
        model = Order
        fields = [
            "id", "gateway", "external_id", "number", "status", "status_reason", "payment_status", "paid_total", "currency",
            "buyer_name", "buyer_rut", "is_test", "received_at", "updated_at",
        ]


class OrderDetailOutputSerializer(OrderListOutputSerializer):
    decision = serializers.JSONField()
    emissions = EmissionOutputSerializer(many=True, read_only=True)
    documents = DocumentOutputSerializer(many=True, read_only=True)

    class Meta(OrderListOutputSerializer.Meta):
        fields = OrderListOutputSerializer.Meta.fields + ["buyer_email", "decision", "emissions", "documents"]


class SkipInputSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500)


class BulkEmitInputSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), max_length=500)


class BulkEmitOutputSerializer(serializers.Serializer):
    results = serializers.DictField(child=StrictCharField())


class CreditNoteLineSerializer(serializers.Serializer):
    line_id = StrictCharField(max_length=100)
    quantity = serializers.DecimalField(max_digits=18, decimal_places=6, min_value=0)


class CreditNoteInputSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=500)
    lines = CreditNoteLineSerializer(many=True, required=False,
                                     help_text=gettext_lazy("Líneas a acreditar; sin líneas, la nota anula el documento completo."))


class TextCorrectionInputSerializer(serializers.Serializer):
    """The receptor's right text on an issued factura; only the fields to change."""

    reason = StrictCharField(max_length=500)
    razon_social = StrictCharField(max_length=100, required=False)
    giro = StrictCharField(max_length=40, required=False)
    address = StrictCharField(max_length=70, required=False, help_text=gettext_lazy("Dirección."))
    comuna = StrictCharField(max_length=20, required=False)
    city = StrictCharField(max_length=20, required=False, help_text=gettext_lazy("Ciudad."))

    def validate(self, attrs):
        if len(attrs) == 1:
            raise serializers.ValidationError(_("Indique al menos un campo del receptor que corregir."))
        return attrs


class UnreadDeliverySerializer(StrictModelSerializer):
    class Meta:
        model = InboundEvent
        fields = ["id", "gateway", "delivery_id", "topic", "status", "error", "attempts", "received_at", "processed_at"]


class WebhookEndpointSerializer(StrictModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=[c for c in WebhookEventType.choices
                                                                          if c[0] != WebhookEventType.TEST]),
                                   allow_empty=False)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "description", "events", "active", "disabled_reason", "consecutive_failures", "created_at"]
        read_only_fields = ["id", "disabled_reason", "consecutive_failures", "created_at"]


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    secret = StrictCharField(read_only=True, help_text=gettext_lazy("Para verificar las firmas. Se muestra una sola vez."))

    class Meta(WebhookEndpointSerializer.Meta):
        fields = WebhookEndpointSerializer.Meta.fields + ["secret"]


class WebhookAttemptSerializer(StrictModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = ["number", "started_at", "duration_ms", "status_code", "response_excerpt", "error"]


class WebhookDeliverySerializer(StrictModelSerializer):
    attempt_log = WebhookAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint", "event_id", "event_type", "payload", "status", "attempts", "next_attempt_at",
                  "last_status_code", "last_response", "last_error", "created_at", "delivered_at", "attempt_log"]
