"""N asyncio workers share one OpenAI-style quota through RateQueue.

Each worker builds a chat request, asks RateQueue for ``prompt tokens +
max_tokens`` (what OpenAI counts against TPM when the request arrives), sends
it with ``httpx`` once granted, and settles the lease with the
``usage.total_tokens`` of the reply. A 429 (which RateQueue is there to
prevent) is reported with ``report_limited`` and the provider's
``retry-after``, so the whole fleet pauses, and the request is retried.

Run it against a cluster and a provider of your own::

    RATEQUEUE_URL=ws://127.0.0.1:7401 RATEQUEUE_API_KEY=<worker key> \\
        python3 examples/python/openai_workers.py --provider-url http://127.0.0.1:8080 --resource openai-sim

or let ``npx tsx --conditions=source examples/python-workers.ts`` start a
local cluster, the provider simulator, the resource and a worker key, and run
this program against them. ``--help`` lists the options.

Prompt tokens: the simulator counts them with cl100k_base. This example
reserves an upper bound that needs no tokenizer (a token is at least one
UTF-8 byte), then settles with the provider's exact count, so the
reservation is never short and the overestimate is returned at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

import httpx

import ratequeue
import ratequeue.aio as rq

MODEL = "gpt-4o-mini"

TOPICS = [
    "the history of the printing press",
    "how a token bucket rate limiter works",
    "why Raft needs a majority to commit",
    "the water cycle",
    "how to brew a good cup of tea",
    "what makes a good code review",
]
ASKS = [
    "Explain it in plain words.",
    "Give three examples.",
    "Keep it short and precise.",
    "Mention one common misconception.",
    "Add a one-line summary at the end.",
]


@dataclass
class Figures:
    """What the workers saw, summed over all of them."""

    requests: int = 0
    limited: int = 0
    cooldowns_reported: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def random_messages(rng: random.Random) -> List[Dict[str, str]]:
    """A varied chat prompt, reproducible from ``rng``."""
    asks = " ".join(rng.choice(ASKS) for _ in range(rng.randint(1, 8)))
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": f"Tell me about {rng.choice(TOPICS)}. {asks}"},
    ]


def prompt_token_bound(messages: List[Dict[str, str]]) -> int:
    """At least the prompt tokens of OpenAI's chat format (3 per message plus
    role and content, 3 to prime the reply), with no tokenizer: no token is
    shorter than one UTF-8 byte."""
    total = 3
    for m in messages:
        total += 3 + len(m["role"].encode()) + len(m["content"].encode())
    return total


def retry_after_s(response: httpx.Response) -> float:
    try:
        seconds = float(response.headers.get("retry-after", "1"))
    except ValueError:
        return 1.0
    return seconds if seconds > 0 else 1.0


async def worker(
    http: httpx.AsyncClient,
    client: rq.Client,
    resource: str,
    deadline: float,
    rng: random.Random,
    max_tokens_range: Sequence[int],
    figures: Figures,
) -> None:
    """Ask, send, settle, until ``deadline`` (a ``time.monotonic()`` value)."""
    while time.monotonic() < deadline:
        messages = random_messages(rng)
        max_tokens = rng.randint(max_tokens_range[0], max_tokens_range[1])
        body = {"model": MODEL, "messages": messages, "max_tokens": max_tokens}
        reserve = prompt_token_bound(messages) + max_tokens
        done = False
        while not done:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            try:
                async with client.acquire(resource, load=reserve, timeout=remaining) as lease:
                    response = await http.post("/v1/chat/completions", json=body)
                    if response.status_code == 429:
                        figures.limited += 1
                        await lease.settle(0)  # a 429 costs nothing at the provider
                        await client.report_limited(resource, retry_after_s(response))
                        figures.cooldowns_reported += 1
                        continue
                    response.raise_for_status()
                    usage = response.json()["usage"]
                    await lease.settle(int(usage["total_tokens"]))
            except ratequeue.TimeoutError:
                return  # the run ended while this worker waited in line
            figures.requests += 1
            figures.prompt_tokens += int(usage["prompt_tokens"])
            figures.completion_tokens += int(usage["completion_tokens"])
            done = True


async def run(
    provider_url: str,
    resource: str,
    workers: int,
    duration_s: float,
    seed: int,
    max_tokens_range: Sequence[int],
    url: Optional[str] = None,
    api_key: Optional[str] = None,
) -> Figures:
    figures = Figures()
    deadline = time.monotonic() + duration_s
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=provider_url, limits=limits, timeout=60.0) as http:
        async with rq.Client(url, api_key, client_name="python-openai-workers") as client:
            await asyncio.gather(
                *(
                    worker(http, client, resource, deadline, random.Random(seed * 1000 + i), max_tokens_range, figures)
                    for i in range(workers)
                )
            )
    return figures


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="N asyncio workers share one OpenAI-style quota through RateQueue "
        "(RATEQUEUE_URL and RATEQUEUE_API_KEY name the cluster and a worker key)."
    )
    parser.add_argument("--provider-url", required=True, help="the OpenAI-style API, e.g. http://127.0.0.1:8080")
    parser.add_argument("--resource", required=True, help="the RateQueue resource that holds the provider's limits")
    parser.add_argument("--workers", type=int, default=16, help="concurrent workers (default 16)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds to run (default 15)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the prompts (default 1)")
    parser.add_argument("--max-tokens", type=int, nargs=2, default=[64, 512], metavar=("MIN", "MAX"))
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.duration <= 0 or not 1 <= args.max_tokens[0] <= args.max_tokens[1]:
        parser.error("--workers must be >= 1, --duration > 0 and 1 <= MIN <= MAX for --max-tokens")
    started = time.monotonic()
    figures = asyncio.run(run(args.provider_url, args.resource, args.workers, args.duration, args.seed, args.max_tokens))
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps({**asdict(figures), "elapsed_s": elapsed}))
    else:
        tokens = figures.prompt_tokens + figures.completion_tokens
        print(f"requests done   {figures.requests}")
        print(f"429s received   {figures.limited} (cooldowns reported: {figures.cooldowns_reported})")
        print(f"tokens          {figures.prompt_tokens} prompt + {figures.completion_tokens} completion = {tokens}")
        print(f"elapsed         {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
