"""What a pipeline under test may import: crash points by name (``crash_point("relay.after_publish")``),
and the provenance headers that let ``chaos trace`` show a record's outbox row or WAL position
(``harness.sdk.provenance``).

The crash-point protocol is language-neutral (a control folder named by ``CHAOS_CRASHPOINTS_DIR``,
see ``harness.sdk.crashpoints``); ``harness/sdk/go/crashpoint/crashpoint.go`` is the
one-file helper for Go. A target declares the points it exposes in its spec
(``crash_points``), so scenarios and the explorer can arm them by name.
"""

from harness.sdk.crashpoints import crash_point
from harness.sdk.provenance import LSN_HEADER, OUTBOX_ID_HEADER, provenance_headers

__all__ = ["LSN_HEADER", "OUTBOX_ID_HEADER", "crash_point", "provenance_headers"]
