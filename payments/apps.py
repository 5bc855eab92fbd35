from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "payments"
    verbose_name = "Enrolments and payments"

    def ready(self) -> None:
        from . import receivers  # noqa: F401 - flags enrolments whose household lost eligibility
