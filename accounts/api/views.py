from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import NotAuthenticated, PermissionDenied
from rest_framework.response import Response
from rest_framework.views import APIView

from billmysales.api.fields import StrictCharField, StrictEmailField, StrictModelSerializer

from ..models import ADMIN_ROLES, Account, ApiKey, ApiKeyScope, Invitation, Membership, Role
from ..scoping import AccountPermission, AccountScopedViewSet, request_account
from ..services import (
    Actor,
    account_update,
    api_key_create,
    api_key_revoke,
    invitation_create,
    invitation_revoke,
    membership_remove,
    membership_role_change,
)


class ApiKeyOutputSerializer(StrictModelSerializer):
    masked_key = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = ["id", "name", "scope", "masked_key", "created_at", "last_used_at", "revoked_at"]

    def get_masked_key(self, obj) -> str:
        return f"bms_{obj.prefix}_…"


class ApiKeyCreateInputSerializer(serializers.Serializer):
    name = StrictCharField(max_length=100)
    scope = serializers.ChoiceField(choices=ApiKeyScope.choices, default=ApiKeyScope.READ)


class ApiKeyCreatedOutputSerializer(ApiKeyOutputSerializer):
    key = StrictCharField(help_text="The full key. Shown once; store it now.")

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




class AccountSerializer(StrictModelSerializer):
    role = serializers.SerializerMethodField()

    class Meta:
        model = Account
        fields = ["id", "name", "rut", "created_at", "role"]
        read_only_fields = ["id", "created_at", "role"]

    def get_role(self, obj) -> str:
        return self.context.get("role", "")


class AccountApi(APIView):
    """The account the API key or the signed-in session works in."""

    permission_classes = [permissions.IsAuthenticated, AccountPermission]

    def _account(self, request):
        account, role, _support = request_account(request)
        if account is None:
            raise NotAuthenticated(_("No hay una cuenta seleccionada."))
        return account, role

    @extend_schema(responses={200: AccountSerializer})
    def get(self, request):
        account, role = self._account(request)
        return Response(AccountSerializer(account, context={"role": role}).data)

    @extend_schema(request=AccountSerializer, responses={200: AccountSerializer})
    def patch(self, request):
        account, role = self._account(request)
        if role not in ADMIN_ROLES:
            raise PermissionDenied(_("Solo dueños y administradores cambian los datos de la cuenta."))
        data = AccountSerializer(account, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        account = account_update(account=account, actor=Actor(user=request.user, role=role), **data.validated_data)
        return Response(AccountSerializer(account, context={"role": role}).data)


class MemberSerializer(StrictModelSerializer):
    email = StrictEmailField(source="user.email", read_only=True)
    full_name = StrictCharField(source="user.full_name", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "full_name", "role", "created_at"]
        read_only_fields = ["id", "email", "full_name", "created_at"]


class InviteInputSerializer(serializers.Serializer):
    email = StrictEmailField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.VIEWER)


class InvitationSerializer(StrictModelSerializer):
    pending = serializers.BooleanField(read_only=True)

    class Meta:
        model = Invitation
        fields = ["id", "email", "role", "created_at", "expires_at", "accepted_at", "revoked_at", "pending"]


class RoleInputSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class MemberViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    """The account's members. Owners and admins invite (by email, with a role), change roles and remove."""

    serializer_class = MemberSerializer

    def scoped_queryset(self):
        return Membership.objects.select_related("user")

    @extend_schema(request=InviteInputSerializer, responses={201: InvitationSerializer})
    def create(self, request):
        self.require_admin()
        data = InviteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        invitation = invitation_create(
            account=self.account, actor=self.actor, accept_url=request.build_absolute_uri("/invitaciones/{token}/"),
            **data.validated_data,
        )
        return Response(InvitationSerializer(invitation).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=RoleInputSerializer, responses={200: MemberSerializer})
    def partial_update(self, request, pk=None):
        self.require_admin()
        membership = self.get_object()
        data = RoleInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        membership = membership_role_change(membership=membership, role=data.validated_data["role"], actor=self.actor)
        return Response(MemberSerializer(membership).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        self.require_admin()
        membership_remove(membership=self.get_object(), actor=self.actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, AccountScopedViewSet):
    serializer_class = InvitationSerializer
    admin_only = True

    def scoped_queryset(self):
        return Invitation.objects.all()

    @extend_schema(request=None, responses={200: InvitationSerializer})
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        return Response(InvitationSerializer(invitation_revoke(invitation=self.get_object(), actor=self.actor)).data)
