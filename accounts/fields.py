"""Model fields whose values are encrypted in the database (see ``accounts.crypto``)."""
import json

from django.db import models

from . import crypto


class Secret(str):
    """A decrypted secret: behaves as a str but never prints itself in full."""

    def __repr__(self) -> str:
        return f"Secret({mask(self)!r})"


def mask(value: str) -> str:
    if not value:
        return ""
    return "•" * 8 + (value[-4:] if len(value) >= 12 else "")


class EncryptedTextField(models.TextField):
    """Stores a Fernet token; Python code sees the plaintext as a ``Secret``."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return Secret(crypto.decrypt(value))

    def to_python(self, value):
        if value is None or isinstance(value, Secret):
            return value
        return Secret(value)

    def get_prep_value(self, value):
        if value is None or value == "":
            return value
        return crypto.encrypt(str(value))


class EncryptedJSONField(models.TextField):
    """A dict of credentials stored as one Fernet token of its JSON."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return {}
        return json.loads(crypto.decrypt(value))

    def to_python(self, value):
        if isinstance(value, dict):
            return value
        if not value:
            return {}
        return json.loads(value)

    def get_prep_value(self, value):
        return crypto.encrypt(json.dumps(value or {}, sort_keys=True))


def encrypted_fields(model) -> list[models.Field]:
    return [f for f in model._meta.concrete_fields if isinstance(f, (EncryptedTextField, EncryptedJSONField))]
