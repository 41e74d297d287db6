from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from ..models import ApiKey, ApiKeyScope
from ..scoping import AccountScopedViewSet
from ..services import api_key_create, api_key_revoke


class ApiKeyOutputSerializer(serializers.ModelSerializer):
    masked_key = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "scope", "masked_key", "created_at", "last_used_at", "revoked_at"]

    def get_masked_key(self, obj) -> str:
        return f"bms_{obj.prefix}_…"


class ApiKeyCreateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    scope = serializers.ChoiceField(choices=ApiKeyScope.choices, default=ApiKeyScope.READ)


class ApiKeyCreatedOutputSerializer(ApiKeyOutputSerializer):
    key = serializers.CharField(help_text="The full key. Shown once; store it now.")

    class Meta(ApiKeyOutputSerializer.Meta):
        fields = ApiKeyOutputSerializer.Meta.fields + ["key"]


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """API keys of the account. Only owners and admins, signed in, manage them."""

    admin_only = True
    serializer_class = ApiKeyOutputSerializer

    def scoped_queryset(self):
        return ApiKey.objects.order_by("-created_at")

    @extend_schema(request=ApiKeyCreateInputSerializer, responses={201: ApiKeyCreatedOutputSerializer})
    def create(self, request):
        data = ApiKeyCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, raw_key = api_key_create(account=self.account, actor=self.actor, **data.validated_data)
        api_key.key = raw_key
        return Response(ApiKeyCreatedOutputSerializer(api_key).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: ApiKeyOutputSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        api_key = api_key_revoke(api_key=self.get_object(), actor=self.actor)
        return Response(ApiKeyOutputSerializer(api_key).data)


