"""The harness side of named crash points: arm, disarm, and read the evidence.

A crash point is a line in a target, ``crash_point("relay.after_publish")``
(harness.sdk.crashpoints documents the file protocol; the target's spec declares its points). The harness arms a point
for one process and its N-th passage by writing ``<dir>/<process>.arm``; the process
SIGKILLs itself there and leaves ``<dir>/<process>.fired`` behind; the nemesis then
restarts it. This is how a run produces a duplicate-delivery or loss window on purpose
rather than by luck: the relay dying after publish and before mark-sent re-sends a
batch; a consumer dying after its effect and before its offset commit gets the event
again; the order service dying after commit and before publish never publishes.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CrashPoints"]


@dataclass(frozen=True, slots=True)
class CrashPoints:
    """The crash-point folder of one run (``CHAOS_CRASHPOINTS_DIR`` of its target processes)."""

    folder: Path

    def arm(self, process: str, point: str, passage: int, event_type: str | None = None) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        arm_id = uuid.uuid4().hex
        tmp = self.folder / f"{process}.arm.tmp"
        record: dict[str, object] = {"point": point, "passage": passage, "arm_id": arm_id}
        if event_type is not None:
            record["event_type"] = event_type  # only passages about this event type count
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self.folder / f"{process}.arm")  # atomic: a reader sees the old arm or the new one
        return arm_id

    def armed(self, process: str) -> dict[str, object] | None:
        try:
            return json.loads((self.folder / f"{process}.arm").read_text())
        except (OSError, ValueError):
            return None

    def fired(self, process: str) -> dict[str, object] | None:
        """The evidence the process left when it died at the currently armed point, if it did."""
        armed = self.armed(process)
        try:
            record = json.loads((self.folder / f"{process}.fired").read_text())
        except (OSError, ValueError):
            return None
        return record if armed is not None and record.get("arm_id") == armed.get("arm_id") else None

    def fired_for(self, process: str, arm_id: str) -> dict[str, object] | None:
        """The evidence of arm ``arm_id``, whether or not it was disarmed since."""
        for path in (self.folder / f"{process}.fired", self.folder / f"{process}.fired.{arm_id}"):
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if record.get("arm_id") == arm_id:
                return record
        return None

    def disarm(self, process: str) -> None:
        """Spend the arm; the fired file stays as evidence (and marks the arm as spent)."""
        fired = self.fired(process)
        (self.folder / f"{process}.arm").unlink(missing_ok=True)
        if fired is not None:
            (self.folder / f"{process}.fired.{fired.get('arm_id')}").write_text(json.dumps(fired))
