from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.fields import encrypted_fields


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the newest key in FIELD_ENCRYPTION_KEYS. "
        "Put the new key first, keep the old ones after it, run this, then drop the old keys."
    )

    def handle(self, *args, **options):
        total = 0
        for model in apps.get_models():
            names = [f.attname for f in encrypted_fields(model)]
            if not names:
                continue
            count = 0
            # Reading decrypts with whichever key matches; writing encrypts with the first (newest) key.
            for pk, *values in model._base_manager.values_list("pk", *names).iterator(chunk_size=500):
                with transaction.atomic():
                    model._base_manager.filter(pk=pk).update(**dict(zip(names, values, strict=True)))
                count += 1
            total += count
            self.stdout.write(f"{model._meta.label}: {count} row(s) re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"Done: {total} row(s) re-encrypted with the newest key."))
