"""I1 no-lost-effect: every acknowledged request gets every effect it requires by the end of drain.

Which effects a request requires is policy, in the history's domain (``required_effects``) (a paid order needs
its charge, a placed order its reservation and email ...), restricted to the consumers
the target actually runs. A request whose outcome is unknown (info) may or may not have
happened, so it requires nothing. Money lost is the sum of the affected orders' amounts.

Loss is what is gone from every place where it could still be: an order whose events
still wait at the source (the ``pending`` observation: an outbox's unsent rows, read by the
target's backlog query) is *pending at source*, counted and listed, never lost. A run
whose only missing effects are pending cannot tell yet (unknown), and says so.

Anomalies:
  lost-effect                an acknowledged request's required effect never happened
  acknowledged-then-missing  a request answered 2xx whose entity then reads as missing
                             (no row in the ``orders`` observation) or in an earlier state
                             than the acknowledged step leaves it (a paid order reading
                             ``created``), or whose next step is refused with 404 or 409
                             right after: the service acknowledged what it did not keep
                             (an ack before commit, a commit that was not durable)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.checkers._arrays import Codes, OpArrays, first_index, isin, last_index, op_arrays, source, unique
from harness.checkers._index import acknowledged_index, effects_index, ops_by_role
from harness.checkers._sources import pick
from harness.checkers.anomaly import Anomaly, AnomalyKind
from harness.checkers.base import MAX_EXAMPLES, CheckResult, Validity
from harness.checkers.counts import LossCounts
from harness.checkers.chain import order_chains
from harness.checkers.phantom import STATUS_AFTER
from harness.history.observations import required_effects
from harness.history.frame import ABSENT_CODE, NONE
from harness.history.ops import History, OpType, Scalar

__all__ = ["NoLostEffect"]


@dataclass(frozen=True, slots=True)
class NoLostEffect:
    name: str = "no-lost-effect"
    invariant: str | None = "I1"

    def check(self, history: History) -> CheckResult:
        if "effects" not in history.observations:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               "no final observation of effects was recorded; the run ended before drain")
        consumers = {str(r["consumer"]) for r in history.observed("consumers")}
        needs = {f: tuple((c, k) for c, k in pairs if c in consumers) for f, pairs in required_effects(history).items()}
        clean = _clean(history, needs)
        if clean is not None:
            n_required, n_orders = clean
            counts = LossCounts(required=n_required, missing=0, acknowledged_orders=n_orders, lost=0, lost_cents=0,
                                pending_at_source=0, acknowledged_then_missing=0).as_counts(
                **{f"missing:{consumer}": 0 for consumer in sorted(consumers)})
            if not n_required:
                return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                                   "no request was acknowledged, so nothing could be lost (vacuous)", counts)
            return CheckResult(self.name, self.invariant, Validity.VALID,
                               f"all {n_required} required effects of {n_orders} acknowledged orders happened", counts)
        inputs = _inputs_fast(history, needs)  # the same, read from the arrays
        if inputs is None:
            acknowledged: dict[str, dict[str, int]] = {f: {} for f in needs}  # op -> order -> amount
            acks = history.derived(acknowledged_index)
            for key, f, amount in zip(acks.key, acks.f, acks.amount_cents):
                if key is not None and f in needs:
                    acknowledged[f][key] = int(amount or 0)  # type: ignore[call-overload]
            have: Mapping[tuple[Scalar, Scalar], Set[Scalar]] = history.derived(effects_index).orders_of
            vanished_acks = acknowledged_then_missing(history)
        else:
            acknowledged, have, vanished_acks = inputs
        missing: list[tuple[str, str, str]] = []
        amounts: dict[str, int] = {}  # acknowledged orders that require some effect -> amount
        for f, orders in acknowledged.items():
            if needs[f]:
                amounts.update(orders)
            for consumer, kind in needs[f]:
                missing.extend((consumer, kind, o) for o in orders.keys() - have.get((consumer, kind), frozenset()))
        n_required = sum(len(orders) * len(needs[f]) for f, orders in acknowledged.items())
        pending = {str(r.get("order_id")) for r in history.observed("pending")}
        waiting = sorted({order for _, _, order in missing if order in pending})
        missing = [m for m in missing if m[2] not in pending]
        lost_orders = sorted({order for _, _, order in missing})
        lost_cents = sum(amounts[o] for o in lost_orders)
        per_consumer = Counter(c for c, _, _ in missing)
        counts = LossCounts(required=n_required, missing=len(missing), acknowledged_orders=len(amounts),
                            lost=len(lost_orders), lost_cents=lost_cents, pending_at_source=len(waiting),
                            acknowledged_then_missing=len(vanished_acks)).as_counts(
            **{f"missing:{consumer}": per_consumer[consumer] for consumer in sorted(consumers)})
        if not n_required and not vanished_acks:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               "no request was acknowledged, so nothing could be lost (vacuous)", counts)
        if missing or vanished_acks:
            lost_examples = [
                {"anomaly": AnomalyKind.LOST_EFFECT.value, "order_id": o, "amount_cents": amounts[o],
                 "missing": [f"{c}:{k}" for c, k, order in missing if order == o]}
                for o in lost_orders[:MAX_EXAMPLES]
            ]
            ack_examples = [{"anomaly": AnomalyKind.ACKNOWLEDGED_THEN_MISSING.value, **detail}
                            for _, detail in vanished_acks[:MAX_EXAMPLES]]
            examples = pick(lost_examples, ack_examples, limit=MAX_EXAMPLES)
            chains = order_chains(history, {str(x["order_id"]) for x in examples})
            for x in examples:
                x["chain"] = chains[str(x["order_id"])]
            found = [Anomaly(AnomalyKind.LOST_EFFECT, o, c) for c, _, o in missing]
            found += [Anomaly(AnomalyKind.ACKNOWLEDGED_THEN_MISSING, o) for o, _ in vanished_acks]
            also = f"; pending at source: {len(waiting)}" if waiting else ""
            acked = (f"; {len(vanished_acks)} acknowledged requests then read as missing or refused"
                     if vanished_acks else "")
            return CheckResult(self.name, self.invariant, Validity.INVALID,
                               f"{len(lost_orders)} of {len(amounts)} acknowledged orders are missing "
                               f"{len(missing)} required effects ({lost_cents / 100:.2f} affected){also}{acked}",
                               counts, tuple(examples), tuple(found))
        if waiting:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               f"pending at source: {len(waiting)} acknowledged orders' events still wait to be "
                               f"published (e.g. {', '.join(waiting[:5])}); none is lost, none arrived yet", counts,
                               tuple({"anomaly": "pending-at-source", "order_id": o} for o in waiting[:MAX_EXAMPLES]))
        return CheckResult(self.name, self.invariant, Validity.VALID,
                           f"all {n_required} required effects of {len(amounts)} acknowledged orders happened", counts)


def _effect_arrays(history: History) -> tuple[OpArrays, Codes, Codes, Codes] | None:
    """The ops' arrays and the effects' consumer, kind and order codes; None when they cannot be read as
    arrays (no frame, an amount that is not an int: int(amount or 0) of another type may fail, and the
    Python path says how; an effect row lacking one of the three)."""
    ops = op_arrays(history)
    effects = source(history, "effects")
    if ops is None or effects is None:
        return None
    amount = ops.value("amount_cents")
    if amount is not None and amount.kind != "int":
        return None
    e_consumer, e_kind, e_order = (effects.str_codes(n, required=True) for n in ("consumer", "kind", "order_id"))
    if e_consumer is None or e_kind is None or e_order is None:
        return None
    return ops, e_consumer, e_kind, e_order


def _clean(history: History, needs: dict[str, tuple[tuple[str, str], ...]]) -> tuple[int, int] | None:
    """(required effects, acknowledged orders) when the columns prove that nothing is missing and no
    acknowledged request was lost or refused later; None when they do not (or cannot be read as arrays):
    then the Python path finds and shows what is wrong (see _arrays.py)."""
    arrays = _effect_arrays(history)
    if arrays is None:
        return None
    ops, e_consumer, e_kind, e_order = arrays
    acked = ops.ok & (ops.key >= 0)
    n_required = 0
    requiring: list[npt.NDArray[Any]] = []
    for f, pairs in needs.items():
        orders = unique(ops.key[acked & (ops.f == ops.code(f))])
        n_required += len(orders) * len(pairs)
        if pairs:
            requiring.append(orders)
        for consumer, kind in pairs:
            have = e_order[(e_consumer == ops.code(consumer)) & (e_kind == ops.code(kind))]
            if not isin(orders, have).all():
                return None
    n_orders = len(unique(np.concatenate(requiring))) if requiring else 0
    return (n_required, n_orders) if _kept(history, ops, acked) else None


def _inputs_fast(history: History, needs: dict[str, tuple[tuple[str, str], ...]]) -> tuple[
        dict[str, dict[str, int]], Mapping[tuple[Scalar, Scalar], Set[Scalar]], list[tuple[str, dict[str, object]]]] | None:
    """The acknowledged orders per step (with amounts), the orders each required (consumer, kind) took effect
    for, and acknowledged_then_missing, read from the arrays for the Python path's evidence (None: cannot)."""
    arrays = _effect_arrays(history)
    if arrays is None:
        return None
    ops, e_consumer, e_kind, e_order = arrays
    vanished = _vanished_fast(history, ops)
    if vanished is None:
        return None
    pool = ops.frame.pool
    amount = ops.value("amount_cents")  # an int column or none (checked by _effect_arrays)
    amounts = np.zeros(ops.frame.ops.n, dtype=np.int64) if amount is None else \
        np.where(amount.mask != 0, 0, amount.values) if amount.mask is not None else amount.values
    acked = ops.ok & (ops.key >= 0)
    acknowledged: dict[str, dict[str, int]] = {}
    for f in needs:
        where = np.flatnonzero(acked & (ops.f == ops.code(f)))
        keys = ops.key[where]
        distinct, first = first_index(keys)
        _, last = last_index(keys)  # the same distinct keys, sorted: each one's last acknowledgement
        by_first = np.argsort(first, kind="stable")  # a dict keeps the order keys were first set in
        acknowledged[f] = dict(zip(pool.take(distinct[by_first]), amounts[where[last[by_first]]].tolist()))
    have: dict[tuple[Scalar, Scalar], Set[Scalar]] = {}
    for pairs in needs.values():
        for consumer, kind in pairs:
            if (consumer, kind) not in have:
                took = e_order[(e_consumer == ops.code(consumer)) & (e_kind == ops.code(kind))]
                have[(consumer, kind)] = frozenset(pool.take(unique(took)))
    return acknowledged, have, vanished


