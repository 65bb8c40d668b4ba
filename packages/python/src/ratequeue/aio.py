"""RateQueue for asyncio.

.. code-block:: python

    import ratequeue.aio as rq

    async with rq.acquire("anthropic-claude", load=prompt_tokens) as lease:
        response = await anthropic_client.messages.create(...)
        await lease.settle(response.usage.input_tokens + response.usage.output_tokens)

The module-level functions use a default :class:`Client` per event loop,
built from ``RATEQUEUE_URL`` and ``RATEQUEUE_API_KEY`` (or the ``url`` and
``api_key`` arguments) on first use and reused by every later call.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import ssl as _ssl
import time
import weakref
from typing import Any, Awaitable, Callable, Dict, Generator, List, Optional, Sequence, Set, Tuple, Union

import websockets.client
import websockets.exceptions

from . import _wire as wire
from ._wire import Load
from .errors import (
    InvalidError,
    RateQueueError,
    RequestRef,
    TimeoutError,
    UnauthorizedError,
    UnavailableError,
    error_for,
)

__all__ = ["Client", "Lease", "AcquireContext", "acquire", "try_acquire", "report_limited", "close", "Load"]

VERSION = "0.1.0"
_log = logging.getLogger("ratequeue")

_HEARTBEATS_PER_TTL = 3
_BACKOFF_MIN_S = 0.05
_BACKOFF_MAX_S = 2.0
#: Grace given to the cluster to answer a timed-out request before the client gives up on its own.
_TIMEOUT_GRACE_S = 5.0
_CONNECT_TIMEOUT_S = 5.0
#: A node that answers no ping for this long is given up (a frozen leader keeps its sockets open; only the
#: silence tells): pings every _PING_INTERVAL_S, as the Node SDK's silentAfterMs (2 s) does.
_PING_INTERVAL_S = 0.5
_PING_TIMEOUT_S = 2.0
#: How long a hello may wait for its answer (a node holds it during an election).
_WELCOME_TIMEOUT_S = 15.0
_WATCHDOG_PERIOD_S = 0.25
#: How often delivery delays are reported by default (seconds).
_DELIVERY_REPORT_S = 10.0
#: Clock readings (log time minus local time, ping round trips) are kept this long: log time drifts 0.1% from ours.
_CLOCK_WINDOW_S = 15.0


class _RecentMax:
    """The largest value seen over the last one to two windows: a reading ages out instead of holding forever,
    because what it estimates drifts (log time runs 0.1% slow against the monotonic clock)."""

    def __init__(self) -> None:
        self._current: Optional[float] = None
        self._previous: Optional[float] = None
        self._start = 0.0

    def add(self, value: float, now_s: float) -> None:
        self._roll(now_s)
        if self._current is None or value > self._current:
            self._current = value

    def read(self, now_s: float) -> Optional[float]:
        self._roll(now_s)
        values = [v for v in (self._current, self._previous) if v is not None]
        return max(values) if values else None

    def _roll(self, now_s: float) -> None:
        if now_s - self._start < _CLOCK_WINDOW_S:
            return
        self._previous = self._current if now_s - self._start < 2 * _CLOCK_WINDOW_S else None
        self._current = None
        self._start = now_s


class _Pending:
    __slots__ = ("kind", "msg", "future", "started", "has_timeout")

    def __init__(self, kind: str, msg: wire.Message, future: "asyncio.Future[Any]", has_timeout: bool) -> None:
        self.kind = kind  # "acquire" or "ack"
        self.msg = msg
        self.future = future
        self.started = time.monotonic()
        self.has_timeout = has_timeout


def _consume(future: "asyncio.Future[Any]") -> None:
    """A done-callback for futures nobody awaits: retrieve the exception so asyncio does not log it."""
    if not future.cancelled():
        future.exception()


class Lease:
    """A granted request. Hold it while you use the capacity.

    ``release()`` frees its concurrency slot (rate and load were consumed at
    grant time, as providers count them); ``settle(actual)`` reports the real
    usage once known. ``async with lease:`` releases at the end of the block.
    """

    def __init__(self, client: Client, lease_id: str, resource: str, load: Load, granted_at_ms: int, session_id: str) -> None:
        self._client = client
        #: The lease id, unique in its session.
        self.id = lease_id
        self.resource = resource
        #: The load charged (as requested; ``settle`` corrects it).
        self.load = load
        #: The cluster's log time of the grant, in ms.
        self.granted_at_ms = granted_at_ms
        self._session_id = session_id
        self._released = False

    @property
    def released(self) -> bool:
        """True once ``release()`` was called."""
        return self._released

    async def release(self) -> None:
        """Frees the concurrency slot and waits until the cluster has committed it. Idempotent."""
        if self._released:
            return
        self._released = True
        await self._client._send_acked(self, {"t": wire.RELEASE, "leaseId": self.id})

    async def settle(self, actual: Load) -> None:
        """Reports the real usage once known (e.g. the tokens the provider
        counted): the grant's charge in every window becomes ``actual``. Less
        returns capacity to the queue; more charges the difference.
        """
        checked = wire.check_load(actual, "actual")
        await self._client._send_acked(self, {"t": wire.SETTLE, "leaseId": self.id, "actual": wire.load_to_wire(checked)})

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await _release_quietly(self)

    def __repr__(self) -> str:
        return f"Lease(id={self.id!r}, resource={self.resource!r}, load={self.load!r}, granted_at_ms={self.granted_at_ms})"


async def _release_quietly(lease: Lease) -> None:
    """Releases at the end of a block. The release is queued before anything
    else this client sends; if the cluster cannot be reached, the session's
    expiry frees the slot, so an error here is not raised over the block's own."""
    try:
        await asyncio.shield(lease.release())
    except RateQueueError as err:
        _log.warning("ratequeue: could not release lease %s: %s", lease.id, err)


