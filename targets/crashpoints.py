"""The reference pipelines' crash points: where each of their processes may be made to die.

The mechanism is the harness's SDK (``harness.sdk.crash_point``, a language-neutral file
protocol); this module names the points the reference processes pass through, which their
target specs declare (``ProcessDecl.crash_points``).
"""

from __future__ import annotations

from harness.sdk import crash_point

__all__ = ["POINTS", "crash_point"]

POINTS = (
    "app.after_commit",  # order service: the transaction committed, the event not yet published
    "relay.after_publish",  # relay: the broker acknowledged the batch, the rows not yet marked sent
    "consumer.after_effect",  # consumer: effect + processed record committed, the offset not yet committed
)
