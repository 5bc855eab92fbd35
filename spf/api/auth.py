from axes.handlers.proxy import AxesProxyHandler
from django.contrib.auth.models import update_last_login
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from spf.lockout import client_ip, locked_until, lockout_message


class AccountLocked(exceptions.APIException):
    """Too many wrong passwords for this user name from this address (django-axes); says until when."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "account_locked"
    default_detail = "This account is locked after too many wrong passwords."

    def __init__(self, detail: str, *, wait: int):
        super().__init__(detail)
        # DRF's handler turns `wait` into a Retry-After header.
        self.wait = wait


class ObtainToken(ObtainAuthToken):
    """POST username and password, get {"token": "..."}; send it as `Authorization: Token <token>`.

    The same lockout as the log-in page: after too many wrong passwords for a user
    name from one address, even the right one gets 429 `account_locked` until the
    cool-off ends or ministry staff unlock the account.
    """

    @extend_schema(
        auth=[],  # the credentials are in the body: no token or session is needed to ask for one
        request=inline_serializer(
            "TokenRequest", {"username": serializers.CharField(), "password": serializers.CharField()}
        ),
        responses={
            200: inline_serializer("TokenResponse", {"token": serializers.CharField()}),
            400: OpenApiResponse(description="Wrong user name or password (`validation_error`)."),
            429: OpenApiResponse(description="Locked after too many wrong passwords (`account_locked`)."),
        },
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        if not serializer.is_valid():
            # The axes backend marks the request it refused; it is DRF's request
            # here, which Django's middleware never sees, so the answer is made here.
            if getattr(request, "axes_locked_out", False):
                until = locked_until(username=request.data.get("username", ""), ip_address=client_ip(request))
                wait = max(1, int((until - timezone.now()).total_seconds()))
                raise AccountLocked(lockout_message(until=until), wait=wait)
            raise exceptions.ValidationError(serializer.errors)
        user = serializer.validated_data["user"]
        self._record_success(request, user)
        token, _ = Token.objects.get_or_create(user=user)
        return Response({"token": token.key})

    @staticmethod
    def _record_success(request, user) -> None:
        """A token is a log-in: the wrong tries before it no longer count, and last_login says when.

        Not through the user_logged_in signal: its receivers (axes' access log)
        would open a session for a client that has no use for one.
        """
        AxesProxyHandler.reset_attempts(username=user.get_username(), ip_address=client_ip(request))
        update_last_login(None, user)
