from cl_sii.rut import Rut
from rest_framework import mixins, serializers

from accounts.fields import mask
from accounts.scoping import AccountScopedViewSet
from accounts.services import connection_create, connection_update

from ..models import BillerConnection


class BillerConnectionSerializer(serializers.ModelSerializer):
    """Credentials are write-only: the API shows only which keys are set, masked."""

    credentials = serializers.DictField(child=serializers.CharField(), write_only=True, required=False)
    credentials_masked = serializers.SerializerMethodField()

    class Meta:
        model = BillerConnection
        fields = [
            "id", "name", "provider", "environment", "emisor_rut", "emisor_razon_social", "emisor_giro",
            "emisor_acteco", "emisor_address", "emisor_comuna", "credentials", "credentials_masked", "config", "created_at",
        ]
        read_only_fields = ["created_at"]

    def get_credentials_masked(self, obj) -> dict:
        return {key: mask(str(value)) for key, value in (obj.credentials or {}).items()}

    def validate_emisor_rut(self, value: str) -> str:
        try:
            return Rut(value, validate_dv=True).canonical
        except (ValueError, TypeError):
            raise serializers.ValidationError(f"'{value}' is not a valid RUT (check digit or format).") from None


class BillerConnectionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, mixins.UpdateModelMixin, AccountScopedViewSet
):
    serializer_class = BillerConnectionSerializer

    def scoped_queryset(self):
        return BillerConnection.objects.order_by("name")

    def perform_create(self, serializer):
        serializer.instance = connection_create(
            model=BillerConnection, account=self.account, actor=self.actor, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = connection_update(
            connection=serializer.instance, actor=self.actor, **serializer.validated_data
        )
