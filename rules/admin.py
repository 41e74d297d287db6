from django.contrib import admin

from .models import RuleSet


@admin.register(RuleSet)
class RuleSetAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "default_document_type", "price_basis", "mode", "start_at"]
