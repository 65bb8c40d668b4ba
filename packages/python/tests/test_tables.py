"""The Python client's codes and bounds agree with the protocol package's
tables (packages/protocol/tables.json, generated from codes.ts and bounds.ts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import ratequeue
from ratequeue import _wire as wire
from ratequeue import errors

TABLES: Dict[str, Any] = json.loads((Path(__file__).resolve().parents[2] / "protocol" / "tables.json").read_text())


def test_the_wire_codes_are_the_protocol_table() -> None:
    assert wire.ERROR_CODES == frozenset(TABLES["errorCodes"])


def test_every_error_class_carries_a_wire_code_and_each_code_one_class() -> None:
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.RateQueueError) and c is not errors.RateQueueError]
    codes = [c.code for c in classes]
    assert len(codes) == len(set(codes)) == 8
    assert set(codes) <= set(TABLES["errorCodes"])
    for cls in classes:
        assert getattr(ratequeue, cls.__name__) is cls
        assert isinstance(errors.error_for(cls.code, "m"), cls)


def test_the_argument_checks_use_the_protocol_bounds() -> None:
    bounds = TABLES["bounds"]
    assert wire._MAX_UNITS == bounds["unitsMax"]
    assert wire._MAX_DIMENSIONS == bounds["dimensionsMax"]
    assert wire._MAX_PRIORITY == bounds["priorityMax"]
    assert wire._NAME.pattern == TABLES["namePattern"]


def test_delivery_reports_use_the_protocol_buckets() -> None:
    assert list(wire.DELIVERY_BUCKETS_MS) == TABLES["deliveryBucketsMs"]
    tally = wire.DeliveryTally()
    for ms in (0, 5, 6, 10_000, 10_001, wire.MAX_DELIVERY_MS):
        tally.add(ms)
    report = tally.report(3, "gpt")
    assert report["buckets"] == [2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]
    assert (report["count"], report["maxMs"], report["sumMs"]) == (6, wire.MAX_DELIVERY_MS, 20_012 + wire.MAX_DELIVERY_MS)
