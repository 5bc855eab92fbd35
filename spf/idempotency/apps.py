from django.apps import AppConfig


class IdempotencyConfig(AppConfig):
    name = "spf.idempotency"
    label = "idempotency"
    verbose_name = "Requests answered once"
