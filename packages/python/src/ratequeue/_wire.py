"""The client protocol's plain MessagePack encoding (docs/protocol.md).

Pure code: building and checking client messages, encoding frames, and
decoding and validating the node's frames. No sockets, no clock.
"""

from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Mapping, Optional, Union

import msgpack

from .errors import InvalidError

PROTOCOL_VERSION = 1
MAX_FRAME_BYTES = 1024 * 1024
MAX_HELLO_FRAME_BYTES = 4096
MAX_MESSAGES_PER_FRAME = 4096

# Client message tags.
HELLO, ACQUIRE, RELEASE, SETTLE, CANCEL, COOLDOWN, HEARTBEAT, GOODBYE, REPORT = range(1, 10)
# Node message tags.
WELCOME, GRANTED, QUEUED, REJECTED, ACK, NOT_LEADER, ERROR = range(1, 8)

#: A load: a number (one dimension, ``load``) or one amount per dimension.
Load = Union[int, float, Mapping[str, Union[int, float]]]

_NAME = re.compile(r"^[A-Za-z0-9._:/-]{1,128}$")
_NODE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_URL = re.compile(r"^wss?://[\x21-\x7e]{1,2040}$")
_API_KEY = re.compile(r"^[\x21-\x7e]{1,256}$")
_MAX_UNITS = 10**12
_MAX_DIMENSIONS = 16
_MAX_PRIORITY = 1000
_MAX_SECONDS = 86_400.0
_U32 = 0xFFFFFFFF

ERROR_CODES = frozenset(
    {
        "RQ_TIMEOUT",
        "RQ_CANCELLED",
        "RQ_UNKNOWN_RESOURCE",
        "RQ_UNGRANTABLE",
        "RQ_INVALID",
        "RQ_UNAUTHORIZED",
        "RQ_FORBIDDEN",
        "RQ_UNAVAILABLE",
        "RQ_WOULD_WAIT",
        "RQ_SESSION_EXPIRED",
        "RQ_PROTOCOL",
        "RQ_FRAME_TOO_LARGE",
        "RQ_PROTOCOL_VERSION",
    }
)

Message = Dict[str, Any]

#: Delivery reports (docs/protocol.md, section 8a): the histogram's upper bounds in ms, one count per bound and
#: one above the last (the node and every client agree on them; packages/protocol/tables.json holds them too).
DELIVERY_BUCKETS_MS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
#: Longest delay one grant reports (a day): longer ones are clamped to it.
MAX_DELIVERY_MS = 86_400_000
#: Most grants one report may cover.
MAX_REPORT_COUNT = 100_000_000


def delivery_bucket(ms: int) -> int:
    """The histogram bucket of a delay: the first bound it does not exceed, or the last bucket."""
    for i, bound in enumerate(DELIVERY_BUCKETS_MS):
        if ms <= bound:
            return i
    return len(DELIVERY_BUCKETS_MS)


class DeliveryTally:
    """The grant-to-send delays observed on one resource since the last report."""

    def __init__(self) -> None:
        self.count = 0
        self.sum_ms = 0
        self.max_ms = 0
        self.buckets = [0] * (len(DELIVERY_BUCKETS_MS) + 1)

    def add(self, delay_ms: int) -> None:
        if self.count >= MAX_REPORT_COUNT:
            return
        self.count += 1
        self.sum_ms += delay_ms
        self.max_ms = max(self.max_ms, delay_ms)
        self.buckets[delivery_bucket(delay_ms)] += 1

    def report(self, request_id: int, resource: str) -> Message:
        return {
            "t": REPORT,
            "requestId": request_id,
            "resource": resource,
            "count": self.count,
            "sumMs": self.sum_ms,
            "maxMs": self.max_ms,
            "buckets": list(self.buckets),
        }


# --- Arguments --------------------------------------------------------------


def check_resource(resource: object) -> str:
    if not isinstance(resource, str) or not _NAME.match(resource):
        raise InvalidError(f"resource {resource!r} is not a resource name (1-128 of A-Z a-z 0-9 . _ : / -)")
    return resource


def _is_units(n: object) -> bool:
    # Loads are whole units (tokens), as the cluster counts them exactly; bool is not a number here.
    if isinstance(n, bool) or not isinstance(n, (int, float)):
        return False
    return math.isfinite(n) and n == int(n) and 0 <= n <= _MAX_UNITS


