import importlib.util
from urllib.parse import urlencode

from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.fields import mask
from accounts.scoping import AccountScopedViewSet
from billmysales.api.errors import ApiError
from billmysales.api.fields import StrictModelSerializer, StrictURLField
from billmysales.integrations.serializers import ConnectionReportSerializer, ConnectionTypeSerializer
from billmysales.integrations.spec import describe

from ..models import SourceConnection
from ..registry import SOURCE_ADAPTERS, platform_choices
from ..services import source_connection_create, source_connection_delete, source_connection_test, source_connection_update


class SourceConnectionSerializer(StrictModelSerializer):
    """Credentials are write-only: the API shows only which keys are set, masked. Both dicts are
    checked against the platform's declared specs by the service."""

    platform = serializers.ChoiceField(choices=platform_choices())
    credentials = serializers.DictField(write_only=True, required=False)
    credentials_masked = serializers.SerializerMethodField()
    config = serializers.DictField(required=False)

    class Meta:
        model = SourceConnection
        fields = [
            "id", "name", "platform", "store_url", "credentials", "credentials_masked", "config", "status", "status_message",
            "created_at",
        ]
        read_only_fields = ["status", "status_message", "created_at"]

    def get_credentials_masked(self, obj) -> dict:
        return {key: mask(str(value)) for key, value in (obj.credentials or {}).items()}


def connect_platforms() -> list[str]:
    return [platform for platform in SOURCE_ADAPTERS if importlib.util.find_spec(f"sources.{platform}.urls") is not None]


class ConnectUrlSerializer(serializers.Serializer):
    url = StrictURLField()


class SourceConnectionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, AccountScopedViewSet
):
    """Credentials are checked against the adapter's declared spec (``/api/v1/source-types/``) and never shown
    again; a connection a gateway uses cannot be deleted (409 ``in_use``)."""
    serializer_class = SourceConnectionSerializer

    def scoped_queryset(self):
        return SourceConnection.objects.order_by("name")

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        source_connection_delete(connection=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def perform_create(self, serializer):
        serializer.instance = source_connection_create(account=self.account, actor=self.actor, **serializer.validated_data)

    def perform_update(self, serializer):
        serializer.instance = source_connection_update(connection=serializer.instance, actor=self.actor, **serializer.validated_data)

    @extend_schema(
        parameters=[OpenApiParameter("platform", str, required=True, enum=connect_platforms(),
                                     description=gettext_lazy("Un tipo de origen que se conecta autorizando en la tienda."))],
        responses={200: ConnectUrlSerializer},
    )
    @action(detail=False, methods=["get"], url_path="connect-url")
    def connect_url(self, request):
        """Where a person connects a store by authorising us at the store (Shopify install, WooCommerce
        keys, Multivende OAuth): open it in a browser signed in to this account. Other query parameters
        (``shop``, ``store_url``, ``name``, ``connection`` to reconnect) are passed on to the flow."""
        platform = request.query_params.get("platform", "")
        try:
            url = reverse(f"connect-{platform}:start")
        except NoReverseMatch:
            raise ApiError("no_connect_flow", _("El tipo %(p)s no tiene un flujo de conexión; use credenciales.") % {"p": platform},
                           fields={"platform": [_("Sin flujo de conexión.")]}) from None
        params = {key: value for key, value in request.query_params.items() if key != "platform"}
        return Response({"url": request.build_absolute_uri(url + ("?" + urlencode(params) if params else ""))})

    @extend_schema(request=None, responses={200: ConnectionReportSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """"Probar conexión": what could be checked at the vendor, item by item, in words."""
        return Response(source_connection_test(connection=self.get_object()).as_dict())


class SourceTypeApi(APIView):
    """The source types this installation can connect, with the credentials and settings each one declares."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: ConnectionTypeSerializer(many=True)})
    def get(self, request):
        return Response([
            {
                "type": name, "label": adapter.display_name() if hasattr(adapter, "display_name") else str(adapter.label),
                "credentials": describe(adapter.credentials_spec), "config": describe(adapter.config_spec),
            }
            for name, adapter in SOURCE_ADAPTERS.items()
        ])