class AcquireContext:
    """What ``acquire()`` returns: ``await`` it for a :class:`Lease`, or use it
    as ``async with`` to hold the lease for the block (released at the end,
    also on an exception or a cancellation)."""

    def __init__(self, start: Callable[[], Awaitable[Optional[Lease]]]) -> None:
        self._start = start
        self._lease: Optional[Lease] = None

    async def _acquire(self) -> Lease:
        lease = await self._start()
        assert lease is not None  # only try_acquire answers None
        return lease

    def __await__(self) -> Generator[Any, None, Lease]:
        return self._acquire().__await__()

    async def __aenter__(self) -> Lease:
        self._lease = await self._acquire()
        return self._lease

    async def __aexit__(self, *exc: object) -> None:
        if self._lease is not None:
            await _release_quietly(self._lease)


class Client:
    """A RateQueue client: one WebSocket to the cluster's leader, shared by any
    number of concurrent acquires.

    It connects lazily, follows the leader, reconnects with jittered back-off,
    resumes its session and resends pending requests under their original ids
    (so a leader change never grants twice and never loses a request), and
    heartbeats its session. Use it from one event loop.

    :param url: node URLs, comma-separated or a list (default ``RATEQUEUE_URL``).
    :param api_key: an API key with ``acquire`` scope (default ``RATEQUEUE_API_KEY``).
    :param session_ttl: seconds a dead worker's leases outlive it (default: the cluster's, 10 s).
    :param unavailable_after: with no ``timeout``, how long a request may wait for any
        node to be reachable before :class:`UnavailableError` (seconds, default 30).
    :param ssl: an :class:`ssl.SSLContext` for ``wss://`` (e.g. a private CA).
    :param delivery_report: how often (seconds, 0.1 to 600, default 10) the grant-to-send delays this client
        observed are reported to its node, for its ``/metrics`` (docs/protocol.md, section 8a).
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
        delivery_report: float = _DELIVERY_REPORT_S,
    ) -> None:
        self._urls = wire.parse_urls(url if url is not None else os.environ.get("RATEQUEUE_URL"))
        self._api_key = wire.check_api_key(api_key if api_key is not None else os.environ.get("RATEQUEUE_API_KEY"))
        self._ttl_ms_asked = None if session_ttl is None else max(1, wire.seconds_to_ms(session_ttl, "session_ttl"))
        self._unavailable_after_s = wire.seconds_to_ms(unavailable_after, "unavailable_after") / 1000
        self._client_name = client_name
        self._ssl = ssl
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._url_index = 0
        self._preferred_url: Optional[str] = None
        self._state = "idle"  # idle | connecting | ready | closed
        self._session_id: Optional[str] = None
        self._ttl_ms = 10_000
        self._backoff_s = _BACKOFF_MIN_S
        self._down_since: Optional[float] = None
        self._next_request_id = 1
        self._pending: Dict[int, _Pending] = {}
        #: Acquires the caller gave up on: cancel them (again after every resume) until their answer arrives.
        self._cancels: Set[int] = set()
        #: Acquires the caller gave up on: a grant that still arrives for one of them is released at once.
        self._abandoned: Set[int] = set()
        self._outbox: List[wire.Message] = []
        self._wake: Optional[asyncio.Event] = None
        self._run_task: Optional["asyncio.Task[None]"] = None
        self._ws: Optional[Any] = None
        if isinstance(delivery_report, bool) or not isinstance(delivery_report, (int, float)) or not 0.1 <= delivery_report <= 600:
            raise InvalidError(f"delivery_report must be a number of seconds from 0.1 to 600, got {delivery_report!r}")
        self._delivery_report_s = float(delivery_report)
        #: Log time minus time.monotonic(), in ms, from grants' sentAt: each reading is low by its trip, so the largest is kept.
        self._log_offset = _RecentMax()
        #: Ping round trips in ms, negated (_RecentMax keeps the smallest).
        self._neg_rtt_ms = _RecentMax()
        self._deliveries: Dict[str, wire.DeliveryTally] = {}

    # --- Public API -----------------------------------------------------

    def acquire(
        self,
        resource: str,
        *,
        load: Optional[Load] = None,
        priority: Optional[int] = None,
        lane: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> AcquireContext:
        """Waits for capacity on ``resource``.

        ``await client.acquire(...)`` returns a :class:`Lease`;
        ``async with client.acquire(...) as lease:`` holds it for the block.

        :param load: what the request costs against ``load`` limits, in whole units
            (a number, or a mapping such as ``{"input": 1200, "output": 1024}``).
        :param priority: 0 to 1000, higher first (default 10).
        :param lane: the resource lane (traffic class) to queue in.
        :param timeout: longest wait in the queue, in seconds; then :class:`TimeoutError`.
        :raises RateQueueError: a subclass per ``RQ_*`` code.
        """
        msg = self._acquire_message(resource, load, priority, lane, timeout, False)
        return AcquireContext(lambda: self._acquire(msg, timeout))

    async def try_acquire(
        self,
        resource: str,
        *,
        load: Optional[Load] = None,
        priority: Optional[int] = None,
        lane: Optional[str] = None,
    ) -> Optional[Lease]:
        """A :class:`Lease` if capacity is there right now, else ``None``. Never waits in the queue."""
        return await self._acquire(self._acquire_message(resource, load, priority, lane, None, True), None)

    async def report_limited(self, resource: str, retry_after: float) -> None:
        """Reports a provider 429: the resource grants nothing for ``retry_after``
        seconds, on every node, so one worker's 429 protects the whole fleet."""
        wire.check_resource(resource)
        ms = wire.seconds_to_ms(retry_after, "retry_after")
        await self._send_acked(None, {"t": wire.COOLDOWN, "resource": resource, "retryAfterMs": ms})

    async def close(self) -> None:
        """Ends the session (its leases are released, its waiters dropped) and closes the connection."""
        if self._state == "closed":
            return
        was_ready = self._state == "ready"
        self._state = "closed"
        self._fail_all(UnavailableError("the client was closed"))
        ws = self._ws
        if ws is not None and was_ready:
            try:
                await ws.send(wire.encode_frame([*self._take_reports(), {"t": wire.GOODBYE}]))
                await asyncio.wait_for(ws.wait_closed(), 2.0)
            except (asyncio.TimeoutError, websockets.exceptions.WebSocketException, OSError):
                pass
        if ws is not None:
            await ws.close()
        task = self._run_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    @property
    def session_id(self) -> Optional[str]:
        """The cluster session of this client, once connected."""
        return self._session_id

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- Requests -------------------------------------------------------

    def _acquire_message(
        self,
        resource: str,
        load: Optional[Load],
        priority: Optional[int],
        lane: Optional[str],
        timeout: Optional[float],
        is_try: bool,
    ) -> wire.Message:
        msg: wire.Message = {"t": wire.ACQUIRE, "resource": wire.check_resource(resource)}
        if load is not None:
            msg["load"] = wire.load_to_wire(wire.check_load(load, "load"))
        if priority is not None:
            msg["priority"] = wire.check_priority(priority)
        if lane is not None:
            msg["lane"] = wire.check_lane(lane)
        if timeout is not None:
            msg["timeoutMs"] = wire.seconds_to_ms(timeout, "timeout")
        if is_try:
            msg["try"] = True
        return msg

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
            self._wake = asyncio.Event()
        elif self._loop is not loop:
            raise RuntimeError("a ratequeue.aio.Client is used from one event loop only; create one per loop")
        return loop

    def _check_open(self) -> None:
        if self._state == "closed":
            raise UnavailableError("the client is closed; create a new Client")

    def _new_request_id(self) -> int:
        request_id = self._next_request_id
        self._next_request_id += 1
        return request_id

    async def _acquire(self, template: wire.Message, timeout: Optional[float]) -> Optional[Lease]:
        lease = await self._acquire_answer(template, timeout)
        if lease is not None:
            self._delivered(lease)
        return lease

    def _delivered(self, lease: Lease) -> None:
        """The caller can send now: tallies how long after its grant's log time that is (docs/protocol.md, 8a).

        Log time now = this clock + the largest recent (sentAt - arrival) + half the shortest recent ping round
        trip. A delay of this process after the best recent arrival (a blocked event loop) is counted in full.
        """
        now_s = time.monotonic()
        offset = self._log_offset.read(now_s)
        if offset is None:
            return  # a node that does not send sentAt: no reading of log time
        neg_rtt = self._neg_rtt_ms.read(now_s)
        one_way_ms = 0.0 if neg_rtt is None else -neg_rtt / 2
        delay_ms = min(wire.MAX_DELIVERY_MS, max(0, round(now_s * 1000 + offset + one_way_ms - lease.granted_at_ms)))
        self._deliveries.setdefault(lease.resource, wire.DeliveryTally()).add(delay_ms)

    def _take_reports(self) -> List[wire.Message]:
        """One report per resource with delays since the last one; not pending (a lost one is not resent)."""
        reports = [t.report(self._new_request_id(), resource) for resource, t in self._deliveries.items()]
        self._deliveries.clear()
        return reports

    async def _reports(self) -> None:
        while True:
            await asyncio.sleep(self._delivery_report_s)
            for m in self._take_reports():
                self._send(m)

    async def _acquire_answer(self, template: wire.Message, timeout: Optional[float]) -> Optional[Lease]:
        self._check_open()
        loop = self._bind_loop()
        request_id = self._new_request_id()
        msg = {**template, "requestId": request_id}
        future: "asyncio.Future[Optional[Lease]]" = loop.create_future()
        self._pending[request_id] = _Pending("acquire", msg, future, timeout is not None)
        self._send(msg)
        try:
            if timeout is None:
                return await asyncio.shield(future)
            # The cluster times the wait; this only catches a cluster that cannot answer.
            grace = _TIMEOUT_GRACE_S if self._state == "ready" else 0.0
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout + grace)
            except asyncio.TimeoutError:
                if self._pending.pop(request_id, None) is None:
                    return await future  # answered at the last moment
                self._abandon(request_id)
                if self._state == "ready":
                    raise TimeoutError(f"no answer from the cluster within timeout {timeout} s") from None
                raise UnavailableError(
                    f"no RateQueue node was reachable within timeout ({timeout} s); tried {', '.join(self._urls)}"
                ) from None
        except asyncio.CancelledError:
            # The caller's task was cancelled: withdraw the request, or free the lease if it was granted meanwhile.
            if future.done() and not future.cancelled() and future.exception() is None:
                lease = future.result()
                if lease is not None:
                    lease._released = True
                    self._release_soon(lease)
            else:
                if self._pending.pop(request_id, None) is not None:
                    self._abandon(request_id)
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()
            raise

    def _send_acked(self, lease: Optional[Lease], template: wire.Message) -> "asyncio.Future[None]":
        """Sends a release/settle/cooldown and returns a future resolved by its ack."""
        loop = self._bind_loop()
        future: "asyncio.Future[None]" = loop.create_future()
        if lease is not None and lease._session_id != self._session_id:
            future.set_result(None)  # its session ended, and its leases with it: nothing left to free
            return future
        if self._state == "closed":
            if lease is None:
                future.set_exception(UnavailableError("the client is closed"))
            else:
                future.set_result(None)
            return future
        request_id = self._new_request_id()
        msg = {**template, "requestId": request_id}
        self._pending[request_id] = _Pending("ack", msg, future, False)
        self._send(msg)
        return future

    def _release_soon(self, lease: Lease) -> None:
        self._send_acked(lease, {"t": wire.RELEASE, "leaseId": lease.id}).add_done_callback(_consume)

    def _abandon(self, request_id: int) -> None:
        self._cancels.add(request_id)
        self._abandoned.add(request_id)
        if self._state == "ready":
            self._send({"t": wire.CANCEL, "requestId": request_id})

    def _send(self, msg: wire.Message) -> None:
        if self._state == "closed":
            return
        if self._state != "ready":
            self._ensure_running()
            return  # resent from _pending (and _cancels) once the session is ready
        self._outbox.append(msg)
        assert self._wake is not None
        self._wake.set()

    def _fail_all(self, err: RateQueueError) -> None:
        pending, self._pending = self._pending, {}
        for p in pending.values():
            if not p.future.done():
                p.future.set_exception(err)
                p.future.add_done_callback(_consume)

    # --- Connection -----------------------------------------------------

    def _ensure_running(self) -> None:
        if self._run_task is None or self._run_task.done():
            self._run_task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        """Connects, serves one connection, and reconnects while there is work; exits when idle."""
        watchdog = asyncio.ensure_future(self._watchdog())
        try:
            while self._state != "closed":
                self._state = "connecting"
                if self._down_since is None:
                    self._down_since = time.monotonic()
                url = self._preferred_url or self._urls[self._url_index % len(self._urls)]
                if self._preferred_url is None:
                    self._url_index += 1
                self._preferred_url = None
                stop = await self._connection(url)
                if self._state == "closed":
                    return
                self._state = "idle"
                if self._down_since is None:
                    self._down_since = time.monotonic()
                if stop or (not self._pending and not self._cancels):
                    return  # reconnect lazily, on the next request
                delay = 0.0 if self._preferred_url is not None else random.uniform(0, self._backoff_s)
                self._backoff_s = min(_BACKOFF_MAX_S, self._backoff_s * 2)
                await asyncio.sleep(delay)
        finally:
            watchdog.cancel()
            if self._state != "closed":
                self._state = "idle"

    async def _connection(self, url: str) -> bool:
        """One connection, from hello to close. Returns True when reconnecting is pointless (a refused key)."""
        kwargs: Dict[str, Any] = {}
        if url.startswith("wss://"):
            kwargs["ssl"] = self._ssl if self._ssl is not None else True
        try:
            ws = await websockets.client.connect(
                f"{url}/v1/client",
                open_timeout=_CONNECT_TIMEOUT_S,
                compression=None,
                max_size=wire.MAX_FRAME_BYTES,
                close_timeout=1,
                ping_interval=_PING_INTERVAL_S,
                ping_timeout=_PING_TIMEOUT_S,
                **kwargs,
            )
        except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as err:
            _log.debug("ratequeue: cannot connect to %s: %s", url, err)
            return False
        self._ws = ws
        heartbeats: Optional["asyncio.Task[None]"] = None
        reports: Optional["asyncio.Task[None]"] = None
        writer: Optional["asyncio.Task[None]"] = None
        try:
            hello = wire.hello(
                self._api_key,
                resume=self._session_id,
                ttl_ms=self._ttl_ms_asked,
                client_name=self._client_name,
                client_version=VERSION,
            )
            await ws.send(wire.encode_frame([hello]))
            hello_resumed = self._session_id is not None
            sent_early = await self._send_early(ws)
            first = await asyncio.wait_for(self._receive(ws), _WELCOME_TIMEOUT_S)
            if first is None:
                return False
            head, rest = first[0], first[1:]
            if head["t"] == wire.NOT_LEADER:
                if head["url"] is not None:
                    self._preferred_url = head["url"]
                    self._backoff_s = _BACKOFF_MIN_S
                return False
            if head["t"] == wire.ERROR:
                return self._on_connection_error(head)
            if head["t"] != wire.WELCOME:
                _log.warning("ratequeue: %s answered a hello with message type %s", url, head["t"])
                return False
            # What went behind the hello was handled by the node, unless the session asked for is gone.
            self._ready(head, sent_early if head["resumed"] or not hello_resumed else set())
            writer = asyncio.ensure_future(self._writer(ws))
            heartbeats = asyncio.ensure_future(self._heartbeats())
            reports = asyncio.ensure_future(self._reports())
            for m in rest:
                self._on_message(m)
            while self._state == "ready":
                messages = await self._receive(ws)
                if messages is None:
                    return False
                for m in messages:
                    if m["t"] == wire.ERROR:
                        return self._on_connection_error(m)
                    if m["t"] == wire.NOT_LEADER:
                        if m["url"] is not None:
                            self._preferred_url = m["url"]
                        return False
                    self._on_message(m)
            return False
        except asyncio.TimeoutError:
            return False
        finally:
            for task in (writer, heartbeats, reports):
                if task is not None:
                    task.cancel()
            self._outbox.clear()  # what was not written is resent from _pending after the next welcome
            if self._state != "closed":
                self._ws = None
                await ws.close()

    async def _receive(self, ws: Any) -> Optional[List[wire.Message]]:
        """The next frame's messages, or None when the connection ended or the node broke the protocol."""
        try:
            data = await ws.recv()
        except websockets.exceptions.ConnectionClosed:
            return None
        if isinstance(data, str):
            _log.warning("ratequeue: the node sent a text frame; reconnecting")
            return None
        try:
            return wire.decode_frame(data)
        except wire.FrameError as err:
            _log.warning("ratequeue: the node sent a frame that breaks the protocol (%s); reconnecting", err)
            return None

    def _on_connection_error(self, m: wire.Message) -> bool:
        code, message = m["code"], m["message"]
        if code == "RQ_UNAUTHORIZED":
            self._fail_all(UnauthorizedError(f"{message}: check the api_key (RATEQUEUE_API_KEY)"))
            self._cancels.clear()
            self._abandoned.clear()
            return True
        if code == "RQ_SESSION_EXPIRED":
            self._session_id = None
        else:
            _log.warning("ratequeue: the node closed the connection: %s %s", code, message)
        return False

    async def _writer(self, ws: Any) -> None:
        wake = self._wake
        assert wake is not None
        try:
            while True:
                await wake.wait()
                wake.clear()
                while self._outbox:
                    batch = self._outbox[: wire.MAX_MESSAGES_PER_FRAME]
                    del self._outbox[: wire.MAX_MESSAGES_PER_FRAME]
                    await ws.send(wire.encode_frame(batch))
        except websockets.exceptions.ConnectionClosed:
            pass

    async def _heartbeats(self) -> None:
        period_s = max(0.1, self._ttl_ms / 1000 / _HEARTBEATS_PER_TTL)
        while True:
            await asyncio.sleep(period_s)
            self._send({"t": wire.HEARTBEAT})

    async def _watchdog(self) -> None:
        """While no node answers, fails requests that have waited longer than they may."""
        while True:
            await asyncio.sleep(_WATCHDOG_PERIOD_S)
            if self._state == "ready" or self._down_since is None:
                continue
            now = time.monotonic()
            for request_id, p in list(self._pending.items()):
                if p.has_timeout or now - max(self._down_since, p.started) < self._unavailable_after_s:
                    continue
                del self._pending[request_id]
                if p.kind == "acquire":
                    self._abandon(request_id)
                if not p.future.done():
                    p.future.set_exception(
                        UnavailableError(
                            f"no RateQueue node was reachable for {self._unavailable_after_s:g} s; tried {', '.join(self._urls)}"
                        )
                    )

    async def _send_early(self, ws: Any) -> Set[int]:
        """Sends every pending request and cancel right behind the hello (docs/protocol.md, section 6), instead
        of waiting a round trip for the welcome: after a failover the resent requests reach the new leader with
        the hello. Returns the ids sent."""
        messages = [p.msg for _, p in sorted(self._pending.items())]
        messages += [{"t": wire.CANCEL, "requestId": request_id} for request_id in sorted(self._cancels)]
        try:
            for i in range(0, len(messages), wire.MAX_MESSAGES_PER_FRAME):
                await ws.send(wire.encode_frame(messages[i : i + wire.MAX_MESSAGES_PER_FRAME]))
        except websockets.exceptions.ConnectionClosed:
            return set()  # the next receive sees the close; everything is resent on the next connection
        return {m["requestId"] for m in messages if m["t"] != wire.CANCEL}

    def _ready(self, welcome: wire.Message, sent_early: Set[int]) -> None:
        resumed = welcome["resumed"] and welcome["sessionId"] == self._session_id
        self._session_id = welcome["sessionId"]
        self._ttl_ms = welcome["ttlMs"]
        self._state = "ready"
        self._backoff_s = _BACKOFF_MIN_S
        self._down_since = None
        for node in welcome["nodes"]:
            if node["url"] is not None and node["url"] not in self._urls:
                self._urls.append(node["url"])
        if not resumed:
            # The old session's waiters were dropped and its leases released with it.
            self._cancels.clear()
            self._abandoned.clear()
        # Resend everything still pending under its original id: the cluster answers repeats with the original outcome.
        for request_id, p in sorted(self._pending.items()):
            if p.kind == "ack" and p.msg["t"] != wire.COOLDOWN and not resumed:
                del self._pending[request_id]
                if not p.future.done():
                    p.future.set_result(None)  # a release/settle of an expired session's lease: already gone
                continue
            if request_id not in sent_early:
                self._send(p.msg)
        for request_id in sorted(self._cancels):
            self._send({"t": wire.CANCEL, "requestId": request_id})

    def _clock_reading(self, granted: wire.Message) -> None:
        sent_at = granted.get("sentAt")
        if sent_at is None:
            return
        now_s = time.monotonic()
        self._log_offset.add(sent_at - now_s * 1000, now_s)
        latency_s = getattr(self._ws, "latency", 0)
        if isinstance(latency_s, (int, float)) and latency_s > 0:  # websockets' last ping round trip; 0 before the first
            self._neg_rtt_ms.add(-latency_s * 1000, now_s)

    def _on_message(self, m: wire.Message) -> None:
        t = m["t"]
        if t == wire.GRANTED:
            request_id = m["requestId"]
            self._cancels.discard(request_id)
            p = self._pending.get(request_id)
            lease_wire = m["lease"]
            if p is None or p.kind != "acquire":
                # Released at once if the caller gave up on it; otherwise a repeat of a grant already handed out.
                if request_id in self._abandoned:
                    self._abandoned.discard(request_id)
                    self._send_acked(None, {"t": wire.RELEASE, "leaseId": lease_wire["id"]}).add_done_callback(_consume)
                return
            del self._pending[request_id]
            assert self._session_id is not None
            self._clock_reading(m)
            lease = Lease(self, lease_wire["id"], lease_wire["resource"], lease_wire["load"], lease_wire["grantedAt"], self._session_id)
            if not p.future.done():
                p.future.set_result(lease)
        elif t == wire.REJECTED:
            request_id = m["requestId"]
            self._cancels.discard(request_id)
            self._abandoned.discard(request_id)
            p = self._pending.pop(request_id, None)
            if p is None or p.future.done():
                return
            if p.kind == "acquire" and m["code"] == "RQ_WOULD_WAIT":
                p.future.set_result(None)
                return
            request = None if self._session_id is None else RequestRef(self._session_id, request_id)
            p.future.set_exception(error_for(m["code"], m["message"], request))
        elif t == wire.ACK:
            p = self._pending.pop(m["requestId"], None)
            if p is not None and not p.future.done():
                p.future.set_result(None)
        # queued: nothing to do; welcome/notLeader/error are handled by the connection.


