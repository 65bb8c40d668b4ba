from __future__ import annotations

import itertools
from typing import Any, Dict, Iterator, List

import pytest

from cluster import ADMIN_KEY, Cluster

_names = itertools.count(1)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """One real three-node cluster per test module."""
    c = Cluster()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def env(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """RATEQUEUE_URL and RATEQUEUE_API_KEY point at the cluster."""
    monkeypatch.setenv("RATEQUEUE_URL", cluster.url)
    monkeypatch.setenv("RATEQUEUE_API_KEY", ADMIN_KEY)
    return cluster


def make_resource(cluster: Cluster, limits: List[Dict[str, Any]], **extra: Any) -> str:
    """A fresh resource, so tests sharing a cluster never see each other's usage."""
    name = f"py-{next(_names)}"
    cluster.admin("PUT", f"/v1/resources/{name}", {"limits": limits, **extra})
    return name
