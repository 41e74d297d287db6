"""The stores' connect flows, each under ``/connect/<platform>/`` in the URL namespace
``connect-<platform>``: a store package that has a connect flow (an OAuth install, WooCommerce's key
handshake) puts its views in ``views.py`` and its routes in ``urls.py``; registering the adapter is
enough for them to be served. By convention the flow starts at the route named ``start``."""
import importlib.util

from django.urls import include, path

from . import views
from .registry import SOURCE_ADAPTERS

urlpatterns = [
    path(f"connect/{platform}/", include((f"sources.{platform}.urls", f"connect-{platform}")))
    for platform in SOURCE_ADAPTERS
    if importlib.util.find_spec(f"sources.{platform}.urls") is not None
] + [
    # The dashboard's pages of store connections ("Facturación > Orígenes de datos").
    path("sources/", views.SourceListView.as_view(), name="source-list"),
    path("sources/new/", views.SourceCreateView.as_view(), name="source-create"),
    path("sources/<int:pk>/", views.SourceEditView.as_view(), name="source-edit"),
    path("sources/<int:pk>/test/", views.SourceTestView.as_view(), name="source-test"),
    path("sources/<int:pk>/delete/", views.SourceDeleteView.as_view(), name="source-delete"),
]
