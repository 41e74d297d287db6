# Documents by account and type, newest first, carrying order_id: the documents page's type filter reads it
# in order, and the orders page's "document type" filter finds a rare type's orders from the index alone.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("gateways", "0010_bulk_jobs_and_dashboard_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="document",
            index=models.Index(fields=["account", "tipo_dte", "-id"], include=("order_id",), name="document_account_type"),
        ),
    ]