# --- The default clients ------------------------------------------------------

_defaults: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[Tuple[Tuple[str, ...], str], Client]]" = (
    weakref.WeakKeyDictionary()
)


def _default_client(url: Union[str, Sequence[str], None], api_key: Optional[str]) -> Client:
    """The default client of this event loop for these settings, created on first use."""
    urls = tuple(wire.parse_urls(url if url is not None else os.environ.get("RATEQUEUE_URL")))
    key = wire.check_api_key(api_key if api_key is not None else os.environ.get("RATEQUEUE_API_KEY"))
    clients = _defaults.setdefault(asyncio.get_running_loop(), {})
    client = clients.get((urls, key))
    if client is None or client.closed:
        client = clients[(urls, key)] = Client(list(urls), key)
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
) -> AcquireContext:
    """Waits for capacity on ``resource`` with the default client.

    ``async with acquire(...) as lease:`` holds the lease for the block;
    ``lease = await acquire(...)`` returns it. See :meth:`Client.acquire`.
    """

    async def start() -> Optional[Lease]:
        client = _default_client(url, api_key)
        return await client.acquire(resource, load=load, priority=priority, lane=lane, timeout=timeout)

    return AcquireContext(start)


async def try_acquire(
    resource: str,
    *,
    load: Optional[Load] = None,
    priority: Optional[int] = None,
    lane: Optional[str] = None,
    api_key: Optional[str] = None,
    url: Union[str, Sequence[str], None] = None,
) -> Optional[Lease]:
    """A lease if capacity is there right now, else ``None``, with the default client."""
    return await _default_client(url, api_key).try_acquire(resource, load=load, priority=priority, lane=lane)


async def report_limited(
    resource: str,
    retry_after: float,
    *,
    api_key: Optional[str] = None,
    url: Union[str, Sequence[str], None] = None,
) -> None:
    """Reports a provider 429 with the default client (``retry_after`` in seconds)."""
    await _default_client(url, api_key).report_limited(resource, retry_after)


async def close() -> None:
    """Closes this event loop's default clients (their sessions end, their leases are released)."""
    clients = _defaults.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.close()

