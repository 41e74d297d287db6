from django.contrib import admin

from .models import Document, Emission, EmissionAttempt, Gateway, InboundEvent, Order, SideEffect


@admin.register(Gateway)
class GatewayAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "source", "biller", "environment", "active"]
    list_filter = ["environment", "active"]


class EmissionInline(admin.TabularInline):
    model = Emission
    extra = 0
    fields = ["kind", "sequence", "reference", "status", "status_reason", "attempt_count"]
    readonly_fields = fields


class DocumentInline(admin.TabularInline):
    model = Document
    extra = 0
    fields = ["kind", "sequence", "tipo_dte", "folio", "fecha", "mnt_total", "certification"]
    readonly_fields = fields


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ["number", "account", "gateway", "status", "paid_total", "currency", "received_at"]
    list_filter = ["status", "is_test"]
    search_fields = ["number", "external_id", "buyer_email"]
    readonly_fields = ["decision", "raw"]
    inlines = [EmissionInline, DocumentInline]


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["tipo_dte", "folio", "account", "order", "kind", "mnt_total", "certification", "issued_at"]
    list_filter = ["tipo_dte", "kind", "certification"]
    exclude = ["xml"]


@admin.register(EmissionAttempt)
class EmissionAttemptAdmin(admin.ModelAdmin):
    list_display = ["emission", "number", "outcome", "error_class", "duration_ms", "started_at"]
    list_filter = ["outcome"]


admin.site.register(InboundEvent)
admin.site.register(SideEffect)
