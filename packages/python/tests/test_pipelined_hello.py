"""The client sends its pending requests right behind its hello (docs/protocol.md, section 6), against a scripted
node that holds its welcome back, so the order on the wire is what the test decides."""

from __future__ import annotations

import asyncio
from typing import Any, List

import msgpack
import websockets.server

import ratequeue.aio as rq
from ratequeue import _wire as wire


async def test_pending_requests_go_behind_the_hello_and_are_not_resent_after_the_welcome() -> None:
    received: List[Any] = []
    welcome_now = asyncio.Event()

    async def node(ws: Any) -> None:
        hello = msgpack.unpackb(await ws.recv())
        received.extend(hello)
        early = msgpack.unpackb(await asyncio.wait_for(ws.recv(), 5))
        received.extend(early)  # arrived while the hello is unanswered
        await welcome_now.wait()
        await ws.send(
            wire.encode_frame(
                [{"t": wire.WELCOME, "protocolVersion": 1, "sessionId": "s1", "ttlMs": 10_000, "nodeId": "n1", "leader": "n1", "nodes": [], "resumed": False}]
            )
        )
        async for data in ws:
            for m in msgpack.unpackb(data):
                received.append(m)
                if m["t"] == wire.ACQUIRE:
                    lease = {"id": "1", "resource": m["resource"], "load": 0, "grantedAt": 1}
                    await ws.send(wire.encode_frame([{"t": wire.GRANTED, "requestId": m["requestId"], "lease": lease}]))

    async with websockets.server.serve(node, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with rq.Client(f"ws://127.0.0.1:{port}", "k" * 20) as client:
            acquiring = asyncio.ensure_future(client.acquire("r"))
            for _ in range(500):
                if len(received) >= 2:
                    break
                await asyncio.sleep(0.01)
            assert [m["t"] for m in received] == [wire.HELLO, wire.ACQUIRE]
            welcome_now.set()
            # The node never answered the early acquire: the client does not send it again after the welcome.
            await asyncio.sleep(0.2)
            assert [m["t"] for m in received].count(wire.ACQUIRE) == 1
            acquiring.cancel()
