"""Dashboard routes of the accounts app: signing in, switching accounts, support mode."""
from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/<int:account_id>/switch/", views.account_switch, name="account-switch"),
    path("support/", views.support_search, name="support-search"),
    path("support/<int:account_id>/open/", views.support_open, name="support-open"),
]
