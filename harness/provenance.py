"""A published record's provenance: the outbox row or WAL position it came from.

Read from the headers a publisher puts on the record (``harness.sdk.provenance`` names them and
says what they hold), by the oracle when it reads the event topic. The history keeps them on the
record's ``topic`` row, only when the record carries them:

  outbox_id  the outbox row's id: an int when the header is decimal digits, else its text
  lsn        the WAL position in Postgres's text form (``16/B374D848``); Debezium's decimal
             ``source.lsn`` is converted, any other text (another database's log position) is kept

A history written before these fields existed simply has no such column, and a record without
the headers (direct publishing) has no such field: both read as "no provenance recorded".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from harness.sdk.provenance import LSN_HEADER, OUTBOX_ID_HEADER

__all__ = ["Provenance", "pg_lsn", "read_provenance"]

_MAX_TEXT = 200  # a header is the publisher's text: keep a history row bounded whatever it sends
_PG_LSN = re.compile(r"[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}")
_LSN_MAX = 2**64 - 1  # pg_lsn is an unsigned 64-bit position


@dataclass(frozen=True, slots=True)
class Provenance:
    outbox_id: int | str | None = None
    lsn: str | None = None

    def fields(self) -> dict[str, int | str]:
        """The history row's fields: only those the record carried."""
        out: dict[str, int | str] = {}
        if self.outbox_id is not None:
            out["outbox_id"] = self.outbox_id
        if self.lsn is not None:
            out["lsn"] = self.lsn
        return out


def pg_lsn(value: int) -> str:
    """A WAL position as Postgres writes it: the high and low 32 bits in hex (``pg_lsn``'s text form)."""
    if not 0 <= value <= _LSN_MAX:
        raise ValueError(f"{value} is not a WAL position (0 .. 2^64-1)")
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()  # str.isdigit alone takes "²", which int() refuses


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    text = raw.decode("utf-8", "replace").strip()
    return text[:_MAX_TEXT] if text else None


def _lsn(text: str) -> str:
    if _digits(text) and int(text) <= _LSN_MAX:
        return pg_lsn(int(text))
    if _PG_LSN.fullmatch(text):
        high, low = text.split("/")
        return f"{int(high, 16):X}/{int(low, 16):X}"
    return text


def read_provenance(headers: Iterable[tuple[str, bytes | None]] | None) -> Provenance:
    """The provenance headers of one record (the first of each name counts), normalised for the history."""
    outbox_id: int | str | None = None
    lsn: str | None = None
    for name, raw in headers or ():
        if name == OUTBOX_ID_HEADER and outbox_id is None and (text := _text(raw)) is not None:
            outbox_id = int(text) if _digits(text) and len(text) <= 18 else text  # beyond int64: keep the text
        elif name == LSN_HEADER and lsn is None and (text := _text(raw)) is not None:
            lsn = _lsn(text)
    return Provenance(outbox_id, lsn)
