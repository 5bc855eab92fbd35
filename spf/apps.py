from django.apps import AppConfig


class SpfConfig(AppConfig):
    name = "spf"
    verbose_name = "Users and roles"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from .sessions import sessions_start_clocks

        # A log-in starts the session's idle and absolute clocks (spf/sessions.py).
        user_logged_in.connect(sessions_start_clocks, dispatch_uid="spf.sessions.start_clocks")
