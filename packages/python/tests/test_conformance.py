"""The SDK conformance suite (test/conformance/scenarios.json), run by the
Python SDK against a real three-node cluster. test/conformance/node-sdk.test.ts
runs the same list with the Node SDK."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections import defaultdict
from typing import Any, Awaitable, Callable, Dict, List, Optional, Set, Tuple

import pytest

import ratequeue
import ratequeue.aio as rq
from cluster import ADMIN_KEY, REPO, Cluster
from conftest import make_resource

SCENARIOS: List[Dict[str, Any]] = json.loads((REPO / "test" / "conformance" / "scenarios.json").read_text())["scenarios"]

Scenario = Dict[str, Any]
Runner = Callable[[Cluster, Scenario], Awaitable[None]]
RUNNERS: Dict[str, Runner] = {}


def runs(scenario_id: str) -> Callable[[Runner], Runner]:
    def register(fn: Runner) -> Runner:
        RUNNERS[scenario_id] = fn
        return fn

    return register


def resource_for(cluster: Cluster, s: Scenario) -> str:
    return "no-such-resource" if s["limits"] is None else make_resource(cluster, s["limits"])


async def queued(cluster: Cluster, name: str) -> int:
    info = await asyncio.to_thread(cluster.resource, name)
    return int(sum(info["queued"].values()))


async def wait_queued(cluster: Cluster, name: str, count: int) -> None:
    for _ in range(400):
        if await queued(cluster, name) == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name}: expected {count} queued")


def client(cluster: Cluster, **kwargs: Any) -> rq.Client:
    return rq.Client(url=kwargs.pop("url", cluster.url), api_key=kwargs.pop("api_key", ADMIN_KEY), **kwargs)


async def expect_error(s: Scenario, call: Callable[[], Awaitable[Any]], c: Optional[rq.Client] = None) -> None:
    with pytest.raises(ratequeue.RateQueueError) as caught:
        await call()
    err = caught.value
    assert err.code == s["expect"]["code"], err
    if "request" in s["expect"]:
        assert (err.request is not None) == s["expect"]["request"], err
        if err.request is not None and c is not None:
            assert err.request.session_id == c.session_id and err.request.request_id >= 1


@runs("grant")
async def grant(cluster: Cluster, s: Scenario) -> None:
    name = resource_for(cluster, s)
    async with client(cluster) as c:
        lease = await c.acquire(name, load=s["load"])
        assert lease.resource == name and lease.load == s["expect"]["leaseLoad"]
        assert cluster.resource(name)["leasesHeld"] == s["expect"]["leasesHeld"]


async def order_of_waiters(cluster: Cluster, s: Scenario) -> List[str]:
    name = resource_for(cluster, s)
    order: List[str] = []
    async with client(cluster) as c:
        holder = await c.acquire(name)

        async def wait(tag: str, priority: Optional[int]) -> None:
            async with c.acquire(name, priority=priority):
                order.append(tag)

        tasks = []
        for w in s["waiters"]:
            tasks.append(asyncio.ensure_future(wait(w["tag"], w.get("priority"))))
            await wait_queued(cluster, name, len(tasks))
        await holder.release()
        await asyncio.gather(*tasks)
    return order


@runs("fifo")
async def fifo(cluster: Cluster, s: Scenario) -> None:
    assert await order_of_waiters(cluster, s) == s["expect"]["order"]


@runs("priority")
async def priority(cluster: Cluster, s: Scenario) -> None:
    assert await order_of_waiters(cluster, s) == s["expect"]["order"]


@runs("timeout")
async def timeout(cluster: Cluster, s: Scenario) -> None:
    name = resource_for(cluster, s)
    async with client(cluster) as c:
        await c.acquire(name)
        await expect_error(s, lambda: c.acquire(name, timeout=s["timeoutMs"] / 1000), c)
        assert await queued(cluster, name) == s["expect"]["queued"]


@runs("cancel")
async def cancel(cluster: Cluster, s: Scenario) -> None:
    name = resource_for(cluster, s)
    async with client(cluster) as c:
        holder = await c.acquire(name)
        waiter = asyncio.ensure_future(c.acquire(name))
        await wait_queued(cluster, name, 1)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await wait_queued(cluster, name, s["expect"]["queued"])
        await holder.release()
        assert (await c.try_acquire(name)) is not None


@runs("try-refused")
async def try_refused(cluster: Cluster, s: Scenario) -> None:
    name = resource_for(cluster, s)
    async with client(cluster) as c:
        await c.acquire(name)
        assert (await c.try_acquire(name)) is s["expect"]["try"]
        assert await queued(cluster, name) == s["expect"]["queued"]


@runs("settle")
async def settle(cluster: Cluster, s: Scenario) -> None:
    name = resource_for(cluster, s)
    async with client(cluster) as c:
        async with c.acquire(name, load=s["load"]) as lease:
            await lease.settle(s["actual"])
        assert [u["used"] for u in cluster.resource(name)["usage"]] == [s["expect"]["used"]]


@runs("release-idempotent")
async def release_idempotent(cluster: Cluster, s: Scenario) -> None:
    name = resource_for(cluster, s)
    async with client(cluster) as c:
        lease = await c.acquire(name)
        await lease.release()
        await lease.release()
        assert cluster.resource(name)["leasesHeld"] == s["expect"]["leasesHeld"]


@runs("cooldown")
async def cooldown(cluster: Cluster, s: Scenario) -> None:
    name = resource_for(cluster, s)
    async with client(cluster) as c:
        await c.report_limited(name, retry_after=s["retryAfterMs"] / 1000)
        assert (await c.try_acquire(name)) is s["expect"]["try"]
        assert (cluster.resource(name)["cooldownUntil"] is not None) == s["expect"]["cooldown"]


@runs("delivery-report")
async def delivery_report(cluster: Cluster, s: Scenario) -> None:
    name = resource_for(cluster, s)
    # A report period longer than the test: only closing the client sends the report.
    async with rq.Client(cluster.url, ADMIN_KEY, delivery_report=600) as c:
        for _ in range(s["requests"]):
            async with c.acquire(name):
                pass
    count = f'ratequeue_grant_delivery_seconds_count{{resource="{name}"}}'
    for _ in range(200):
        if await asyncio.to_thread(_metric, cluster, count) == s["expect"]["count"]:
            break
        await asyncio.sleep(0.05)
    assert _metric(cluster, count) == s["expect"]["count"]
    assert _metric(cluster, f'ratequeue_grant_delivery_seconds_bucket{{resource="{name}",le="+Inf"}}') == s["expect"]["count"]


def _metric(cluster: Cluster, series: str) -> Optional[float]:
    """A sample of the leader's /metrics (read with the admin key), or None when absent."""
    leader = cluster.wait_for_leader()
    request = urllib.request.Request(f"{leader.http_url}/metrics")
    request.add_header("authorization", f"Bearer {ADMIN_KEY}")
    with urllib.request.urlopen(request, timeout=10) as res:
        text: str = res.read().decode()
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line[len(series) + 1 :])
    return None


