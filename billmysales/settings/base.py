"""Settings shared by every environment. Every value comes from the environment (django-environ)."""
from datetime import timedelta
from pathlib import Path

import environ
import xstatic.pkg.bootstrap
from csp.constants import NONE, SELF
from django.utils.translation import gettext_lazy
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# The public reference data (SII schemas, LibreDTE cases, samples) lives beside the project.
BMS_SHARED_DIR = Path(env("BMS_SHARED_DIR", default=str(BASE_DIR.parent / "shared"))).resolve()
VAR_DIR = Path(env("BMS_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "allauth",
    "allauth.account",
    "axes",
    "accounts",
    "sources",
    "billers",
    "rules",
    "gateways",
]

MIDDLEWARE = [
    # /healthz, /readyz and /metrics hold no account's data: answered before sessions, CSRF, hosts, redirects.
    "billmysales.health.OpsEndpointsMiddleware",
    # Every log line of a request carries its request id and account (billmysales.logging).
    "billmysales.logging.LogContextMiddleware",
    "billmysales.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.middleware.CurrentAccountMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Last: turns a login refused for too many failures into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "billmysales.urls"
WSGI_APPLICATION = "billmysales.wsgi.application"
ASGI_APPLICATION = "billmysales.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.current_account",
            ],
            # One way to write money, RUTs and dates in every template.
            "builtins": ["billmysales.templatetags.display"],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Persistent connections (a new PostgreSQL connection costs more than a webhook's whole work), checked
# before each request's or task's first query so one that PostgreSQL dropped (a restart, a failover) is
# replaced instead of failing the request. One connection per gunicorn worker, per worker thread.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=600)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # No JIT: it compiles for ~30 ms plans that run in 1 ms (the usual OLTP setting), per connection.
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = env("PG_OPTIONS", default="-c jit=off")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# Axes first: it refuses a locked-out login before any backend checks the password.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

# Sign-up, sign-in and password reset (django-allauth): by email, each new address confirmed by a link
# before the first sign-in. Templates in templates/account/; policy hooks in accounts.adapter.
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_FORMS = {
    "login": "accounts.forms.LoginForm",
    "signup": "accounts.forms.SignupForm",
    "reset_password": "accounts.forms.ResetPasswordForm",
    "reset_password_from_key": "accounts.forms.ResetPasswordKeyForm",
    "change_password": "accounts.forms.ChangePasswordForm",
    "set_password": "accounts.forms.SetPasswordForm",
}
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[BillMySales] "
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_LOGOUT_REDIRECT_URL = "login"
# Repeated failed sign-ins are axes' job (below, with its Spanish lockout page); allauth keeps its
# per-IP limits as a second line against one address trying many emails.
ACCOUNT_RATE_LIMITS = {"login_failed": "10/m/ip"}

# django-axes: AXES_FAILURE_LIMIT failed sign-ins for one email from one IP lock that pair out for
# AXES_COOLOFF_MINUTES (a stranger cannot lock a merchant out from everywhere); a success resets the count.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.adapter.lockout_response"
# The client's address as allauth reads it, so both count the same client: REMOTE_ADDR, or behind
# ALLAUTH_TRUSTED_PROXY_COUNT proxies (production.py) the matching X-Forwarded-For entry.
AXES_CLIENT_IP_CALLABLE = "accounts.adapter.client_ip"
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("ALLAUTH_TRUSTED_PROXY_COUNT", default=0)

# Content-Security-Policy (django-csp): nothing inline, nothing from another origin. Pages keep their CSS
# in static/css/ and their JS in static/js/; htmx's own indicator style is off (base.html). Bootstrap's
# CSS draws a few icons as data: images. No form-action: the connect buttons POST and are redirected to
# the store's or Multivende's consent page, which form-action would block. The API's Redoc page relaxes
# styles for itself only (billmysales/urls.py).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
    },
}

