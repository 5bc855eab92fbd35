"""Log-in lockout (django-axes): whose address a try comes from, and what a locked-out person is told.

Axes counts wrong passwords per user name and address in the database and
refuses a locked account inside Django's authenticate(), so every way in is
covered: the log-in page, the admin's log-in and the API token. Settings and
their reasons: the security block of `spf/settings/base.py`; how to unlock:
docs/security.md.
"""

import datetime

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.admin.models import DELETION, LogEntry
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

WHO_UNLOCKS = "ministry staff who manage users (Administration › Access attempts)"


def client_ip(request: HttpRequest) -> str | None:
    """The address of the computer that tried: the peer's, or the one our own proxies say they served.

    Each trusted proxy appends the address it was reached from to X-Forwarded-For, so
    the client is the entry that many places from the right; whatever stands to its
    left was written by the client and proves nothing.
    """
    trusted = settings.TRUSTED_PROXY_COUNT
    if trusted:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= trusted:
            return hops[-trusted]
    return request.META.get("REMOTE_ADDR")


def locked_until(*, username: str, ip_address: str | None) -> datetime.datetime:
    """When the lockout of this user name from this address ends (the cool-off runs from the last counted try)."""
    last_try = (
        AccessAttempt.objects.filter(username=username, ip_address=ip_address)
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    return (last_try or timezone.now()) + settings.AXES_COOLOFF_TIME


def lockout_message(*, until: datetime.datetime) -> str:
    minutes = settings.LOGIN_LOCKOUT_MINUTES
    return (
        f"This account is locked on this computer after {settings.LOGIN_FAILURE_LIMIT} wrong passwords. "
        f"Try again in {minutes} minutes (after {timezone.localtime(until):%H:%M}), "
        f"or ask {WHO_UNLOCKS} to unlock it now."
    )


def lockout_response(request: HttpRequest, original_response=None, credentials: dict | None = None) -> HttpResponse:
    """Axes' AXES_LOCKOUT_CALLABLE: the log-in page's lockout notice, or the API's error shape under /api/."""
    username = (credentials or {}).get("username") or request.POST.get("username", "")
    until = locked_until(username=username, ip_address=getattr(request, "axes_ip_address", None) or client_ip(request))
    message = lockout_message(until=until)
    retry_after = str(max(1, int((until - timezone.now()).total_seconds())))
    if request.path.startswith("/api/"):
        response = JsonResponse(
            {"error": {"code": "account_locked", "message": message, "fields": {}}},
            status=settings.AXES_HTTP_RESPONSE_CODE,
        )
    else:
        response = render(
            request,
            "registration/locked.html",
            {"message": message, "until": until, "username": username, "who_unlocks": WHO_UNLOCKS},
            status=settings.AXES_HTTP_RESPONSE_CODE,
        )
    response["Retry-After"] = retry_after
    return response


@transaction.atomic
def lockouts_clear(*, acting_user, attempts: QuerySet) -> int:
    """Unlock: forget the wrong-password counts of these attempts (user name and address), noted in the admin's log.

    The person can log in at once with the right password; the next wrong ones count from zero.
    """
    rows = list(attempts.select_for_update().order_by("pk"))
    if not rows:
        return 0
    for row in rows:
        LogEntry.objects.log_actions(
            user_id=acting_user.pk,
            queryset=[row],
            action_flag=DELETION,
            change_message=f"Unlocked {row.username} from {row.ip_address}: the wrong-password count was cleared.",
            single_object=True,
        )
    AccessAttempt.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)
