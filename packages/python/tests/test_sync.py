"""The synchronous API (ratequeue) against a real three-node cluster."""

from __future__ import annotations

import threading
import time
from typing import List

import pytest

import ratequeue as rq
from cluster import ADMIN_KEY, Cluster
from conftest import make_resource


def test_with_acquire_holds_the_lease_for_the_block(env: Cluster) -> None:
    name = make_resource(env, [{"kind": "concurrency", "limit": 1}])
    with rq.acquire(name, load=5) as lease:
        assert lease.resource == name and not lease.released
        assert env.resource(name)["leasesHeld"] == 1
        lease.settle(3)
    assert lease.released and env.resource(name)["leasesHeld"] == 0
    assert rq.try_acquire(name, api_key=ADMIN_KEY) is not None
    rq.close()
    # close() ended the session, and its lease with it.
    assert env.resource(name)["leasesHeld"] == 0


def test_threads_share_one_client_and_never_exceed_the_limit(env: Cluster) -> None:
    name = make_resource(env, [{"kind": "concurrency", "limit": 2}])
    holding = 0
    most = 0
    lock = threading.Lock()
    errors: List[BaseException] = []

    def worker() -> None:
        nonlocal holding, most
        try:
            for _ in range(3):
                with rq.acquire(name, timeout=30):
                    with lock:
                        holding += 1
                        most = max(most, holding)
                    time.sleep(0.01)
                    with lock:
                        holding -= 1
        except BaseException as err:  # noqa: B902 - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and most == 2
    rq.close()


def test_errors_and_try_acquire(env: Cluster) -> None:
    name = make_resource(env, [{"kind": "concurrency", "limit": 1}])
    with rq.Client() as client:
        lease = client.acquire(name)
        assert client.try_acquire(name) is None
        with pytest.raises(rq.TimeoutError) as caught:
            client.acquire(name, timeout=0.1)
        assert caught.value.code == "RQ_TIMEOUT" and caught.value.request is not None
        with pytest.raises(rq.UnknownResourceError):
            client.acquire("missing")
        lease.release()
        lease.release()
        client.report_limited(name, retry_after=60)
        assert client.try_acquire(name) is None
    with pytest.raises(rq.UnavailableError):
        client.acquire(name)  # closed


def test_the_sync_api_refuses_to_run_inside_its_own_loop() -> None:
    from ratequeue import _sync

    runner = _sync._runner()

    async def nested() -> None:
        _sync.Client(url="ws://127.0.0.1:9", api_key="k").try_acquire("r")

    with pytest.raises(RuntimeError, match="its own event loop"):
        runner.call(nested())
