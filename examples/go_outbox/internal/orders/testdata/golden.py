"""Prints what the Python order service makes of golden_test.go's inputs, as JSON (golden.json).

    cd examples/go_outbox/internal/orders && PYTHONPATH=../../../.. python testdata/golden.py > testdata/golden.json

The Go test compares its own functions with golden.json, and re-runs this script to check
golden.json is still what Python says (skipped where the repository's Python is not importable).
"""

from __future__ import annotations

import inspect
import json
import uuid
from datetime import datetime, timezone

from targets.domain import SCHEMA_VERSION, Event, event_id_for
from targets.order_service import OrderService, _uuid, place_sql, transition_sql
from targets.statements import _named

ORDER_IDS = ["00000000-0000-4000-8000-000000000000", "3f2b8c1e-5d4a-4f6b-9c7d-0e1f2a3b4c5d",
             "ffffffff-ffff-4fff-bfff-ffffffffffff"]
CUSTOMERS = ["customer-042", 'quote " and \\ backslash', "tab\tnewline\ncr\rbell\x07del\x7f", "café ünïcode",
             "emoji 😀 and 中文", "<html>&amp;</html>", "/slash'apostrophe", ""]
INSTANTS = [(1764979200, 0), (1764979200, 1), (1764979200, 123456), (1764979215, 999999), (0, 500000)]
UUID_INPUTS = ["3f2b8c1e-5d4a-4f6b-9c7d-0e1f2a3b4c5d", "3F2B8C1E-5D4A-4F6B-9C7D-0E1F2A3B4C5D",
               "{3f2b8c1e-5d4a-4f6b-9c7d-0e1f2a3b4c5d}", "urn:uuid:3f2b8c1e-5d4a-4f6b-9c7d-0e1f2a3b4c5d",
               "3f2b8c1e5d4a4f6b9c7d0e1f2a3b4c5d", "3f2b-8c1e-5d4a-4f6b-9c7d-0e1f-2a3b-4c5d", "not-a-uuid",
               "3f2b8c1e-5d4a-4f6b-9c7d-0e1f2a3b4c5", "3f2b8c1e-5d4a-4f6b-9c7d-0e1f2a3b4c5g", ""]
SELECT_SQL = "SELECT customer, amount_cents, version, status FROM orders WHERE order_id = %s"
# The service writes its SELECT inline: this copy must still be the one it runs.
assert f'"{SELECT_SQL}"' in inspect.getsource(OrderService.transition), "the order service's SELECT changed"


def canonical(text: str) -> str | None:
    try:
        return _uuid(text)
    except ValueError:
        return None


def main() -> None:
    events = []
    for i, customer in enumerate(CUSTOMERS):
        order_id = ORDER_IDS[i % len(ORDER_IDS)]
        seq = 1 + i % 3
        fields = dict(event_id=event_id_for(order_id, seq), type="order.paid", order_id=order_id, seq=seq,
                      schema_version=SCHEMA_VERSION, correlation_id=str(uuid.UUID(int=i)),
                      occurred_at="2026-12-06T11:33:35.123456+00:00", customer=customer, amount_cents=1000 * i - 3)
        events.append({"fields": fields, "encoded": Event(**fields).encode().decode()})
    out = {
        "event_ids": [{"order_id": o, "seq": s, "event_id": event_id_for(o, s)} for o in ORDER_IDS for s in (1, 2, 3, 12)],
        "events": events,
        "isoformat": [{"unix": s, "micro": us, "iso": datetime.fromtimestamp(s, timezone.utc).replace(microsecond=us).isoformat()}
                      for s, us in INSTANTS],
        "uuids": [{"input": t, "canonical": canonical(t)} for t in UUID_INPUTS],
        "sql": {"place": _named(place_sql(True))[1].decode(), "transition": _named(transition_sql(True))[1].decode(),
                "select": _named(SELECT_SQL)[1].decode()},
    }
    print(json.dumps(out, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
