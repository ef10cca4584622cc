"""Stories: a scenario's outcome told in the numbers of the case it re-enacts.

A named case study (``scenarios/double_charge.py`` ...) declares ``Scenario.story``, a pure
function of the run's histories and verdicts that returns a ``Story``: a title and a few
``Claim`` rows, each "what the article said" beside "what we measured" ("23 customers charged
twice, about $3,200" / "17 customers charged twice, $2,345.00"). The runner computes it with
the outputs, so it lands in results.json (``story``), the HTML report and the terminal;
`chaos report RUN_DIR` recomputes it from the stored run for a named scenario.

Like a checker, a story never raises into the run: one that fails becomes a story whose
``note`` names the error. It never changes a verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.history.ops import History
    from harness.scoring import PipelineVerdict

__all__ = ["Claim", "Story", "StoryTeller", "story_from_json", "tell"]


@dataclass(frozen=True, slots=True)
class Claim:
    """One row of "the article said / we measured"."""

    what: str  # "customers charged twice"
    article: str  # what the article reports, or "-" where it gives no number
    measured: str  # what this run measured

    def to_json(self) -> dict[str, str]:
        return {"what": self.what, "article": self.article, "measured": self.measured}


@dataclass(frozen=True, slots=True)
class Story:
    title: str
    claims: tuple[Claim, ...]
    note: str = ""  # one line of context: which leg ran, how to run the others, or why no story

    def to_json(self) -> dict[str, object]:
        return {"title": self.title, "claims": [c.to_json() for c in self.claims], "note": self.note}


StoryTeller = Callable[[Mapping[str, "History"], Sequence["PipelineVerdict"]], Story]
"""What ``Scenario.story`` holds: (histories by pipeline, verdicts) -> Story."""


def tell(teller: StoryTeller | None, histories: Mapping[str, History],
         verdicts: Sequence[PipelineVerdict]) -> Story | None:
    """``teller``'s story of this run, or a story that says why it could not be told."""
    if teller is None:
        return None
    try:
        return teller(histories, verdicts)
    except Exception as exc:  # noqa: BLE001 - a story is a summary: its bug must not cost the run's outputs
        return Story(title="(story failed)", claims=(), note=f"{type(exc).__name__}: {exc}")


def story_from_json(doc: object) -> Story | None:
    """A Story back from results.json."""
    if not isinstance(doc, Mapping):
        return None
    claims = tuple(Claim(str(c.get("what")), str(c.get("article")), str(c.get("measured")))
                   for c in doc.get("claims") or () if isinstance(c, Mapping))
    return Story(str(doc.get("title") or ""), claims, str(doc.get("note") or ""))
