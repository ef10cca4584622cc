"""The runner's own waits leave a trace: every interposer sample in the history, and how long the wait took."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.errors import WaitTimeout
from harness.faults.interposer import InterposerState
from harness.history.ops import OpType
from harness.history.store import Recorder
from harness.runner import OBSERVE_ATTEMPTS, Progress, _catch_up, _observe_settled
from harness.target import Drain


def _state(unread: int, held: int = 0, unacked: int = 0) -> InterposerState:
    return InterposerState(unread=unread, held=held, unacked=unacked, forwarded=100 - unread, swapped=2)


class _Hop:
    """An interposer that owes 5, then 2 (one held), then nothing."""

    def __init__(self, states: list[InterposerState]) -> None:
        self.states = states

    def caught_up(self, timeout_s: float, report: Callable[[InterposerState], None]) -> InterposerState:
        for state in self.states:
            report(state)
            if state.lag == 0:
                return state
        raise WaitTimeout("the interposer to forward everything", timeout_s, self.states[-1].describe(), "")


def test_every_catch_up_sample_is_a_probe_op_and_the_wait_ends_with_its_duration() -> None:
    recorder = Recorder(None, "outbox")
    seen: list[Progress] = []
    _catch_up(_Hop([_state(5), _state(1, held=1), _state(0)]), 5.0, recorder, "outbox", seen.append, 0.0)  # type: ignore[arg-type]
    probes = [op for op in recorder.history().ops if op.process == "probe"]
    assert [op.f for op in probes] == ["interposer", "interposer", "interposer", "interposer-caught-up"]
    assert [op.value["lag"] for op in probes[:3]] == [5, 2, 0]
    assert probes[1].value["held"] == 1 and probes[-1].type is OpType.OK and probes[-1].value["waited_s"] >= 0
    assert [p.phase for p in seen] == ["catch-up"] * 3 and [p.lag for p in seen] == [5, 2, 0]


def test_a_catch_up_that_times_out_still_records_its_samples_and_duration() -> None:
    recorder = Recorder(None, "outbox")
    with pytest.raises(WaitTimeout):
        _catch_up(_Hop([_state(3), _state(3)]), 0.5, recorder, "outbox", lambda p: None, 0.0)  # type: ignore[arg-type]
    fs = [op.f for op in recorder.history().ops if op.process == "probe"]
    assert fs == ["interposer", "interposer", "interposer-caught-up"]


def test_interposer_lag_counts_unread_held_and_unacknowledged() -> None:
    state = InterposerState(unread=2, held=1, unacked=4, forwarded=10, swapped=1)
    assert state.lag == 7
    assert "held 1" in state.describe() and "unacked 4" in state.describe()


class _Moving:
    """A target still committing while its final observation is read: each ``observe`` lets ``work``
    more orders land (published between the two drain readings around it), until it has none left."""

    def __init__(self, work: list[int]) -> None:
        self.work = work
        self.published = 10
        self.reads = 0

    def drain_state(self) -> Drain:
        return Drain(publish_backlog=0, consumer_lag=0, published=self.published)

    def observe(self) -> dict[str, list[dict[str, object]]]:
        self.reads += 1
        rows = [{"order_id": str(i)} for i in range(self.published)]  # the orders table, read first
        self.published += self.work.pop(0) if self.work else 0  # then more land before the topic is read
        return {"orders": rows}  # type: ignore[dict-item]


def test_an_observation_read_while_the_pipeline_moved_is_read_again_and_recorded() -> None:
    recorder = Recorder(None, "outbox")
    target = _Moving([3, 2, 0])
    sources, settled = _observe_settled(target, True, 5.0, recorder, "outbox", lambda p: None, 0.0, None)  # type: ignore[arg-type]
    assert settled and target.reads == 3
    assert len(sources["orders"]) == 15  # the read that nothing moved under: every order landed by then
    unsettled = [op for op in recorder.history().ops if op.f == "observe-unsettled"]
    assert [(op.value["published_before"], op.value["published_after"]) for op in unsettled] == [(10, 13), (13, 15)]
    assert all(op.type is OpType.INFO for op in unsettled)


def test_a_pipeline_that_never_stops_moving_counts_as_not_drained() -> None:
    target = _Moving([1] * 100)
    _, settled = _observe_settled(target, True, 5.0, Recorder(None, "outbox"), "outbox", lambda p: None, 0.0, None)  # type: ignore[arg-type]
    assert not settled and target.reads == OBSERVE_ATTEMPTS


def test_a_pipeline_that_did_not_drain_is_read_once_as_it_is() -> None:
    target = _Moving([1] * 100)
    _, settled = _observe_settled(target, False, 5.0, Recorder(None, "outbox"), "outbox", lambda p: None, 0.0, None)  # type: ignore[arg-type]
    assert not settled and target.reads == 1
