from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from accounts.fields import mask
from accounts.scoping import AccountScopedViewSet
from billmysales.integrations.serializers import ConnectionReportSerializer

from ..models import SourceConnection
from ..registry import platform_choices
from ..services import source_connection_create, source_connection_test, source_connection_update


class SourceConnectionSerializer(serializers.ModelSerializer):
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


class SourceConnectionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, AccountScopedViewSet
):
    serializer_class = SourceConnectionSerializer

    def scoped_queryset(self):
        return SourceConnection.objects.order_by("name")

    def perform_create(self, serializer):
        try:
            serializer.instance = source_connection_create(account=self.account, actor=self.actor, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from exc

    def perform_update(self, serializer):
        try:
            serializer.instance = source_connection_update(connection=serializer.instance, actor=self.actor, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from exc

    @extend_schema(request=None, responses={200: ConnectionReportSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """"Probar conexión": what could be checked at the vendor, item by item, in words."""
        return Response(source_connection_test(connection=self.get_object()).as_dict())
