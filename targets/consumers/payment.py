"""The payment consumer: one charge per paid order, exactly once (see ``base`` for the loop).

Run by the harness: python -m targets.consumers.payment (configuration in the environment).
"""

from __future__ import annotations

from targets.consumers.base import effect_only, run_consumer
from targets.domain import EventType

HANDLERS = {EventType.PAID.value: effect_only}

if __name__ == "__main__":
    run_consumer("payment", HANDLERS)
