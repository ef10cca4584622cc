"""I1 no-lost-effect: every acknowledged request gets every effect it requires by the end of drain.

Here: each ``pay`` the client saw succeed (ok) must have a charge by the payment
consumer. A pay whose outcome is unknown (info) may or may not have happened, so it
requires nothing. Money lost is the sum of the unmatched orders' amounts.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.checkers.base import MAX_EXAMPLES, CheckResult, Validity
from harness.checkers.chain import order_chain
from harness.history.ops import History, OpType

__all__ = ["NoLostEffect"]


@dataclass(frozen=True, slots=True)
class NoLostEffect:
    name: str = "no-lost-effect"
    invariant: str | None = "I1"

    def check(self, history: History) -> CheckResult:
        acked: dict[str, int] = {}
        for op in history.ops:
            if op.f == "pay" and op.type is OpType.OK and op.key is not None:
                acked[op.key] = int(op.value.get("amount_cents") or 0)
        if "charges" not in history.observations:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               "no final observation of charges was recorded; the run ended before drain")
        charged = {str(row["order_id"]) for row in history.observed("charges")}
        lost = [order for order in acked if order not in charged]
        lost_cents = sum(acked[o] for o in lost)
        counts = {"acknowledged": len(acked), "effected": len(acked) - len(lost), "lost": len(lost),
                  "lost_cents": lost_cents}
        if not acked:
            return CheckResult(self.name, self.invariant, Validity.UNKNOWN,
                               "no request was acknowledged, so nothing could be lost (vacuous)", counts)
        if lost:
            examples = tuple({"order_id": o, "amount_cents": acked[o], "chain": order_chain(history, o)}
                             for o in lost[:MAX_EXAMPLES])
            return CheckResult(self.name, self.invariant, Validity.INVALID,
                               f"{len(lost)} of {len(acked)} acknowledged orders never got their charge "
                               f"({lost_cents / 100:.2f} lost)", counts, examples)
        return CheckResult(self.name, self.invariant, Validity.VALID,
                           f"all {len(acked)} acknowledged orders were charged", counts)