LANGUAGE_CODE = "es"
LANGUAGES = [("es", "Español"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# The language chosen in the dashboard's switcher is kept for a year, not only for the browser session.
LANGUAGE_COOKIE_AGE = 365 * 24 * 60 * 60
TIME_ZONE = "America/Santiago"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Bootstrap comes from its PyPI package (XStatic-Bootstrap) at install time; whitenoise serves it.
STATICFILES_DIRS = [BASE_DIR / "static", ("vendor/bootstrap", xstatic.pkg.bootstrap.BASE_DIR)]

# Secrets at rest: a comma-separated list of Fernet keys, newest first (MultiFernet rotation).
# Checked when the process starts (accounts.apps): a malformed key stops it, naming this setting.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[])

# Where this product is reached from outside: public links (the PDF a store shows its buyer) and the
# connect flows' return addresses are built on it.
BMS_PUBLIC_URL = env("BMS_PUBLIC_URL", default="http://127.0.0.1:8000")

# Our public Shopify app (the install flow; merchants can no longer create custom apps since 2026-01-01)
# and the Admin API version every Shopify call uses.
BMS_SHOPIFY_CLIENT_ID = env("BMS_SHOPIFY_CLIENT_ID", default="")
BMS_SHOPIFY_CLIENT_SECRET = env("BMS_SHOPIFY_CLIENT_SECRET", default="")
# After rotating the app's secret Shopify signs with the old one for up to an hour: keep it here meanwhile.
BMS_SHOPIFY_PREVIOUS_CLIENT_SECRET = env("BMS_SHOPIFY_PREVIOUS_CLIENT_SECRET", default="")
BMS_SHOPIFY_API_VERSION = env("BMS_SHOPIFY_API_VERSION", default="2026-10")
BMS_SHOPIFY_SCOPES = env.list("BMS_SHOPIFY_SCOPES", default=["read_orders", "write_orders"])
# Where a shop's Admin API is reached: "https://{shop}" in production; the demo and the tests point it at
# the Shopify simulator ("http://127.0.0.1:8301/shops/{shop}").
BMS_SHOPIFY_SHOP_URL_TEMPLATE = env("BMS_SHOPIFY_SHOP_URL_TEMPLATE", default="https://{shop}")
# Our Multivende application (OAuth connect) and its API's base URL.
BMS_MULTIVENDE_CLIENT_ID = env("BMS_MULTIVENDE_CLIENT_ID", default="")
BMS_MULTIVENDE_CLIENT_SECRET = env("BMS_MULTIVENDE_CLIENT_SECRET", default="")
BMS_MULTIVENDE_BASE_URL = env("BMS_MULTIVENDE_BASE_URL", default="https://app.multivende.com")
BMS_MULTIVENDE_SCOPES = env.list("BMS_MULTIVENDE_SCOPES", default=["read:checkouts", "write:checkouts"])

# Vendor URLs must be https://, except these hosts (comma-separated): loopback for the simulators in the
# demo and the tests; empty in production.
BMS_INSECURE_HOSTS = env.list("BMS_INSECURE_HOSTS", default=[])
# The largest request body accepted (webhooks and API): above it, 413. The largest real store orders
# (hundreds of lines with metadata) stay well under 5 MB.
BMS_MAX_BODY_BYTES = env.int("BMS_MAX_BODY_BYTES", default=10 * 1024 * 1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = BMS_MAX_BODY_BYTES
# `manage.py seed_demo` (a demo login and a staff support login) runs only where this is true.
BMS_DEMO_SEED_ALLOWED = env.bool("BMS_DEMO_SEED_ALLOWED", default=True)
# An inbound event whose processing crashes this many times is parked with its last error.
BMS_INGEST_MAX_ATTEMPTS = env.int("BMS_INGEST_MAX_ATTEMPTS", default=3)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["billmysales.api.parsers.JSONBodyParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "billmysales.api.pagination.KeysetPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "billmysales.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["billmysales.api.throttling.ClientRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        # Per API key or signed-in user: a backfill of thousands of orders fits easily.
        "client": env("BMS_API_RATE_CLIENT", default="1200/min"),
        # Per IP for calls that carry no credentials.
        "anon": env("BMS_API_RATE_ANON", default="60/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "BillMySales API",
    "DESCRIPTION": gettext_lazy(
        "Pasarela de facturación: orígenes de datos, facturadores, pasarelas, órdenes y documentos tributarios. "
        "Autenticación: `Authorization: Bearer <clave de API>`. Errores: `{\"error\": {\"code\", \"message\", \"fields\"}}`. "
        "Los POST aceptan `Idempotency-Key`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and its docs are public (they describe the API, no account's data).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "OrderStatusEnum": "gateways.models.OrderStatus",
        "EmissionStatusEnum": "gateways.models.EmissionStatus",
        "DeliveryStatusEnum": "gateways.models.InboundEvent.Status",
        "BackfillStatusEnum": "gateways.models.BackfillJob.Status",
        "WebhookDeliveryStatusEnum": "gateways.models.WebhookDelivery.Status",
        "ConnectionStatusEnum": "sources.models.SourceConnection.Status",
        "DocumentKindEnum": "gateways.models.DocumentKind",
        "SideEffectKindEnum": "gateways.models.SideEffect.Kind",
        "SideEffectOutcomeEnum": "gateways.models.SideEffect.Outcome",
        "AttemptOutcomeEnum": "gateways.models.EmissionAttempt.Outcome",
        "SiiStatusEnum": "gateways.models.SiiStatus",
    },
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "billmysales.api.schema.add_error_responses"],
}
# Outgoing webhooks: seconds between tries of one delivery (about two days in all), and how long an endpoint
# may fail every try before it is disabled and its owners emailed.
BMS_WEBHOOK_RETRY_DELAYS = [
    int(x) for x in env.list("BMS_WEBHOOK_RETRY_DELAYS", default=["30", "60", "300", "600", "1800", "3600", "7200", "14400",
                                                                   "28800", "43200", "86400"])
]
BMS_WEBHOOK_DISABLE_AFTER_HOURS = env.int("BMS_WEBHOOK_DISABLE_AFTER_HOURS", default=72)

# Idempotency keys are remembered this many days.
BMS_IDEMPOTENCY_DAYS = env.int("BMS_IDEMPOTENCY_DAYS", default=7)

# Seconds a web process keeps a webhook address's gateway (with its store's decrypted secrets) instead of
# reading it again: a changed secret or a deactivated gateway applies after at most this long.
BMS_WEBHOOK_GATEWAY_CACHE_SECONDS = env.float("BMS_WEBHOOK_GATEWAY_CACHE_SECONDS", default=5.0)

# Throttle counters and short-lived caches: Redis when there is one (shared by every process), memory otherwise.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": env("REDIS_URL")}
    if env("REDIS_URL", default="")
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}

# Celery: JSON only, late acks, bounded tasks, one queue per kind of work.
REDIS_URL = env("REDIS_URL", default="")
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=120)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=90)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_DEFAULT_QUEUE = "emit"
CELERY_TASK_QUEUES = [Queue(name) for name in ("ingest", "emit", "poll", "notify")]
CELERY_TASK_ROUTES = {
    "gateways.tasks.order_ingest_task": {"queue": "ingest"},
    "gateways.tasks.orders_ingest_task": {"queue": "ingest"},
    "gateways.tasks.inbound_events_dispatch_task": {"queue": "ingest"},
    "gateways.tasks.order_emit_task": {"queue": "emit"},
    "gateways.tasks.sweep_stuck_orders_task": {"queue": "poll"},
    "gateways.tasks.document_side_effects_task": {"queue": "notify"},
    "gateways.tasks.order_refunds_task": {"queue": "emit"},
    "gateways.tasks.document_void_task": {"queue": "emit"},
    "gateways.tasks.sources_poll_due_task": {"queue": "poll"},
    "gateways.tasks.source_poll_task": {"queue": "poll"},
    "gateways.tasks.backfill_job_task": {"queue": "poll"},
    "gateways.tasks.documents_sii_status_due_task": {"queue": "poll"},
    "gateways.tasks.document_sii_status_task": {"queue": "poll"},
    "gateways.tasks.gateway_webhooks_task": {"queue": "poll"},
    "gateways.tasks.webhook_delivery_task": {"queue": "notify"},
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing gives up quickly when the broker is down: the row is committed and the sweeper re-queues.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 10}
# Workers run a threads pool (docker-compose.yml: BMS_WORKER_THREADS per process, one process per core): each
# thread publishes (side effects, retries), so the broker connection pool is as large as the pool; each
# thread also keeps one PostgreSQL connection (CONN_MAX_AGE), so PostgreSQL's max_connections must cover
# processes × threads + web workers + beat.
CELERY_BROKER_POOL_LIMIT = env.int("CELERY_BROKER_POOL_LIMIT", default=env.int("BMS_WORKER_THREADS", default=64))
# A dispatch round with a backlog larger than the ingest threads of all workers (processes × threads)
# queues several deliveries per message, at most BMS_INGEST_BATCH_MAX (gateways.dispatch).
BMS_INGEST_CONCURRENCY = env.int(
    "BMS_INGEST_CONCURRENCY", default=env.int("BMS_WORKER_THREADS", default=64) * env.int("BMS_WORKER_PROCESSES", default=2)
)
BMS_INGEST_BATCH_MAX = env.int("BMS_INGEST_BATCH_MAX", default=8)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "sweep-stuck-orders": {
        "task": "gateways.tasks.sweep_stuck_orders_task",
        "schedule": env.float("BMS_SWEEP_INTERVAL", default=60.0),
    },
    "poll-due-sources": {
        "task": "gateways.tasks.sources_poll_due_task",
        "schedule": env.float("BMS_POLL_TICK_SECONDS", default=30.0),
    },
    "sii-status-of-documents": {
        "task": "gateways.tasks.documents_sii_status_due_task",
        "schedule": env.float("BMS_SII_STATUS_TICK_SECONDS", default=120.0),
    },
}
# Seconds between polls of one store connection, per platform ("shopify=300,woocommerce=600"); the
# adapter's own default otherwise.
BMS_POLL_INTERVALS = {k: int(v) for k, v in env.dict("BMS_POLL_INTERVALS", default={}).items()}
# Orders untouched for this long in received / ready / issuing are re-queued by the sweeper.
BMS_STUCK_AFTER_SECONDS = env.int("BMS_STUCK_AFTER_SECONDS", default=300)

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="facturacion@billmysales.local")

