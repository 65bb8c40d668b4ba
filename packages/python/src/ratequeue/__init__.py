"""RateQueue for Python: ask before you call a rate-limited API.

Synchronous API (threads, scripts):

.. code-block:: python

    import ratequeue as rq

    with rq.acquire("openai-gpt4o", load=1200) as lease:
        reply = client.chat.completions.create(...)

For asyncio use :mod:`ratequeue.aio`, which this module runs on a
background event-loop thread.
"""

from __future__ import annotations

from ._sync import Client, Lease, acquire, close, report_limited, try_acquire
from ._wire import Load
from .errors import (
    CancelledError,
    ForbiddenError,
    InvalidError,
    RateQueueError,
    RequestRef,
    TimeoutError,
    UnauthorizedError,
    UnavailableError,
    UngrantableError,
    UnknownResourceError,
)

__version__ = "0.1.0"

__all__ = [
    "Client",
    "Lease",
    "Load",
    "acquire",
    "try_acquire",
    "report_limited",
    "close",
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
]