@runs("error-unknown-resource")
async def error_unknown_resource(cluster: Cluster, s: Scenario) -> None:
    async with client(cluster) as c:
        await expect_error(s, lambda: c.acquire(resource_for(cluster, s)), c)


@runs("error-ungrantable")
async def error_ungrantable(cluster: Cluster, s: Scenario) -> None:
    name = resource_for(cluster, s)
    async with client(cluster) as c:
        await expect_error(s, lambda: c.acquire(name, load=s["load"]), c)


@runs("error-invalid")
async def error_invalid(cluster: Cluster, s: Scenario) -> None:
    name = resource_for(cluster, s)
    async with client(cluster) as c:

        async def call() -> None:
            await c.acquire(name, load=s["load"])

        await expect_error(s, call)


@runs("error-forbidden")
async def error_forbidden(cluster: Cluster, s: Scenario) -> None:
    name = resource_for(cluster, s)
    key = await asyncio.to_thread(cluster.create_key, s["keyScope"])
    async with client(cluster, api_key=key) as c:
        await expect_error(s, lambda: c.acquire(name), c)


@runs("error-unauthorized")
async def error_unauthorized(cluster: Cluster, s: Scenario) -> None:
    name = resource_for(cluster, s)
    async with client(cluster, api_key=s["apiKey"]) as c:
        await expect_error(s, lambda: c.acquire(name))


