"""The test suite: real PostgreSQL and Redis given by `make test` (DATABASE_URL / REDIS_URL)."""
from .base import *  # noqa: F403
from .base import env

SECRET_KEY = "test-secret-key"
DEBUG = False
FIELD_ENCRYPTION_KEYS = [
    "dGVzdC1rZXktb25lLW5vdC1mb3ItcHJvZHVjdGlvbjE=",
]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["*"]
CELERY_BROKER_URL = env("REDIS_URL", default="memory://")
# Tests change a store's secret and deliver at once; the cache has its own test.
BMS_WEBHOOK_GATEWAY_CACHE_SECONDS = 0

# The vendor simulators run on loopback over plain HTTP.
BMS_INSECURE_HOSTS = ["127.0.0.1", "localhost"]

# Static files straight from the apps and packages (no collectstatic outside production).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True

# allauth's per-IP sign-in limits live in the shared cache (Redis) and every test comes from 127.0.0.1:
# off here, so one test's sign-ins never throttle another's; axes' lockout stays on and is tested.
ACCOUNT_RATE_LIMITS = False
