from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        # Every process (web, worker, beat, manage.py) stops at start when the keys are unusable,
        # naming the setting, rather than at the first secret it reads or writes.
        from django.conf import settings

        from .crypto import check_encryption_keys

        check_encryption_keys(settings.FIELD_ENCRYPTION_KEYS)
        # Registers the Bearer API-key scheme with drf-spectacular.
        import billmysales.api.schema  # noqa: F401
