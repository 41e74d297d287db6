from django.db import migrations, models


class Migration(migrations.Migration):
    """Voiding at the biller the documents no credit note can correct (boletas de honorarios)."""

    dependencies = [
        ("gateways", "0011_document_account_type_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="document",
            name="void_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="document",
            name="void_attempts",
            field=models.PositiveSmallIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name="document",
            name="void_message",
            field=models.TextField(blank=True, db_default="", default=""),
        ),
        migrations.AddField(
            model_name="document",
            name="void_status",
            field=models.CharField(
                blank=True,
                choices=[("", "Vigente"), ("pending", "Anulación en curso"), ("done", "Anulado"), ("failed", "Anulación fallida")],
                db_default="",
                default="",
                max_length=8,
            ),
        ),
        migrations.AddIndex(
            model_name="document",
            index=models.Index(condition=models.Q(("void_status", "pending")), fields=["void_at"], name="document_void_due"),
        ),
    ]
