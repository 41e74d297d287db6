"""Multivende's connect flow, served under ``/connect/multivende/`` (namespace ``connect-multivende``).
The callback's full address (``{BMS_PUBLIC_URL}/connect/multivende/callback/``) is the redirect URI
registered with our Multivende application."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.ConnectStartView.as_view(), name="start"),
    path("callback/", views.ConnectCallbackView.as_view(), name="callback"),
]
