# The web, worker and beat image (docker-compose.yml). Production settings;
# secrets come from the environment at run time, never from the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY requirements/base.txt requirements/base.txt
RUN pip install -r requirements/base.txt

COPY . .
# Static files are collected at build time with the dev settings (no secret needed
# to copy files); whitenoise serves them in production.
RUN DJANGO_SETTINGS_MODULE=spf.settings.dev python manage.py collectstatic --no-input \
    && useradd --create-home --uid 1000 spf && mkdir -p /app/media && chown -R spf /app/media
USER spf

ENV DJANGO_SETTINGS_MODULE=spf.settings.production
EXPOSE 8000
CMD ["gunicorn", "spf.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