def _vanished_fast(history: History, ops: OpArrays) -> list[tuple[str, dict[str, object]]] | None:
    """acknowledged_then_missing, on the arrays: only refused requests and orders that read wrong are made."""
    pool = ops.frame.pool
    acked = np.flatnonzero(ops.ok & (ops.key >= 0))
    keys = ops.key[acked]
    distinct, first = first_index(keys)
    found: dict[str, dict[str, object]] = {}
    refused = np.flatnonzero(ops.fail & (ops.key >= 0))
    if len(refused):
        errors = ops.frame.ops.error[refused]
        said = {c: str(pool.at(c) or "").startswith(_REFUSED) for c in unique(errors).tolist()}
        refused = refused[[said[c] for c in errors.tolist()]]
    for op, code in zip(ops.ops_at(refused), ops.key[refused].tolist()):
        if op.key in found or op.key is None:
            continue
        j = int(np.searchsorted(distinct, code))
        if j < len(distinct) and distinct[j] == code:
            first_at = float(ops.time[acked[first[j]]])
            if first_at < op.time_s:
                found[op.key] = {"order_id": op.key, "refused": op.f, "error": op.error,
                                 "refused_at_s": round(op.time_s, 3), "acknowledged_at_s": round(first_at, 3)}
    if "orders" not in history.observations:
        return sorted(found.items())
    orders = source(history, "orders")
    order_id = orders.str_codes("order_id", required=True) if orders is not None else None
    status = orders.str_codes("status") if orders is not None else None
    if order_id is None or status is None:
        return None
    known, rows = last_index(order_id)  # each order's last row, as a dict by order id keeps it
    status_of = np.where(status[rows] == ABSENT_CODE, NONE, status[rows])
    _, last = last_index(keys)
    last = acked[last]  # each acknowledged order's latest acknowledged op, by order code
    at = np.minimum(np.searchsorted(known, ops.key[last]), max(len(known) - 1, 0))
    present = (known[at] == ops.key[last]) if len(known) else np.zeros(len(last), dtype=np.bool_)
    status_at = status_of[at] if len(known) else np.full(len(last), NONE, dtype=np.int32)
    wrong = ~present
    for f, after in STATUS_AFTER.items():
        step = present & (ops.f[last] == ops.code(f))
        wrong |= step & ~isin(status_at, np.array([ops.code(s) for s in after], dtype=np.int64))
    for i in np.flatnonzero(wrong).tolist():
        op_at = int(last[i])
        order, f = pool.at(int(ops.key[op_at])), pool.at(int(ops.f[op_at]))
        if order in found:
            continue
        t = float(ops.time[op_at])
        found[order] = {"order_id": order, "acknowledged": f, "acknowledged_at_s": round(t, 3),
                        "reads_as": "missing" if not present[i] else pool.at(int(status_at[i]))}
    return sorted(found.items())


