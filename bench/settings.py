"""Settings for the benchmarks: production's, with the bare reference view's URL, a plain static storage
(no collectstatic) and an e-mail backend that builds each message (its MIME, PDF and XML attached) and
sends it nowhere."""
from django.core.mail.backends.base import BaseEmailBackend

from billmysales.settings.production import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
# The simulated biller runs on loopback over plain HTTP (production refuses any http:// vendor URL).
BMS_INSECURE_HOSTS = ["127.0.0.1", "localhost"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True


class SerialisingEmailBackend(BaseEmailBackend):
    """Pays what an SMTP backend pays on our side (the message serialised), without a mail server."""

    def send_messages(self, email_messages):
        for message in email_messages:
            message.message().as_bytes()
        return len(email_messages)
