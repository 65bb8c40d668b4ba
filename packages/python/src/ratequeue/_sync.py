"""The synchronous API: :mod:`ratequeue.aio` run on one background
event-loop thread per process, shared by every synchronous client."""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import ssl as _ssl
import threading
from types import TracebackType
from typing import Any, Coroutine, Dict, Optional, Sequence, Tuple, Type, TypeVar, Union

from . import _wire as wire
from . import aio
from ._wire import Load
from .errors import RateQueueError

T = TypeVar("T")

#: How long a cancelled call (e.g. Ctrl-C while waiting) waits for its request to be withdrawn.
_CANCEL_WAIT_S = 1.0
#: How long the exit handler waits for the default clients to say goodbye.
_EXIT_WAIT_S = 2.0


class _LoopThread:
    """A daemon thread running an event loop for every synchronous client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="ratequeue-loop", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            coroutine.close()
            raise RuntimeError("the synchronous ratequeue API cannot be used from its own event loop; use ratequeue.aio")
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            # Interrupted (Ctrl-C) or failed: cancelling the task withdraws its request from the cluster.
            if future.cancel():
                concurrent.futures.wait([future], timeout=_CANCEL_WAIT_S)
            raise


_lock = threading.Lock()
_loop_thread: Optional[_LoopThread] = None


def _runner() -> _LoopThread:
    global _loop_thread
    with _lock:
        if _loop_thread is None:
            _loop_thread = _LoopThread()
            atexit.register(_close_defaults_at_exit)
        return _loop_thread


class Lease:
    """A granted request (see :class:`ratequeue.aio.Lease`). ``with lease:``
    releases it at the end of the block."""

    def __init__(self, lease: aio.Lease) -> None:
        self._lease = lease

    @property
    def id(self) -> str:
        return self._lease.id

    @property
    def resource(self) -> str:
        return self._lease.resource

    @property
    def load(self) -> Load:
        return self._lease.load

    @property
    def granted_at_ms(self) -> int:
        return self._lease.granted_at_ms

    @property
    def released(self) -> bool:
        return self._lease.released

    def release(self) -> None:
        """Frees the concurrency slot once the cluster has committed it. Idempotent."""
        _runner().call(self._lease.release())

    def settle(self, actual: Load) -> None:
        """Reports the real usage once known: the grant's charge in every window becomes ``actual``."""
        _runner().call(self._lease.settle(actual))

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], value: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        try:
            self.release()
        except RateQueueError:
            pass  # the session's expiry frees the slot; never hide the block's own error

    def __repr__(self) -> str:
        return repr(self._lease)


class Client:
    """A synchronous RateQueue client, safe to share between threads. Same
    parameters as :class:`ratequeue.aio.Client`.

    .. code-block:: python

        with ratequeue.Client() as client:
            with client.acquire("openai-gpt4o", load=1200, timeout=30) as lease:
                ...
    """

    def __init__(
        self,
        url: Union[str, Sequence[str], None] = None,
        api_key: Optional[str] = None,
        *,
        session_ttl: Optional[float] = None,
        unavailable_after: float = 30.0,
        client_name: str = "ratequeue-python",
        ssl: Optional[_ssl.SSLContext] = None,
        delivery_report: float = 10.0,
    ) -> None:
        self._client = aio.Client(
            url,
            api_key,
            session_ttl=session_ttl,
            unavailable_after=unavailable_after,
            client_name=client_name,
            ssl=ssl,
            delivery_report=delivery_report,
        )

    def acquire(
        self,
        resource: str,
        *,
        load: Optional[Load] = None,
        priority: Optional[int] = None,
        lane: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Lease:
        """Blocks until capacity is granted and returns the :class:`Lease`
        (use ``with client.acquire(...) as lease:`` to release it at the end of
        the block). ``timeout`` is the longest wait in the queue, in seconds."""
        call = self._client.acquire(resource, load=load, priority=priority, lane=lane, timeout=timeout)

        async def run() -> aio.Lease:
            return await call

        return Lease(_runner().call(run()))

    def try_acquire(
        self,
        resource: str,
        *,
        load: Optional[Load] = None,
        priority: Optional[int] = None,
        lane: Optional[str] = None,
    ) -> Optional[Lease]:
        """A :class:`Lease` if capacity is there right now, else ``None``."""
        lease = _runner().call(self._client.try_acquire(resource, load=load, priority=priority, lane=lane))
        return None if lease is None else Lease(lease)

    def report_limited(self, resource: str, retry_after: float) -> None:
        """Reports a provider 429: the resource grants nothing for ``retry_after`` seconds, on every node."""
        _runner().call(self._client.report_limited(resource, retry_after))

    def close(self) -> None:
        """Ends the session (its leases are released) and closes the connection."""
        _runner().call(self._client.close())

    @property
    def closed(self) -> bool:
        return self._client.closed

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: Optional[Type[BaseException]], value: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        self.close()


_defaults: Dict[Tuple[Tuple[str, ...], str], Client] = {}


def _default_client(url: Union[str, Sequence[str], None], api_key: Optional[str]) -> Client:
    urls = tuple(wire.parse_urls(url if url is not None else os.environ.get("RATEQUEUE_URL")))
    key = wire.check_api_key(api_key if api_key is not None else os.environ.get("RATEQUEUE_API_KEY"))
    with _lock:
        client = _defaults.get((urls, key))
        if client is None or client.closed:
            client = _defaults[(urls, key)] = Client(list(urls), key)
        return client


def acquire(
    resource: str,
    *,
    load: Optional[Load] = None,
    priority: Optional[int] = None,
    lane: Optional[str] = None,
    timeout: Optional[float] = None,
    api_key: Optional[str] = None,
    url: Union[str, Sequence[str], None] = None,
) -> Lease:
    """Blocks until capacity is granted, with the default client (from
    ``RATEQUEUE_URL`` / ``RATEQUEUE_API_KEY`` or the arguments, created once
    and reused). ``with acquire(...) as lease:`` releases at the end."""
    return _default_client(url, api_key).acquire(resource, load=load, priority=priority, lane=lane, timeout=timeout)


def try_acquire(
    resource: str,
    *,
    load: Optional[Load] = None,
    priority: Optional[int] = None,
    lane: Optional[str] = None,
    api_key: Optional[str] = None,
    url: Union[str, Sequence[str], None] = None,
) -> Optional[Lease]:
    """A lease if capacity is there right now, else ``None``, with the default client."""
    return _default_client(url, api_key).try_acquire(resource, load=load, priority=priority, lane=lane)


def report_limited(
    resource: str,
    retry_after: float,
    *,
    api_key: Optional[str] = None,
    url: Union[str, Sequence[str], None] = None,
) -> None:
    """Reports a provider 429 with the default client (``retry_after`` in seconds)."""
    _default_client(url, api_key).report_limited(resource, retry_after)


def close() -> None:
    """Closes the default clients (their sessions end, their leases are released)."""
    with _lock:
        clients = list(_defaults.values())
        _defaults.clear()
    for client in clients:
        client.close()


def _close_defaults_at_exit() -> None:
    """At exit, say goodbye for the default clients, so their leases are freed now rather than at session expiry."""
    runner = _loop_thread
    if runner is None or not _defaults:
        return
    with _lock:
        clients = list(_defaults.values())
        _defaults.clear()

    async def goodbye() -> None:
        await asyncio.gather(*(c._client.close() for c in clients), return_exceptions=True)

    future = asyncio.run_coroutine_threadsafe(goodbye(), runner.loop)
    concurrent.futures.wait([future], timeout=_EXIT_WAIT_S)