def check_load(load: object, what: str) -> Load:
    if isinstance(load, (int, float)) and not isinstance(load, bool):
        if not _is_units(load):
            raise InvalidError(f"{what} must be a whole number from 0 to 1e12, got {load!r}")
        return int(load)
    if not isinstance(load, Mapping):
        raise InvalidError(f"{what} must be a number or a mapping of dimension -> amount, e.g. {{'input': 1200, 'output': 1024}}")
    if not 1 <= len(load) <= _MAX_DIMENSIONS:
        raise InvalidError(f"{what} must name 1 to {_MAX_DIMENSIONS} dimensions")
    out: Dict[str, int] = {}
    for dim, n in load.items():
        if not isinstance(dim, str) or not _NAME.match(dim) or dim == "__proto__":
            raise InvalidError(f"{what}: {dim!r} is not a dimension name (1-128 of A-Z a-z 0-9 . _ : / -)")
        if not _is_units(n):
            raise InvalidError(f"{what}[{dim!r}] must be a whole number from 0 to 1e12, got {n!r}")
        out[dim] = int(n)
    return out


def check_priority(priority: object) -> int:
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= _MAX_PRIORITY:
        raise InvalidError(f"priority must be an integer from 0 to {_MAX_PRIORITY} (default 10, higher first), got {priority!r}")
    return priority


def check_lane(lane: object) -> str:
    if not isinstance(lane, str) or not _NAME.match(lane):
        raise InvalidError(f"lane {lane!r} is not a lane name (1-128 of A-Z a-z 0-9 . _ : / -)")
    return lane


