# Bulk actions with progress (BulkJob), and the dashboard's two range indexes: orders by account and
# received_at (the orders page's date filter reads a range of it instead of walking every newer id) and
# documents by account and fecha, covering the columns the home page's per-day charts read.
# Plain CREATE INDEX (not CONCURRENTLY): the demo runs on SQLite; on a large production table run the
# two statements CONCURRENTLY by hand first and fake this migration's AddIndex operations.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0003_invitations_and_role_labels"),
        ("gateways", "0009_order_unissued_age"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="BulkJob",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("kind", models.CharField(choices=[("emit", "Emitir ahora"), ("retry", "Reintentar"), ("reprocess", "Volver a leer")],
                                          max_length=12)),
                ("status", models.CharField(choices=[("pending", "En cola"), ("running", "En curso"), ("done", "Terminado"),
                                                     ("failed", "Falló")], default="pending", max_length=8)),
                ("description", models.CharField(blank=True, max_length=300)),
                ("item_ids", models.JSONField(default=list)),
                ("total", models.PositiveIntegerField(default=0)),
                ("processed", models.PositiveIntegerField(default=0)),
                ("succeeded", models.PositiveIntegerField(default=0)),
                ("failed", models.PositiveIntegerField(default=0)),
                ("failures", models.JSONField(blank=True, default=list)),
                ("error", models.TextField(blank=True)),
                ("lease_until", models.DateTimeField(blank=True, null=True)),
                ("actor_role", models.CharField(blank=True, max_length=16)),
                ("support_mode", models.BooleanField(default=False)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("account", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+", to="accounts.account")),
                ("created_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name="+",
                                                 to=settings.AUTH_USER_MODEL)),
            ],
            options={"indexes": [models.Index(fields=["account", "-id"], name="bulk_job_account_keyset")]},
        ),
        migrations.AddIndex(
            model_name="document",
            index=models.Index(fields=["account", "fecha"], include=("tipo_dte", "kind", "mnt_total"), name="document_account_fecha"),
        ),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["account", "received_at"], name="order_account_received"),
        ),
    ]
