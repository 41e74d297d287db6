# The oldest paid order not issued yet (/metrics): a partial index holding only received, ready and issuing orders.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('gateways', '0008_order_search_indexes'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='order',
            index=models.Index(condition=models.Q(('status__in', ['received', 'ready', 'issuing'])), fields=['received_at'], name='order_unissued_age'),
        ),
    ]