# Logs on stderr: one JSON object per line (LOG_FORMAT=json, production's default) or a readable line
# (text); each carries the account, gateway, order, request or task it is about (billmysales.logging).
# Celery workers and beat use this too (billmysales.celery).
LOG_FORMAT = env("LOG_FORMAT", default="text")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "billmysales.logging.ContextFilter"}},
    "formatters": {
        "text": {"()": "billmysales.logging.TextFormatter", "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "billmysales.logging.JsonFormatter", "fmt": "%(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["context"]}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}

# Operations: /metrics answers "Authorization: Bearer <BMS_METRICS_TOKEN>", or loopback clients only when
# it is empty; gauge counts stop at the cap; scrape queries and /readyz checks give up after their timeouts.
BMS_METRICS_TOKEN = env("BMS_METRICS_TOKEN", default="")
BMS_METRICS_COUNT_CAP = env.int("BMS_METRICS_COUNT_CAP", default=100_000)
BMS_METRICS_QUERY_TIMEOUT = env.float("BMS_METRICS_QUERY_TIMEOUT", default=2.0)
BMS_READYZ_TIMEOUT = env.float("BMS_READYZ_TIMEOUT", default=2.0)

# Emission retries: delays in seconds after each transient failure (then the emission fails and is
# shown), with ±20 % jitter; an attempt still "in flight" after the lease is presumed dead and is
# reconciled with the biller before anything is re-sent.
BMS_RETRY_DELAYS = [int(x) for x in env.list("BMS_RETRY_DELAYS", default=["60", "300", "1800", "7200", "43200"])]
BMS_EMISSION_LEASE_SECONDS = env.int("BMS_EMISSION_LEASE_SECONDS", default=CELERY_TASK_TIME_LIMIT + 30)
# Crash-test hooks only: "point=seconds,..." pauses the emission there (see gateways.emission).
BMS_FAULT_PAUSES = {k: float(v) for k, v in env.dict("BMS_FAULT_PAUSES", default={}).items()}
