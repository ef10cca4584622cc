"""I1 no-lost-effect: every acknowledged request gets every effect it requires by the end of drain.

Which effects a request requires is policy, in ``REQUIRED_EFFECTS`` (a paid order needs
its charge, a placed order its reservation and email ...), restricted to the consumers
the target actually runs. A request whose outcome is unknown (info) may or may not have
happened, so it requires nothing. Money lost is the sum of the affected orders' amounts.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.checkers.base import MAX_EXAMPLES, CheckResult, Validity
from harness.checkers.chain import order_chain
from harness.history.observations import REQUIRED_EFFECTS
from harness.history.ops import History, OpType

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
        have = {(str(r["consumer"]), str(r["kind"]), str(r["order_id"])) for r in history.observed("effects")}
        required: dict[tuple[str, str, str], int] = {}
        for op in history.ops:
            if op.type is OpType.OK and op.key is not None and op.process.startswith("client"):
                for consumer, kind in REQUIRED_EFFECTS.get(op.f, ()):
                    if consumer in consumers:
                        required[(consumer, kind, op.key)] = int(op.value.get("amount_cents") or 0)
        missing = [need for need in required if need not in have]
        lost_orders = sorted({order for _, _, order in missing})
        amounts = {order: amount for (_, _, order), amount in required.items()}
        lost_cents = sum(amounts[o] for o in lost_orders)
        counts = {"required": len(required), "missing": len(missing), "acknowledged_orders": len(amounts),
                  "lost": len(lost_orders), "lost_cents": lost_cents}
        for consumer in sorted(consumers):
            counts[f"missing:{consumer}"] = sum(1 for c, _, _ in missing if c == consumer)
        if not required:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               "no request was acknowledged, so nothing could be lost (vacuous)", counts)
        if missing:
            examples = tuple(
                {"order_id": o, "amount_cents": amounts[o],
                 "missing": [f"{c}:{k}" for c, k, order in missing if order == o],
                 "chain": order_chain(history, o)}
                for o in lost_orders[:MAX_EXAMPLES]
            )
            return CheckResult(self.name, self.invariant, Validity.INVALID,
                               f"{len(lost_orders)} of {len(amounts)} acknowledged orders are missing "
                               f"{len(missing)} required effects ({lost_cents / 100:.2f} affected)", counts, examples)
        return CheckResult(self.name, self.invariant, Validity.VALID,
                           f"all {len(required)} required effects of {len(amounts)} acknowledged orders happened", counts)
