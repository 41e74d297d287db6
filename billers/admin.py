from django.contrib import admin

from .models import BillerConnection, FolioCounter, SandboxDocument


@admin.register(BillerConnection)
class BillerConnectionAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "provider", "environment", "emisor_rut"]
    list_filter = ["provider", "environment"]
    exclude = ["credentials"]


@admin.register(FolioCounter)
class FolioCounterAdmin(admin.ModelAdmin):
    list_display = ["connection", "tipo_dte", "next_folio"]


@admin.register(SandboxDocument)
class SandboxDocumentAdmin(admin.ModelAdmin):
    list_display = ["connection", "reference", "tipo_dte", "folio", "fecha"]
    exclude = ["xml"]
