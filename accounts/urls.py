"""Dashboard routes of the accounts app: signing in (allauth's views under the names ``login`` and
``logout``; sign-up, confirmation and password reset are allauth's own routes under ``/auth/``),
accounts, the Configuración area, invitations, support mode."""
from allauth.account import views as allauth_views
from django.urls import path
from django.views.generic import RedirectView

from . import views

urlpatterns = [
    path("login/", allauth_views.login, name="login"),
    path("logout/", allauth_views.logout, name="logout"),
    path("accounts/<int:account_id>/switch/", views.account_switch, name="account-switch"),
    path("cuentas/nueva/", views.AccountCreateView.as_view(), name="account-create"),
    path("invitaciones/<str:token>/", views.InvitationAcceptView.as_view(), name="invitation-accept"),
    path("configuracion/", RedirectView.as_view(pattern_name="settings-account"), name="settings"),
    path("configuracion/cuenta/", views.AccountSettingsView.as_view(), name="settings-account"),
    path("configuracion/miembros/", views.MembersView.as_view(), name="settings-members"),
    path("configuracion/miembros/<int:pk>/rol/", views.MemberRoleView.as_view(), name="settings-member-role"),
    path("configuracion/miembros/<int:pk>/quitar/", views.MemberRemoveView.as_view(), name="settings-member-remove"),
    path("configuracion/invitaciones/<int:pk>/revocar/", views.InvitationRevokeView.as_view(), name="settings-invitation-revoke"),
    path("configuracion/claves-api/", views.ApiKeysView.as_view(), name="settings-api-keys"),
    path("configuracion/claves-api/<int:pk>/revocar/", views.ApiKeyRevokeView.as_view(), name="settings-api-key-revoke"),
    path("configuracion/auditoria/", views.AuditLogView.as_view(), name="settings-audit"),
    path("support/", views.support_search, name="support-search"),
    path("support/<int:account_id>/open/", views.support_open, name="support-open"),
]
