"""Encryption of secrets at rest: Fernet tokens under a MultiFernet built from settings.

``FIELD_ENCRYPTION_KEYS`` lists the keys newest first; the first encrypts, all of them decrypt, so a
new key can be put in front and ``rotate_secrets`` re-encrypts every stored secret with it.
"""
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

__all__ = ["InvalidToken", "check_encryption_keys", "decrypt", "encrypt", "fernet", "reset_fernet_cache"]


def check_encryption_keys(keys) -> None:
    """Raises ``ImproperlyConfigured`` naming ``FIELD_ENCRYPTION_KEYS`` when a key is not a Fernet key."""
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS: key {position} of {len(keys)} is not a valid Fernet key "
                "(32 bytes, url-safe base64; generate one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`)."
            ) from None


@lru_cache(maxsize=1)
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: secrets cannot be encrypted.")
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


def reset_fernet_cache() -> None:
    _fernet_for.cache_clear()


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(token: str) -> str:
    return fernet().decrypt(token.encode("ascii")).decode("utf-8")

