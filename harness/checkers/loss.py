"""I1 no-lost-effect: every acknowledged request gets every effect it requires by the end of drain.

Which effects a request requires is policy, in the history's domain (``required_effects``) (a paid order needs
its charge, a placed order its reservation and email ...), restricted to the consumers
the target actually runs. A request whose outcome is unknown (info) may or may not have
happened, so it requires nothing. Money lost is the sum of the affected orders' amounts.

Loss is what is gone from every place where it could still be: an order whose events
still wait at the source (the ``pending`` observation: an outbox's unsent rows, read by the
target's backlog query) is *pending at source*, counted and listed, never lost. A run
whose only missing effects are pending cannot tell yet (unknown), and says so.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from harness.checkers._index import acknowledged_index, effects_index
from harness.checkers.base import MAX_EXAMPLES, CheckResult, Validity
from harness.checkers.chain import order_chains
from harness.history.observations import required_effects
from harness.history.ops import History

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
        acknowledged: dict[str, dict[str, int]] = {f: {} for f in needs}  # op -> order -> amount
        acks = history.derived(acknowledged_index)
        for key, f, amount in zip(acks.key, acks.f, acks.amount_cents):
            if key is not None and f in needs:
                acknowledged[f][key] = int(amount or 0)  # type: ignore[call-overload]
        have = history.derived(effects_index).orders_of  # (consumer, kind) -> orders it took effect for
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
        counts = {"required": n_required, "missing": len(missing), "acknowledged_orders": len(amounts),
                  "lost": len(lost_orders), "lost_cents": lost_cents, "pending_at_source": len(waiting)}
        per_consumer = Counter(c for c, _, _ in missing)
        for consumer in sorted(consumers):
            counts[f"missing:{consumer}"] = per_consumer[consumer]
        if not n_required:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               "no request was acknowledged, so nothing could be lost (vacuous)", counts)
        if missing:
            chains = order_chains(history, lost_orders[:MAX_EXAMPLES])
            examples = tuple(
                {"anomaly": "lost-effect", "order_id": o, "amount_cents": amounts[o],
                 "missing": [f"{c}:{k}" for c, k, order in missing if order == o],
                 "chain": chains[o]}
                for o in lost_orders[:MAX_EXAMPLES]
            )
            also = f"; pending at source: {len(waiting)}" if waiting else ""
            return CheckResult(self.name, self.invariant, Validity.INVALID,
                               f"{len(lost_orders)} of {len(amounts)} acknowledged orders are missing "
                               f"{len(missing)} required effects ({lost_cents / 100:.2f} affected){also}", counts,
                               examples)
        if waiting:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               f"pending at source: {len(waiting)} acknowledged orders' events still wait to be "
                               f"published (e.g. {', '.join(waiting[:5])}); none is lost, none arrived yet", counts,
                               tuple({"anomaly": "pending-at-source", "order_id": o} for o in waiting[:MAX_EXAMPLES]))
        return CheckResult(self.name, self.invariant, Validity.VALID,
                           f"all {n_required} required effects of {len(amounts)} acknowledged orders happened", counts)
