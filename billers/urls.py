"""Dashboard routes of the billers app ("Facturación > Facturadores")."""
from django.urls import path

from . import views

urlpatterns = [
    path("billers/", views.BillerListView.as_view(), name="biller-list"),
    path("billers/new/", views.BillerCreateView.as_view(), name="biller-create"),
    path("billers/<int:pk>/", views.BillerEditView.as_view(), name="biller-edit"),
    path("billers/<int:pk>/test/", views.BillerTestView.as_view(), name="biller-test"),
    path("billers/<int:pk>/delete/", views.BillerDeleteView.as_view(), name="biller-delete"),
]
