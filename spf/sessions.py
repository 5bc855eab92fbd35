"""Sessions that end: after a spell without a request (idle), and a working day after logging in (absolute).

Closing the browser ends a session too: that is the cookie's doing
(SESSION_EXPIRE_AT_BROWSER_CLOSE). The timings and their reasons are in the
security block of `spf/settings/base.py`.

The idle clock is a "last seen" time kept in the session. Writing it on every
request would write the session row on every page; it is written again only
once it is SESSION_ACTIVITY_RESOLUTION old, so a busy officer costs one write a
minute and the idle limit is kept to within that minute.
"""

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout

LOGGED_IN_AT = "spf_logged_in_at"
LAST_SEEN_AT = "spf_last_seen_at"


def sessions_start_clocks(sender, request, user, **kwargs) -> None:
    """On user_logged_in: the clocks start with the log-in, written with the session the log-in saves anyway."""
    session = getattr(request, "session", None)
    if session is not None:
        now = time.time()
        session[LOGGED_IN_AT] = now
        session[LAST_SEEN_AT] = now


class SessionExpiryMiddleware:
    """Logs out a session that was idle too long or is older than a working day, then lets the request go on.

    The request continues as anonymous: a page that needs a log-in sends the
    person to it (with a message saying why), an API call gets its JSON 401/403.
    Only sessions that carry a log-in are looked at; a token-authenticated API
    call has none and costs nothing here.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if SESSION_KEY in request.session:
            self._end_if_expired(request)
        response = self.get_response(request)
        # A session from before these marks existed starts its clocks now; any other moves "last seen" on.
        if SESSION_KEY in request.session:
            self._mark(request)
        return response

    def _end_if_expired(self, request) -> None:
        now = time.time()
        logged_in_at = request.session.get(LOGGED_IN_AT)
        last_seen_at = request.session.get(LAST_SEEN_AT)
        reason = None
        if logged_in_at is not None and now - logged_in_at > settings.SESSION_ABSOLUTE_TIMEOUT.total_seconds():
            hours = round(settings.SESSION_ABSOLUTE_TIMEOUT.total_seconds() / 3600)
            reason = f"You were logged out: a session lasts {hours} hours. Log in again to go on."
        elif last_seen_at is not None and now - last_seen_at > settings.SESSION_IDLE_TIMEOUT.total_seconds():
            minutes = round(settings.SESSION_IDLE_TIMEOUT.total_seconds() / 60)
            reason = f"You were logged out after {minutes} minutes without activity. Log in again to go on."
        if reason:
            logout(request)
            if not request.path.startswith("/api/"):
                messages.info(request, reason)

    def _mark(self, request) -> None:
        now = time.time()
        session = request.session
        if LOGGED_IN_AT not in session:
            session[LOGGED_IN_AT] = now
            session[LAST_SEEN_AT] = now
            return
        if now - session.get(LAST_SEEN_AT, 0) >= settings.SESSION_ACTIVITY_RESOLUTION.total_seconds():
            session[LAST_SEEN_AT] = now