def seconds_to_ms(seconds: object, what: str) -> int:
    """A duration in seconds (int or float) as whole ms, rounded up."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (0 <= seconds <= _MAX_SECONDS):
        raise InvalidError(f"{what} must be a number of seconds from 0 to {_MAX_SECONDS:.0f}, got {seconds!r}")
    return math.ceil(seconds * 1000)


def check_api_key(api_key: object) -> str:
    if not isinstance(api_key, str) or not _API_KEY.match(api_key):
        from .errors import UnauthorizedError

        raise UnauthorizedError("api_key is missing or malformed: pass api_key=... or set RATEQUEUE_API_KEY")
    return api_key


def parse_urls(url: object) -> List[str]:
    """Node URLs from a comma-separated string or a sequence of strings."""
    if isinstance(url, str):
        parts = url.split(",")
    elif isinstance(url, (list, tuple)):
        parts = [u for u in url if isinstance(u, str)]
        if len(parts) != len(url):
            raise InvalidError("url must be a string or a list of strings")
    else:
        raise InvalidError("url is missing: pass url=... or set RATEQUEUE_URL (ws://host:port, comma-separated)")
    urls = [p.strip().rstrip("/") for p in parts if p.strip() != ""]
    if not urls:
        raise InvalidError("url must name at least one node (ws://host:port, comma-separated)")
    for u in urls:
        if not re.match(r"^wss?://[^/\s]+$", u):
            raise InvalidError(f"{u!r} is not a node URL like ws://127.0.0.1:7401")
    return urls


# --- Encoding ---------------------------------------------------------------


def _num(n: Union[int, float]) -> Union[int, float]:
    """Integers above 32 bits travel as float64 (a node refuses 64-bit MessagePack integers)."""
    return float(n) if isinstance(n, int) and not -0x80000000 <= n <= _U32 else n


def load_to_wire(load: Load) -> Any:
    if isinstance(load, Mapping):
        pairs: List[Any] = []
        for dim, n in load.items():
            pairs += [dim, _num(n)]
        return pairs
    return _num(load)


def hello(api_key: str, *, resume: Optional[str], ttl_ms: Optional[int], client_name: str, client_version: str) -> Message:
    m: Message = {
        "t": HELLO,
        "protocolVersion": PROTOCOL_VERSION,
        "apiKey": api_key,
        "clientName": client_name,
        "clientVersion": client_version,
        "encoding": "plain",
    }
    if resume is not None:
        m["resume"] = resume
    if ttl_ms is not None:
        m["ttlMs"] = ttl_ms
    return m


def encode_frame(messages: List[Message]) -> bytes:
    if not 1 <= len(messages) <= MAX_MESSAGES_PER_FRAME:
        raise ValueError(f"a frame carries 1-{MAX_MESSAGES_PER_FRAME} messages, not {len(messages)}")
    data: bytes = msgpack.packb(
        [{k: (_num(v) if isinstance(v, int) and not isinstance(v, bool) else v) for k, v in m.items()} for m in messages],
        use_bin_type=True,
    )
    return data


# --- Decoding ---------------------------------------------------------------


class FrameError(Exception):
    """A node frame that does not follow the protocol (the client drops the connection)."""


def _int(m: Message, field: str, lo: int = 0, hi: int = 2**53 - 1) -> int:
    v = m.get(field)
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise FrameError(f"{field}: expected an integer in [{lo}, {hi}], got {v!r}")
    return v


def _str(m: Message, field: str, pattern: "re.Pattern[str]") -> str:
    v = m.get(field)
    if not isinstance(v, str) or not pattern.match(v):
        raise FrameError(f"{field}: unexpected value {v!r}")
    return v


def _nullable(m: Message, field: str, pattern: "re.Pattern[str]") -> Optional[str]:
    return None if m.get(field) is None else _str(m, field, pattern)


def _text(m: Message, field: str) -> str:
    v = m.get(field)
    if not isinstance(v, str) or len(v) > 1024:
        raise FrameError(f"{field}: expected a message of at most 1024 chars")
    return v


def _code(m: Message) -> str:
    v = m.get("code")
    if v not in ERROR_CODES:
        raise FrameError(f"code: unknown error code {v!r}")
    return str(v)


def _amount(v: object, field: str) -> Union[int, float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 2**53 - 1:
        raise FrameError(f"{field}: expected a finite amount, got {v!r}")
    return int(v) if float(v).is_integer() else v


def load_from_wire(v: object, field: str = "load") -> Load:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return _amount(v, field)
    if not isinstance(v, list) or not v or len(v) % 2 or len(v) > 2 * _MAX_DIMENSIONS:
        raise FrameError(f"{field}: expected a number or 1-16 dimension/amount pairs")
    load: Dict[str, Union[int, float]] = {}
    for i in range(0, len(v), 2):
        name = v[i]
        if not isinstance(name, str) or not _NAME.match(name) or name in load:
            raise FrameError(f"{field}[{i}]: bad or repeated dimension name {name!r}")
        load[name] = _amount(v[i + 1], f"{field}.{name}")
    return load


def _read(m: Message) -> Message:
    """Validates one node message and returns it with clean values."""
    t = m.get("t")
    if t == WELCOME:
        if m.get("protocolVersion") != PROTOCOL_VERSION:
            raise FrameError(f"protocolVersion {m.get('protocolVersion')!r} is not {PROTOCOL_VERSION}")
        nodes = m.get("nodes")
        if not isinstance(nodes, list) or len(nodes) > 64:
            raise FrameError("nodes: expected a list of at most 64 nodes")
        clean_nodes = []
        for n in nodes:
            if not isinstance(n, dict):
                raise FrameError("nodes: expected {id, url} records")
            clean_nodes.append({"id": _str(n, "id", _NODE_ID), "url": _nullable(n, "url", _URL)})
        resumed = m.get("resumed")
        if not isinstance(resumed, bool):
            raise FrameError("resumed: expected a boolean")
        return {
            "t": t,
            "sessionId": _str(m, "sessionId", _NAME),
            "ttlMs": _int(m, "ttlMs", 1, 86_400_000),
            "nodeId": _str(m, "nodeId", _NODE_ID),
            "leader": _nullable(m, "leader", _NODE_ID),
            "nodes": clean_nodes,
            "resumed": resumed,
        }
    if t == GRANTED:
        lease = m.get("lease")
        if not isinstance(lease, dict):
            raise FrameError("lease: expected a record")
        granted: Message = {
            "t": t,
            "requestId": _int(m, "requestId", 1),
            "lease": {
                "id": _str(lease, "id", _NAME),
                "resource": _str(lease, "resource", _NAME),
                "load": load_from_wire(lease.get("load"), "lease.load"),
                "grantedAt": _int(lease, "grantedAt"),
            },
        }
        if m.get("sentAt") is not None:
            granted["sentAt"] = _int(m, "sentAt")
        return granted
    if t in (QUEUED, ACK):
        return {"t": t, "requestId": _int(m, "requestId", 1)}
    if t == REJECTED:
        return {"t": t, "requestId": _int(m, "requestId", 1), "code": _code(m), "message": _text(m, "message")}
    if t == NOT_LEADER:
        return {"t": t, "leader": _nullable(m, "leader", _NODE_ID), "url": _nullable(m, "url", _URL)}
    if t == ERROR:
        return {"t": t, "code": _code(m), "message": _text(m, "message")}
    raise FrameError(f"unknown node message type {t!r}")


def decode_frame(data: bytes) -> List[Message]:
    """Decodes and validates one node frame. Raises FrameError."""
    if len(data) > MAX_FRAME_BYTES:
        raise FrameError(f"frame of {len(data)} bytes exceeds {MAX_FRAME_BYTES}")
    try:
        value = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as err:  # msgpack raises several types for bad input
        raise FrameError(f"not a plain MessagePack frame: {err}") from None
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_MESSAGES_PER_FRAME:
        raise FrameError("a frame must be an array of 1-4096 messages")
    out = []
    for i, m in enumerate(value):
        if not isinstance(m, dict):
            raise FrameError(f"messages[{i}]: expected a message record")
        try:
            out.append(_read(m))
        except FrameError as err:
            raise FrameError(f"messages[{i}].{err}") from None
    return out
