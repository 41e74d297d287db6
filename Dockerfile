# One image for web (gunicorn), worker and beat (celery). Build: docker compose build
#
# Stage 1 only trims the build context: without a .dockerignore, `COPY . .` would bring in the
# local .venv, .env (secrets), .git and var/. The final image copies the trimmed tree from here.
FROM python:3.11-slim AS source
COPY . /src
RUN cd /src \
    && rm -rf .venv .env .git var .hypothesis test-results .pytest_cache \
    && find . -name __pycache__ -type d -prune -exec rm -rf {} +

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=billmysales.settings.production \
    BMS_VAR_DIR=/app/var

WORKDIR /app
COPY requirements.txt /app/requirements.txt
RUN pip install -r /app/requirements.txt

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home app
COPY --from=source --chown=app:app /src /app

# Static files are collected at build time (the production settings use a manifest storage).
# The values below only satisfy the production settings' checks; nothing connects anywhere.
RUN SECRET_KEY=build-only FIELD_ENCRYPTION_KEYS=build-only \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 REDIS_URL=redis://build-only:6379/0 \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/var && chown -R app:app /app/var

USER app
EXPOSE 8000
CMD ["gunicorn", "billmysales.wsgi:application", "-b", "0.0.0.0:8000"]
