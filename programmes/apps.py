from django.apps import AppConfig


class ProgrammesConfig(AppConfig):
    name = "programmes"
    verbose_name = "Programmes and eligibility"

    def ready(self) -> None:
        from . import receivers  # noqa: F401 - connects to the registry's change signals
