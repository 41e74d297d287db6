import os

from celery import Celery, signals

from .logging import task_context_close, task_context_open

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billmysales.settings.local")

app = Celery("billmysales")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Each task's log lines carry its name, id and the ids it was given (billmysales.logging).
signals.task_prerun.connect(task_context_open, weak=False)
signals.task_postrun.connect(task_context_close, weak=False)


@signals.setup_logging.connect(weak=False)
def _configure_logging(**kwargs) -> None:
    """Workers and beat log through settings.LOGGING (JSON or text, with the context's ids), not Celery's format."""
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)


def _close_old_connections(**kwargs) -> None:
    from django.db import close_old_connections

    close_old_connections()


@signals.worker_init.connect(weak=False)
def _persistent_database_connections(sender=None, **kwargs) -> None:
    """Celery's Django fixup closes the task's database connection before and after every task (a new
    PostgreSQL connection per task). Instead, as Django does around a request: close only a connection that
    is broken or older than CONN_MAX_AGE, and health-check it before the task's first query
    (CONN_HEALTH_CHECKS). Runs after the fixup's own worker_init receiver, which connects the handlers
    replaced here."""
    for fixup in getattr(app, "_fixups", None) or ():
        worker_fixup = getattr(fixup, "_worker_fixup", None)
        if worker_fixup is not None:
            signals.task_prerun.disconnect(worker_fixup.on_task_prerun)
            signals.task_postrun.disconnect(worker_fixup.on_task_postrun)
    signals.task_prerun.connect(_close_old_connections, weak=False)
    signals.task_postrun.connect(_close_old_connections, weak=False)
