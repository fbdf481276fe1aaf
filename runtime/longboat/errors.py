"""The one exception hierarchy of Longboat.

Every error carries a message a user can act on; at the API it maps to Docker's status
code (``status``) and a ``{"message": ...}`` body.
"""

from __future__ import annotations


class LongboatError(Exception):
    """Base of every error Longboat raises on purpose."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(LongboatError):
    """Bad input: a malformed config, a wrong type, conflicting options."""

    status = 400


class NotFound(LongboatError):
    status = 404


class Conflict(LongboatError):
    """The object exists, is in use, or is in the wrong state for the request."""

    status = 409


class NotModified(LongboatError):
    status = 304


class SystemFault(LongboatError):
    """The host refused: a syscall failed, a controller is missing."""

    status = 500