@runs("error-unavailable")
async def error_unavailable(cluster: Cluster, s: Scenario) -> None:
    async with client(cluster, url=s["url"], unavailable_after=s["unavailableAfterMs"] / 1000) as c:
        await expect_error(s, lambda: c.acquire("anything"))


def grant_history(node_http_url: str) -> List[Dict[str, Any]]:
    request = urllib.request.Request(f"{node_http_url}/v1/debug/grants?limit=100000")
    request.add_header("authorization", f"Bearer {ADMIN_KEY}")
    with urllib.request.urlopen(request, timeout=10) as res:
        records: List[Dict[str, Any]] = json.loads(res.read())["records"]
        return records


@runs("failover")
async def failover(_: Cluster, s: Scenario) -> None:
    cluster = await asyncio.to_thread(Cluster)
    try:
        await failover_on(cluster, s)
    finally:
        await asyncio.to_thread(cluster.stop)


async def failover_on(cluster: Cluster, s: Scenario) -> None:
    name = resource_for(cluster, s)
    held = 0
    max_held = 0
    granted = 0
    kill_now = asyncio.Event()
    sessions: Set[str] = set()
    async with client(cluster, unavailable_after=60) as c:

        async def one() -> Tuple[str, str]:
            nonlocal held, max_held, granted
            try:
                async with c.acquire(name, timeout=s["timeoutMs"] / 1000) as lease:
                    # Counted after the grant and before the release is sent: a conservative view of what is held.
                    held += 1
                    max_held = max(max_held, held)
                    granted += 1
                    sessions.add(lease._session_id)
                    if granted == s["killAfterGrants"]:
                        kill_now.set()
                    await asyncio.sleep(s["holdMs"] / 1000)
                    held -= 1
                return ("granted", lease.id)
            except ratequeue.RateQueueError as err:
                assert err.code.startswith("RQ_")
                return ("failed", err.code)

        tasks = [asyncio.ensure_future(one()) for _ in range(s["requests"])]
        await kill_now.wait()
        old = await asyncio.to_thread(cluster.wait_for_leader)
        await asyncio.to_thread(old.kill)
        results = await asyncio.gather(*tasks)
        leader = await asyncio.to_thread(cluster.wait_for_leader, 30.0, old.id)
        assert max_held <= s["expect"]["maxHeld"]
        ok = [lease_id for outcome, lease_id in results if outcome == "granted"]
        failed = [code for outcome, code in results if outcome == "failed"]
        print(f"failover: {len(ok)} granted, failed {failed}, killed {old.id}, new leader {leader.id}, sessions {len(sessions)}")
        assert len(ok) == s["expect"]["granted"], failed
        # Every request the SDK saw granted was granted exactly once in the committed history.
        history = await asyncio.to_thread(grant_history, leader.http_url)
        leases_of: Dict[Tuple[str, str], Set[Any]] = defaultdict(set)
        for record in history:
            e = record["effect"]
            if e["type"] == "granted" and e["resource"] == name:
                leases_of[(e["sessionId"], e["requestId"])].add(str(e["leaseId"]))
        assert all(len(ids) == 1 for ids in leases_of.values()), leases_of
        assert {s_id for s_id, _ in leases_of} <= sessions | {c.session_id}
        assert len(leases_of) == len(ok) and sorted(ok) == sorted(next(iter(ids)) for ids in leases_of.values())
        info = await asyncio.to_thread(cluster.resource, name)
        assert info["leasesHeld"] == s["expect"]["leasesHeldAtEnd"]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s["id"] for s in SCENARIOS])
async def test_conformance(cluster: Cluster, scenario: Scenario) -> None:
    runner = RUNNERS.get(scenario["id"])
    assert runner is not None, f"the Python SDK has no runner for conformance scenario {scenario['id']!r}"
    await runner(cluster, scenario)
