"""Counts the case-study stories share: money as the article writes it, orders by id, rates.

Each reads only the stored history (observations and ops), like the checkers.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.history.ops import History, Scalar

__all__ = ["money", "orders_by_id", "per_order", "traffic_s"]


def money(cents: int) -> str:
    return f"${cents / 100:,.2f}"


def orders_by_id(h: History) -> dict[str, Mapping[str, Scalar]]:
    return {str(r["order_id"]): r for r in h.observed("orders")}


def per_order(count: int, orders: int) -> str:
    """"17 of 480 orders (1 per 28)"."""
    if not count:
        return f"0 of {orders:,} orders"
    return f"{count:,} of {orders:,} orders (1 per {orders / count:,.0f})"


def traffic_s(h: History) -> float:
    """Seconds from the first client request to the last answer."""
    ops = h.client_ops()
    return max((o.time_s for o in ops), default=0.0) - min((o.time_s for o in ops), default=0.0)
