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
# One JSON object per log line for the log collector (LOG_FORMAT=text for a person reading a terminal);
# gunicorn's lines follow it too (billmysales.access_log).
LOG_FORMAT = env("LOG_FORMAT", default="json")
LOGGING["handlers"]["console"]["formatter"] = LOG_FORMAT
# The demo seed creates well-known logins: never in production.
BMS_DEMO_SEED_ALLOWED = False
BMS_INSECURE_HOSTS = []
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# HSTS: browsers use https only, for a year (the site redirects to https and its cookies are secure, so
# there is nothing served over http to protect). Not for subdomains, and not preloaded, by default: this
# product usually runs on one host of a merchant-facing domain whose other hosts it does not control, and
# a preload entry takes months to undo. Whoever owns the whole domain may opt in (preload needs both).
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if SECURE_HSTS_PRELOAD and not (SECURE_HSTS_INCLUDE_SUBDOMAINS and SECURE_HSTS_SECONDS >= 31536000):
    raise ImproperlyConfigured("SECURE_HSTS_PRELOAD needs SECURE_HSTS_INCLUDE_SUBDOMAINS and SECURE_HSTS_SECONDS >= 31536000.")
# `check --deploy` flags both defaults; they are the choice above, not an oversight.
SILENCED_SYSTEM_CHECKS = ["security.W005", "security.W021"]
# The TLS proxy in front (the one SECURE_PROXY_SSL_HEADER trusts) adds one X-Forwarded-For entry: sign-in
# limits and lockouts count that client. 0 if gunicorn faces the clients itself (then the header is theirs).
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("ALLAUTH_TRUSTED_PROXY_COUNT", default=1)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
