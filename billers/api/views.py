from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.fields import mask
from accounts.scoping import AccountScopedViewSet
from billmysales.integrations.serializers import ConnectionReportSerializer

from ..models import BillerConnection
from ..registry import provider_choices
from ..services import biller_connection_create, biller_connection_test, biller_connection_update


class BillerConnectionSerializer(serializers.ModelSerializer):
    """Credentials are write-only: the API shows only which keys are set, masked. Both dicts are
    checked against the provider's declared specs by the service, and the RUT by its check digit."""

    provider = serializers.ChoiceField(choices=provider_choices())
    credentials = serializers.DictField(write_only=True, required=False)
    credentials_masked = serializers.SerializerMethodField()
    config = serializers.DictField(required=False)

    class Meta:
        model = BillerConnection
        fields = [
            "id", "name", "provider", "environment", "emisor_rut", "emisor_razon_social", "emisor_giro",
            "emisor_acteco", "emisor_address", "emisor_comuna", "sii_resolution_number", "sii_resolution_date", "credentials",
            "credentials_masked", "config", "created_at",
        ]
        read_only_fields = ["created_at"]

    def get_credentials_masked(self, obj) -> dict:
        return {key: mask(str(value)) for key, value in (obj.credentials or {}).items()}


class BillerConnectionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, AccountScopedViewSet
):
    serializer_class = BillerConnectionSerializer

    def scoped_queryset(self):
        return BillerConnection.objects.order_by("name")

    def perform_create(self, serializer):
        try:
            serializer.instance = biller_connection_create(account=self.account, actor=self.actor, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from exc

    def perform_update(self, serializer):
        try:
            serializer.instance = biller_connection_update(connection=serializer.instance, actor=self.actor, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from exc

    @extend_schema(request=None, responses={200: ConnectionReportSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """"Probar conexión": what could be checked at the vendor, item by item, in words."""
        return Response(biller_connection_test(connection=self.get_object()).as_dict())
