"""Production: refuses to start without its secrets, its database and its broker, or with DEBUG on."""
from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import LOGGING, env

_missing = [
    name
    for name in ("SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL")
    if not env(name, default="")
]
if _missing:
    raise ImproperlyConfigured(
        "Production settings need these environment variables: " + ", ".join(_missing)
    )
if env.bool("DEBUG", default=False):
    raise ImproperlyConfigured("DEBUG must be off in production.")

DEBUG = False
# One JSON object per log line for the log collector (LOG_FORMAT=text for a person reading a terminal).
LOGGING["handlers"]["console"]["formatter"] = env("LOG_FORMAT", default="json")
# The demo seed creates well-known logins: never in production.
BMS_DEMO_SEED_ALLOWED = False
BMS_INSECURE_HOSTS = []
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=3600)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
