from django.apps import AppConfig


class SpfConfig(AppConfig):
    name = "spf"
    verbose_name = "Users and roles"
