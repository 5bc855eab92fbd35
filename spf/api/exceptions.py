"""API errors that DRF does not name, in the shape of `spf.api.errors`."""

from rest_framework import status
from rest_framework.exceptions import APIException


class Conflict(APIException):
    """The request clashes with what is already recorded; `extra` goes into the error body beside the message."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The request conflicts with data already recorded."

    def __init__(self, detail: str | None = None, *, code: str | None = None, extra: dict | None = None):
        super().__init__(detail, code)
        if code:
            self.default_code = code
        self.extra = extra or {}
