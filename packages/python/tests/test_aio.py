"""ratequeue.aio against a real three-node cluster."""

from __future__ import annotations

import asyncio
import random
import time
from typing import List

import pytest

import ratequeue
import ratequeue.aio as rq
from cluster import ADMIN_KEY, Cluster
from conftest import make_resource

CONCURRENCY_1 = [{"kind": "concurrency", "limit": 1}]


def queued(cluster: Cluster, name: str) -> int:
    return sum(cluster.resource(name)["queued"].values())


async def wait_queued(cluster: Cluster, name: str, count: int) -> None:
    for _ in range(400):
        if await asyncio.to_thread(queued, cluster, name) == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name}: expected {count} queued, have {queued(cluster, name)}")


async def test_the_product_example_works_as_written(env: Cluster) -> None:
    name = make_resource(env, [{"kind": "load", "limit": 10_000, "windowMs": 60_000}, {"kind": "concurrency", "limit": 2}])
    prompt_token_count = 1200
    async with rq.acquire(name, load=prompt_token_count, api_key=ADMIN_KEY) as lease:
        assert lease.resource == name and lease.load == {"load": 1200}  # as the cluster charged it, per dimension
        assert env.resource(name)["leasesHeld"] == 1
        await lease.settle(700)
    # The block's end waits for the release to commit.
    info = env.resource(name)
    assert info["leasesHeld"] == 0
    assert [u["used"] for u in info["usage"] if u["kind"] == "load"] == [700]
    await rq.close()


async def test_the_default_client_is_built_once_and_reused(env: Cluster) -> None:
    name = make_resource(env, CONCURRENCY_1)
    first = await rq.acquire(name)
    await first.release()
    second = await rq.acquire(name)
    await second.release()
    assert rq._default_client(None, None) is rq._default_client(env.url, ADMIN_KEY)
    assert first._session_id == second._session_id
    await rq.close()


async def test_waiters_are_granted_in_arrival_order_then_by_priority(env: Cluster) -> None:
    name = make_resource(env, CONCURRENCY_1)
    async with rq.Client() as client:
        holder = await client.acquire(name)
        order: List[str] = []

        async def wait(tag: str, priority: int) -> None:
            async with client.acquire(name, priority=priority):
                order.append(tag)

        tasks = []
        for tag, priority in [("a", 10), ("b", 10), ("c", 10), ("urgent", 50)]:
            tasks.append(asyncio.ensure_future(wait(tag, priority)))
            await wait_queued(env, name, len(tasks))
        await holder.release()
        await asyncio.gather(*tasks)
        assert order == ["urgent", "a", "b", "c"]


async def test_a_queue_timeout_is_a_timeout_error_naming_the_request(env: Cluster) -> None:
    name = make_resource(env, CONCURRENCY_1)
    async with rq.Client() as client:
        holder = await client.acquire(name)
        with pytest.raises(ratequeue.TimeoutError) as caught:
            await client.acquire(name, timeout=0.2)
        err = caught.value
        assert err.code == "RQ_TIMEOUT" and isinstance(err, TimeoutError)
        assert err.request is not None and err.request.session_id == client.session_id and err.request.request_id == 2
        await holder.release()


