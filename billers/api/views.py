from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.fields import mask
from accounts.scoping import AccountScopedViewSet
from billmysales.api.fields import StrictModelSerializer
from billmysales.integrations.serializers import ConnectionReportSerializer, ConnectionTypeSerializer
from billmysales.integrations.spec import describe

from ..models import BillerConnection
from ..registry import BILLER_ADAPTERS, provider_choices
from ..services import biller_connection_create, biller_connection_delete, biller_connection_test, biller_connection_update


class BillerConnectionSerializer(StrictModelSerializer):
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
    """Credentials are checked against the adapter's declared spec (``/api/v1/biller-types/``) and never shown
    again; a connection a gateway uses cannot be deleted (409 ``in_use``)."""
    serializer_class = BillerConnectionSerializer

    def scoped_queryset(self):
        return BillerConnection.objects.order_by("name")

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        biller_connection_delete(connection=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def perform_create(self, serializer):
        serializer.instance = biller_connection_create(account=self.account, actor=self.actor, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = biller_connection_update(connection=serializer.instance, actor=self.actor, **serializer.validated_data)

    @extend_schema(request=None, responses={200: ConnectionReportSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """"Probar conexión": what could be checked at the vendor, item by item, in words."""
        return Response(biller_connection_test(connection=self.get_object()).as_dict())


class BillerTypeApi(APIView):
    """The biller types this installation can connect, with the credentials and settings each one declares."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: ConnectionTypeSerializer(many=True)})
    def get(self, request):
        return Response([
            {
                "type": name, "label": adapter.display_name() if hasattr(adapter, "display_name") else str(adapter.label),
                "credentials": describe(adapter.credentials_spec), "config": describe(adapter.config_spec),
            }
            for name, adapter in BILLER_ADAPTERS.items()
        ])
