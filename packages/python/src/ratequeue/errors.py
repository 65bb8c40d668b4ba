"""Errors raised by the RateQueue client.

Every error is a :class:`RateQueueError` with a stable ``code`` (the same
``RQ_*`` codes as the Node SDK and the wire protocol) and a subclass per
code, so ``except ratequeue.TimeoutError`` and ``err.code == "RQ_TIMEOUT"``
both work. Where a built-in exception means the same thing, the subclass
derives from it too (``TimeoutError``, ``ValueError``, ``PermissionError``,
``ConnectionError``, ``LookupError``).
"""

from __future__ import annotations

import builtins
from typing import NamedTuple, Optional


class RequestRef(NamedTuple):
    """A request as the cluster knows it: the ids in the nodes' logs and in
    ``/v1/debug/grants``."""

    session_id: str
    request_id: int


class RateQueueError(Exception):
    """Base class of every error the client raises.

    ``code`` is one of the ``RQ_*`` codes. ``request`` names the request when
    the cluster decided the failure (a queue timeout, an unknown resource...)
    and is ``None`` when the client did (no node reachable, a bad argument).
    """

    code: str = "RQ_INVALID"

    def __init__(self, message: str, *, request: Optional[RequestRef] = None) -> None:
        super().__init__(message)
        self.message = message
        self.request = request

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code!r}, request={self.request!r})"


class TimeoutError(RateQueueError, builtins.TimeoutError):  # noqa: A001 (mirrors the SDK's name)
    """The request waited ``timeout`` in the queue without a grant: retry
    later or raise the timeout."""

    code = "RQ_TIMEOUT"


class CancelledError(RateQueueError):
    """The cluster cancelled the request before granting it.

    Cancelling the asyncio task that waits raises :class:`asyncio.CancelledError`
    as usual (and withdraws the request from the cluster), not this.
    """

    code = "RQ_CANCELLED"


class UnknownResourceError(RateQueueError, LookupError):
    """No resource (or lane) of that name: create it with the admin API or
    fix the name."""

    code = "RQ_UNKNOWN_RESOURCE"


class UngrantableError(RateQueueError):
    """The load exceeds a limit's whole capacity, so it can never be granted:
    split the request or raise the limit."""

    code = "RQ_UNGRANTABLE"


class InvalidError(RateQueueError, ValueError):
    """A malformed argument (e.g. a negative or fractional load) or a request
    the cluster refused as invalid."""

    code = "RQ_INVALID"


class UnauthorizedError(RateQueueError, PermissionError):
    """The API key is unknown or revoked: check ``RATEQUEUE_API_KEY``."""

    code = "RQ_UNAUTHORIZED"


class ForbiddenError(RateQueueError, PermissionError):
    """The API key's scope does not cover this resource."""

    code = "RQ_FORBIDDEN"


class UnavailableError(RateQueueError, ConnectionError):
    """No RateQueue node answered in time, or the client is closed: check
    ``RATEQUEUE_URL`` and the cluster's health."""

    code = "RQ_UNAVAILABLE"


_BY_CODE = {
    cls.code: cls
    for cls in (
        TimeoutError,
        CancelledError,
        UnknownResourceError,
        UngrantableError,
        InvalidError,
        UnauthorizedError,
        ForbiddenError,
        UnavailableError,
    )
}

_ADVICE = {
    "RQ_TIMEOUT": "retry later or raise timeout",
    "RQ_UNKNOWN_RESOURCE": "create the resource with the admin API or fix its name",
    "RQ_UNGRANTABLE": "this request can never fit; split it or raise the limit",
    "RQ_UNAUTHORIZED": "check the api_key (RATEQUEUE_API_KEY)",
    "RQ_FORBIDDEN": "use a key whose scope covers this resource",
}


def error_for(code: str, message: str, request: Optional[RequestRef] = None) -> RateQueueError:
    """The error for a code received from a node (unknown codes are
    :class:`InvalidError`, as in the Node SDK)."""
    cls = _BY_CODE.get(code, InvalidError)
    advice = _ADVICE.get(code)
    return cls(f"{message}: {advice}" if advice else message, request=request)


__all__ = [
    "RateQueueError",
    "RequestRef",
    "TimeoutError",
    "CancelledError",
    "UnknownResourceError",
    "UngrantableError",
    "InvalidError",
    "UnauthorizedError",
    "ForbiddenError",
    "UnavailableError",
    "error_for",
]
