"""A Python worker for mixed-workers.test.ts: `tasks` concurrent loops, each
acquiring `rounds` times; prints the [granted, releasing] wall-clock intervals
(ms) it held, as JSON."""

import asyncio
import json
import sys
import time

import ratequeue.aio as rq


async def main(url: str, key: str, resource: str, tasks: int, rounds: int, hold_ms: int) -> None:
    intervals = []
    async with rq.Client(url, key) as client:

        async def loop() -> None:
            for _ in range(rounds):
                async with client.acquire(resource, timeout=60):
                    start = time.time() * 1000
                    await asyncio.sleep(hold_ms / 1000)
                    intervals.append([start, time.time() * 1000])

        await asyncio.gather(*(loop() for _ in range(tasks)))
    print(json.dumps(intervals))


asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])))
