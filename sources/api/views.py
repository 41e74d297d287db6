from rest_framework import mixins, serializers

from accounts.fields import mask
from accounts.scoping import AccountScopedViewSet
from accounts.services import connection_create, connection_update

from ..models import SourceConnection


class SourceConnectionSerializer(serializers.ModelSerializer):
    """Credentials are write-only: the API shows only which keys are set, masked."""

    credentials = serializers.DictField(child=serializers.CharField(), write_only=True, required=False)
    credentials_masked = serializers.SerializerMethodField()

    class Meta:
        model = SourceConnection
        fields = ["id", "name", "platform", "store_url", "credentials", "credentials_masked", "config", "status", "status_message", "created_at"]
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
        serializer.instance = connection_create(
            model=SourceConnection, account=self.account, actor=self.actor, **serializer.validated_data
        )

    def perform_update(self, serializer):
        serializer.instance = connection_update(
            connection=serializer.instance, actor=self.actor, **serializer.validated_data
        )
