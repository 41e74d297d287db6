from django.contrib import admin

from .models import SourceConnection


@admin.register(SourceConnection)
class SourceConnectionAdmin(admin.ModelAdmin):
    list_display = ["name", "account", "platform", "status", "created_at"]
    list_filter = ["platform", "status"]
    exclude = ["credentials"]
