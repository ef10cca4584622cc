"""The command line's option values: parsed strictly, bounded, and refused with one line saying what is valid.

Each function is an argparse ``type=``: it returns the value or raises ArgumentTypeError,
which the CLI turns into exit 4. The bounds keep a run finite and its memory bounded
(``--rate inf`` or ``--duration 1e12`` would otherwise hang a run or grow it without end),
and a duplicated pipeline is refused here rather than in the database much later.

    option       accepted
    --seed       integer, 0 .. 2**63-1
    --duration   seconds of traffic, finite, 0 < S <= 3600
    --rate       peak orders per second, finite, 0 < R <= 5000
    --pipelines  comma-separated pipeline names, no blanks, no duplicates
    RUN_DIR      an existing folder

Nothing is trimmed: " 5" or "outbox, cdc" is more likely a quoting mistake than a wish.
Python's own int() and float() would take whitespace, "1_000", non-ASCII digits, "nan"
and "inf"; these parsers accept plain ASCII decimals only.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path

__all__ = ["DURATION_MAX_S", "RATE_MAX", "SEED_MAX", "duration", "pipelines", "rate", "run_dir", "seed"]

SEED_MAX = 2**63 - 1
DURATION_MAX_S = 3600.0
RATE_MAX = 5000.0

_DECIMAL = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NAME = re.compile(r"[a-z][a-z0-9_-]*")  # what names look like; which exist is checked where they are known


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


def _positive(text: str, what: str, upper: float, unit: str) -> float:
    if not _DECIMAL.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a plain positive number; give {unit} in (0, {upper:g}]")
    value = float(text)
    if not math.isfinite(value) or not 0 < value <= upper:
        raise argparse.ArgumentTypeError(f"{what} {_shown(text)} is out of bounds; give {unit} in (0, {upper:g}]")
    return value


def duration(text: str) -> float:
    return _positive(text, "duration", DURATION_MAX_S, "seconds of traffic per pipeline")


def rate(text: str) -> float:
    return _positive(text, "rate", RATE_MAX, "peak orders per second")


def seed(text: str) -> int:
    # Bounded by length before int(): a 5,000-digit "seed" must not reach int()'s own digit limit.
    if not re.fullmatch(r"[0-9]{1,19}", text) or int(text) > SEED_MAX:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a seed; give an integer in 0..{SEED_MAX}")
    return int(text)


def pipelines(text: str) -> str:
    """The text itself once every name in it is well formed and named once (callers split it as before)."""
    names = tuple(text.split(","))
    bad = [n for n in names if not _NAME.fullmatch(n)]
    if bad:
        raise argparse.ArgumentTypeError(f"{_shown(text)}: {_shown(bad[0])} is not a pipeline name; give names "
                                         "such as outbox,cdc separated by commas, without spaces or empty items")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise argparse.ArgumentTypeError(f"{_shown(text)} names {', '.join(dupes)} twice; name each pipeline once")
    return text


def run_dir(text: str) -> Path:
    if not text or text != text.strip() or any(ord(c) < 32 or c == "\x7f" for c in text):
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a folder name; pass a run folder written by "
                                         "`chaos run`, such as runs/black_friday-20261126-200000-beef")
    # os.path.isdir answers False for every OSError (a name too long, a loop), where Path.is_dir raises some.
    if not os.path.isdir(text):
        raise argparse.ArgumentTypeError(f"no folder {_shown(text)}; pass a run folder written by `chaos run` "
                                         "(they are under runs/ unless CHAOS_RUNS_DIR says otherwise)")
    return Path(text)
