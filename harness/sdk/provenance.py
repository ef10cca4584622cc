"""Provenance headers: where at its source a published record came from, for ``chaos trace``.

A publisher may put these headers on every record it writes to the event topic. The harness's
oracle records them with the record (the ``topic`` observation's ``outbox_id`` and ``lsn``), and
``chaos trace`` shows them beside topic, partition and offset, so one order's chain reads from the
request to the outbox row or WAL position to the offset it landed at:

  chaos-outbox-id  the id of the outbox row the record was published from (an integer id as
                   decimal text; any other id as its text)
  chaos-lsn        the WAL position of the change the record was captured from: Postgres's text
                   form (``16/B374D848``) or the decimal integer Debezium's ``source.lsn`` holds

Both are optional: a pipeline with no such source (a service that publishes in the request)
sends neither, and the trace says so. Header values are UTF-8 text, as the Java clients'
``SimpleHeaderConverter`` writes numbers, so Kafka Connect transforms can emit them too
(Debezium's ``ExtractNewRecordState`` with ``add.headers=lsn`` and ``add.headers.prefix=chaos-``;
its outbox ``EventRouter`` with ``table.fields.additional.placement=id:header:chaos-outbox-id``).
"""

from __future__ import annotations

__all__ = ["LSN_HEADER", "OUTBOX_ID_HEADER", "provenance_headers"]

OUTBOX_ID_HEADER = "chaos-outbox-id"
LSN_HEADER = "chaos-lsn"


def provenance_headers(*, outbox_id: int | str | None = None, lsn: int | str | None = None) -> dict[str, str]:
    """The provenance headers of one record, for a producer's ``headers=`` (only those given)."""
    out: dict[str, str] = {}
    if outbox_id is not None:
        out[OUTBOX_ID_HEADER] = str(outbox_id)
    if lsn is not None:
        out[LSN_HEADER] = str(lsn)
    return out