def _kept(history: History, ops: OpArrays, acked: npt.NDArray[Any]) -> bool:
    """Whether no acknowledged request reads as missing or was refused later (acknowledged_then_missing is empty)."""
    where = np.flatnonzero(acked)
    keys = ops.key[where]
    distinct, first = first_index(keys)
    refused = np.flatnonzero(ops.fail & (ops.key >= 0))
    if len(refused):
        errors = ops.frame.ops.error[refused]
        said = {c: str(ops.frame.pool.at(c) or "").startswith(_REFUSED) for c in unique(errors).tolist()}
        refused = refused[[said[c] for c in errors.tolist()]]
    if len(refused) and len(distinct):
        at = np.minimum(np.searchsorted(distinct, ops.key[refused]), len(distinct) - 1)
        known = distinct[at] == ops.key[refused]
        if (known & (ops.time[where[first[at]]] < ops.time[refused])).any():
            return False
    if "orders" not in history.observations:
        return True
    orders = source(history, "orders")
    order_id = orders.str_codes("order_id", required=True) if orders is not None else None
    status = orders.str_codes("status") if orders is not None else None
    if order_id is None or status is None:
        return False  # not read as arrays: let the Python path decide
    known_orders, rows = last_index(order_id)  # each order's last row
    status_of = np.where(status[rows] == ABSENT_CODE, NONE, status[rows])
    last = where[last_index(keys)[1]]  # each acknowledged order's latest acknowledged op
    if not len(last):
        return True
    at = np.minimum(np.searchsorted(known_orders, ops.key[last]), max(len(known_orders) - 1, 0))
    if not len(known_orders) or not (known_orders[at] == ops.key[last]).all():
        return False  # an acknowledged order reads as missing
    for f, after in STATUS_AFTER.items():
        step = ops.f[last] == ops.code(f)
        if not isin(status_of[at[step]], np.array([ops.code(s) for s in after])).all():
            return False
    return True


