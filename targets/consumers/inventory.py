"""The inventory consumer: one stock reservation per created order, exactly once.

Run by the harness: python -m targets.consumers.inventory (configuration in the environment).
"""

from __future__ import annotations

from targets.consumers.base import effect_only, run_consumer
from targets.domain import EventType

HANDLERS = {EventType.CREATED.value: effect_only}

if __name__ == "__main__":
    run_consumer("inventory", HANDLERS)
