from django.db import migrations, models


class Migration(migrations.Migration):
    """Deliveries stored but not queued yet: what each ingest dispatch round claims (a small partial index)."""

    dependencies = [
        ("gateways", "0012_document_void"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="inboundevent",
            index=models.Index(
                condition=models.Q(("requeued_at__isnull", True), ("status", "pending")),
                fields=["id"],
                name="inbound_undispatched",
            ),
        ),
    ]
