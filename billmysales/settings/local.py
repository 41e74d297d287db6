"""Local development and `make demo`: SQLite and the embedded filesystem broker unless told otherwise."""
from .base import *  # noqa: F403
from .base import CELERY_BROKER_URL, SECRET_KEY, VAR_DIR, env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = SECRET_KEY or "insecure-local-development-key"
FIELD_ENCRYPTION_KEYS = env.list(
    "FIELD_ENCRYPTION_KEYS", default=["bG9jYWwtZGV2LW9ubHkta2V5LW5vdC1mb3ItcHJvZDE="]
)
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")

if CELERY_BROKER_URL == "filesystem://":
    _broker = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker / "queue"),
        "data_folder_out": str(_broker / "queue"),
        "processed_folder": str(_broker / "processed"),
        "store_processed": False,
        "control_folder": str(_broker / "control"),
        "polling_interval": 0.1,
    }
    for _sub in ("queue", "processed", "control"):
        (_broker / _sub).mkdir(parents=True, exist_ok=True)

from .base import DATABASES  # noqa: E402

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server, the worker and beat share one SQLite file in the demo: wait for locks and take
    # the write lock at the start of each transaction instead of failing half-way.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
    VAR_DIR.mkdir(parents=True, exist_ok=True)

# The vendor simulators run on loopback over plain HTTP.
BMS_INSECURE_HOSTS = env.list("BMS_INSECURE_HOSTS", default=["127.0.0.1", "localhost"])

# Static files straight from the apps and packages (no collectstatic outside production).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