async def test_cancelling_the_task_withdraws_the_request_from_the_cluster(env: Cluster) -> None:
    name = make_resource(env, CONCURRENCY_1)
    async with rq.Client() as client:
        holder = await client.acquire(name)
        waiter = asyncio.ensure_future(client.acquire(name))
        await wait_queued(env, name, 1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await wait_queued(env, name, 0)
        await holder.release()
        # The withdrawn request never took the slot: it is free for the next one.
        assert (await client.try_acquire(name)) is not None
        assert env.resource(name)["leasesHeld"] == 1


async def test_a_cancelled_acquire_racing_its_grant_is_never_left_granted(env: Cluster) -> None:
    name = make_resource(env, CONCURRENCY_1)
    rng = random.Random(12)
    granted = 0
    async with rq.Client() as client:
        for _ in range(20):
            holder = await client.acquire(name, timeout=10)  # a lease left behind would make this time out
            # The holder's release and the waiter's cancellation race: either the waiter is withdrawn,
            # or it is granted first and then released by the client, never left holding the slot.
            release = asyncio.ensure_future(holder.release())
            try:
                lease = await asyncio.wait_for(client.acquire(name), rng.uniform(0, 0.02))
                granted += 1
                await lease.release()
            except asyncio.TimeoutError:
                pass
            await release
        for _ in range(200):
            if env.resource(name)["leasesHeld"] == 0 and queued(env, name) == 0:
                break
            await asyncio.sleep(0.05)
        assert env.resource(name)["leasesHeld"] == 0 and queued(env, name) == 0
        assert (await client.try_acquire(name)) is not None


async def test_try_acquire_answers_none_instead_of_waiting(env: Cluster) -> None:
    name = make_resource(env, CONCURRENCY_1)
    async with rq.Client() as client:
        lease = await client.try_acquire(name)
        assert lease is not None
        assert (await client.try_acquire(name)) is None
        assert queued(env, name) == 0
        await lease.release()
        await lease.release()  # idempotent
        assert lease.released


async def test_each_error_has_its_class_and_code(env: Cluster) -> None:
    name = make_resource(env, [{"kind": "load", "limit": 100, "windowMs": 1000}])
    async with rq.Client() as client:
        with pytest.raises(ratequeue.UnknownResourceError) as unknown:
            await client.acquire("no-such-resource")
        assert unknown.value.code == "RQ_UNKNOWN_RESOURCE" and unknown.value.request is not None
        with pytest.raises(ratequeue.UngrantableError) as ungrantable:
            await client.acquire(name, load=101)
        assert ungrantable.value.code == "RQ_UNGRANTABLE" and ungrantable.value.request is not None
        for bad in [-1, 1.5, float("nan"), True, {"": 1}, {}]:
            with pytest.raises(ratequeue.InvalidError) as invalid:
                client.acquire(name, load=bad)  # type: ignore[arg-type]
            assert invalid.value.code == "RQ_INVALID" and invalid.value.request is None
        with pytest.raises(ratequeue.InvalidError):
            client.acquire("bad name")
        with pytest.raises(ratequeue.InvalidError):
            client.acquire(name, priority=1001)
    scoped = env.create_key(["only-this-*"])
    async with rq.Client(api_key=scoped) as client:
        with pytest.raises(ratequeue.ForbiddenError) as forbidden:
            await client.acquire(name)
        assert forbidden.value.code == "RQ_FORBIDDEN"
    async with rq.Client(api_key="not-a-key") as client:
        with pytest.raises(ratequeue.UnauthorizedError) as unauthorized:
            await client.acquire(name)
        assert unauthorized.value.code == "RQ_UNAUTHORIZED" and unauthorized.value.request is None
    async with rq.Client(url="ws://127.0.0.1:9", unavailable_after=0.5) as client:
        with pytest.raises(ratequeue.UnavailableError) as unavailable:
            await client.acquire(name)
        assert unavailable.value.code == "RQ_UNAVAILABLE" and unavailable.value.request is None


async def test_report_limited_pauses_the_resource_everywhere(env: Cluster) -> None:
    name = make_resource(env, [{"kind": "rate", "limit": 100, "windowMs": 60_000}])
    async with rq.Client() as client:
        await client.report_limited(name, retry_after=30)
        assert env.resource(name)["cooldownUntil"] is not None
        assert (await client.try_acquire(name)) is None


async def test_a_client_given_a_follower_finds_the_leader(env: Cluster) -> None:
    name = make_resource(env, CONCURRENCY_1)
    leader = env.wait_for_leader()
    follower = next(n for n in env.nodes if n.id != leader.id)
    async with rq.Client(url=follower.url) as client:
        lease = await client.acquire(name)
        await lease.release()


async def test_settle_with_dimensions_and_lease_fields(env: Cluster) -> None:
    name = make_resource(
        env,
        [
            {"kind": "load", "dimension": "input", "limit": 10_000, "windowMs": 60_000},
            {"kind": "load", "dimension": "output", "limit": 10_000, "windowMs": 60_000},
        ],
    )
    async with rq.Client() as client:
        async with client.acquire(name, load={"input": 1200, "output": 1024}) as lease:
            assert lease.load == {"input": 1200, "output": 1024}
            assert isinstance(lease.granted_at_ms, int) and lease.granted_at_ms > 0
            await lease.settle({"input": 1200, "output": 312})
        used = {u.get("dimension"): u["used"] for u in env.resource(name)["usage"]}
        assert used == {"input": 1200, "output": 312}


def _metric(cluster: Cluster, series: str) -> "float | None":
    """A sample of the leader's /metrics, read with the admin key, or None when absent."""
    import urllib.request

    leader = cluster.wait_for_leader()
    request = urllib.request.Request(f"{leader.http_url}/metrics")
    request.add_header("authorization", f"Bearer {ADMIN_KEY}")
    with urllib.request.urlopen(request, timeout=10) as res:
        text: str = res.read().decode()
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line[len(series) + 1 :])
    return None


async def _wait_metric(cluster: Cluster, series: str, value: float) -> None:
    for _ in range(200):
        if await asyncio.to_thread(_metric, cluster, series) == value:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{series}: expected {value}, have {_metric(cluster, series)}")


async def test_grant_to_send_delays_reach_the_nodes_metrics_and_a_blocked_loop_counts_in_full(env: Cluster) -> None:
    # Four grants per 300 ms: four waiters become grantable at the same tick, so their grants share one frame.
    name = make_resource(env, [{"kind": "rate", "limit": 4, "windowMs": 300, "deliveryMarginMs": 100}])
    block_s = 0.7
    async with rq.Client(delivery_report=0.2) as client:
        await asyncio.gather(*(client.acquire(name) for _ in range(4)))
        await _wait_metric(env, f'ratequeue_grant_delivery_seconds_count{{resource="{name}"}}', 4)
        assert _metric(env, f'ratequeue_delivery_margin_seconds{{resource="{name}"}}') == 0.1

        blocked = False

        async def first() -> None:
            nonlocal blocked
            await client.acquire(name)
            time.sleep(block_s)  # the worker blocks before sending, with the frame's other grants received
            blocked = True

        async def later() -> bool:
            await client.acquire(name)
            return blocked

        results = await asyncio.gather(first(), later(), later(), later())
        assert list(results[1:]) == [True, True, True]
        await _wait_metric(env, f'ratequeue_grant_delivery_seconds_count{{resource="{name}"}}', 8)
    # Lower bounds only: the three grants resolved after the block waited at least that long.
    max_s = _metric(env, f'ratequeue_grant_delivery_max_seconds{{resource="{name}"}}')
    assert max_s is not None and max_s >= block_s
    up_to_500ms = _metric(env, f'ratequeue_grant_delivery_seconds_bucket{{resource="{name}",le="0.5"}}')
    assert up_to_500ms is not None and up_to_500ms <= 8 - 3