_REFUSED = ("HTTP 404", "HTTP 409")
"""A later step refused as not found, or as a conflict with the state the service acknowledged."""


def acknowledged_then_missing(history: History) -> list[tuple[str, dict[str, object]]]:
    """(order, evidence) for each request answered 2xx that the service did not keep.

    Two sources of evidence, both read by the harness itself: the final ``orders`` rows (an
    acknowledged place whose row is absent, an acknowledged step whose status is earlier
    than the step leaves it) and the client's own later requests (a 404 or 409 on an entity
    after a 2xx on it). One finding per order, the first kind of evidence found.
    """
    ops = history.derived(ops_by_role)
    last_ok: dict[str, tuple[str, float]] = {}  # order -> its latest acknowledged step and when
    first_ok: dict[str, float] = {}  # order -> when its first request was acknowledged
    for op in ops.client[OpType.OK]:
        if op.key is not None:
            last_ok[op.key] = (op.f, op.time_s)
            first_ok.setdefault(op.key, op.time_s)
    found: dict[str, dict[str, object]] = {}
    for op in ops.client[OpType.FAIL]:
        if op.key is None or not (op.error or "").startswith(_REFUSED) or op.key in found:
            continue
        acked = first_ok.get(op.key)
        if acked is not None and acked < op.time_s:
            found[op.key] = {"order_id": op.key, "refused": op.f, "error": op.error, "refused_at_s": round(op.time_s, 3),
                             "acknowledged_at_s": round(acked, 3)}
    if "orders" in history.observations:
        status = {str(r["order_id"]): r.get("status") for r in history.observed("orders")}
        for order, (f, at) in last_ok.items():
            if order in found:
                continue
            if order not in status:
                found[order] = {"order_id": order, "acknowledged": f, "acknowledged_at_s": round(at, 3),
                                "reads_as": "missing"}
            elif f in STATUS_AFTER and status[order] not in STATUS_AFTER[f]:
                found[order] = {"order_id": order, "acknowledged": f, "acknowledged_at_s": round(at, 3),
                                "reads_as": status[order]}
    return sorted(found.items())
