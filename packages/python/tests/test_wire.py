"""The plain encoding, byte for byte as docs/protocol.md shows it."""

from __future__ import annotations

import msgpack
import pytest

from ratequeue import _wire as wire


def test_the_acquire_example_of_the_protocol_document() -> None:
    frame = wire.encode_frame([{"t": 2, "requestId": 7, "resource": "gpt", "load": wire.load_to_wire({"input": 1200, "output": 1024})}])
    assert frame.hex(" ") == (
        "91 84 a1 74 02 a9 72 65 71 75 65 73 74 49 64 07 a8 72 65 73 6f 75 72 63 65 a3 67 70 74 "
        "a4 6c 6f 61 64 94 a5 69 6e 70 75 74 cd 04 b0 a6 6f 75 74 70 75 74 cd 04 00"
    )


def test_the_grant_example_of_the_protocol_document() -> None:
    frame = bytes.fromhex(
        "91 de 00 04 a1 74 02 a9 72 65 71 75 65 73 74 49 64 07 a5 6c 65 61 73 65 de 00 04 a2 69 64 a1 33"
        " a8 72 65 73 6f 75 72 63 65 a3 67 70 74 a4 6c 6f 61 64 cd 04 b0"
        " a9 67 72 61 6e 74 65 64 41 74 cb 42 79 39 6b 0f 67 b0 00"
        " a6 73 65 6e 74 41 74 cb 42 79 39 6b 0f 68 c0 00"
    )
    assert wire.decode_frame(frame) == [
        {
            "t": 2,
            "requestId": 7,
            "lease": {"id": "3", "resource": "gpt", "load": 1200, "grantedAt": 1733400000123},
            "sentAt": 1733400000140,
        }
    ]


def test_integers_above_32_bits_travel_as_float64() -> None:
    frame = wire.encode_frame([{"t": 2, "requestId": 2**40, "resource": "r", "load": wire.load_to_wire(10**12)}])
    assert msgpack.unpackb(frame) == [{"t": 2, "requestId": 2.0**40, "resource": "r", "load": 1e12}]
    assert b"\xcf" not in frame and b"\xd3" not in frame


@pytest.mark.parametrize(
    "frame, says",
    [
        (msgpack.packb({"t": 2}), "array of 1-4096"),
        (msgpack.packb([{"t": 99}]), "unknown node message type 99"),
        (msgpack.packb([{"t": 4, "requestId": 1, "code": "RQ_NOPE", "message": ""}]), "unknown error code"),
        (msgpack.packb([{"t": 2, "requestId": 1, "lease": {"id": "1", "resource": "r", "load": -1, "grantedAt": 5}}]), "lease.load"),
        (msgpack.packb([{"t": 3, "requestId": 0}]), "requestId"),
        (bytes([0x91, 0xD4, 0x72, 0x40]), "expected a message record"),
        (b"\x91", "not a plain MessagePack frame"),
    ],
)
def test_a_frame_that_breaks_the_protocol_is_refused(frame: bytes, says: str) -> None:
    with pytest.raises(wire.FrameError, match=says):
        wire.decode_frame(frame)
