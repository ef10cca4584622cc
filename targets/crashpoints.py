"""The reference pipelines' crash points: where each of their processes may be made to die.

The mechanism is the harness's SDK (``harness.sdk.crash_point``, a language-neutral file
protocol); this module names the points the reference processes pass through, which their
target specs declare (``ProcessDecl.crash_points``).
"""

from __future__ import annotations

from harness.sdk import crash_point

__all__ = ["POINTS", "crash_point"]

POINTS = (
    "app.before_commit",  # order service: order and outbox row written, the transaction not yet committed
    "app.after_commit",  # order service: the transaction committed, the event not yet published
    "relay.before_publish",  # relay: rows read (mark_before_ack: already marked), this row and the rest unproduced
    "relay.after_publish",  # relay: the broker acknowledged the batch, the rows not yet marked sent
    "consumer.before_effect",  # consumer: the record handed over by poll (auto-commit stored its offset), no effect yet
    "consumer.after_effect",  # consumer: effect + processed record committed, the offset not yet committed
)
"""Every point takes the record's event type, so an arm can count only, say, ``paid`` records."""
