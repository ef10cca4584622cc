"""The fulfillment consumer: one shipment per shipped order, never before the order was paid.

It applies ``order.paid`` first (remembering the order is paid, no effect) and
``order.shipped`` only for an order whose paid event it has applied. A shipped event
that arrives first (possible only when an order's events are not on one partition, as
with the keyless variant) cannot be applied: it is retried, then dead-lettered with the
reason, never shipped ahead of payment.

Run by the harness: python -m targets.consumers.fulfillment (configuration in the environment).
"""

from __future__ import annotations

import psycopg

from targets.consumers.base import NotReady, run_consumer
from targets.domain import Event, EventType


def paid(conn: psycopg.Connection, event: Event) -> bool:
    conn.execute("INSERT INTO fulfillment_paid (order_id, event_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                 (event.order_id, event.event_id))
    return False


def shipped(conn: psycopg.Connection, event: Event) -> bool:
    if conn.execute("SELECT 1 FROM fulfillment_paid WHERE order_id = %s", (event.order_id,)).fetchone() is None:
        # Raising rolls back the processed-event record written in the same transaction.
        raise NotReady(f"{EventType.SHIPPED.value} before {EventType.PAID.value} for order {event.order_id}")
    return True


HANDLERS = {EventType.PAID.value: paid, EventType.SHIPPED.value: shipped}

if __name__ == "__main__":
    run_consumer("fulfillment", HANDLERS)
