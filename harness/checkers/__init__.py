"""Checkers: pure functions from a stored history to valid / invalid / unknown, with evidence.

  stats      stats.py       traffic per fault window, ok/fail/info counts; vacuity is unknown
  I1         loss.py        no-lost-effect          lost-effect
  I2         duplicates.py  exactly-once-effect     duplicate-effect (redeliveries absorbed are counted)
  I3         ordering.py    per-entity-order        nonmonotonic-apply, shipped-before-paid,
                                                    applied-past-dead-letter, split-entity,
                                                    nonmonotonic-publish
  I4         phantom.py     no-phantom              phantom-order, phantom-event, phantom-effect,
                                                    committed-without-effect,
                                                    committed-without-event, effect-without-commit
  I5         dlq.py         dlq-accounted           vanished, dlq-without-reason
  I6         trace.py       trace-complete          missing-correlation-id, foreign-correlation-id
  I7         recovery.py    bounded-recovery        slow-recovery, never-recovered
  I8         contract.py    schema-contract         undecodable, missing-schema-version,
                                                    unregistered-version, invalid-event, incompatible-versions

Each example names its anomaly and carries the order's evidence chain (chain.py).

When is a checker unknown rather than valid? Only when it cannot decide:
  - an observation source it reads is absent from the history (never observed: the run
    ended before drain, or the target does not report it), e.g. no ``topic`` makes I5 and
    I8 unknown; an observed but empty source is evidence of absence, not missing evidence;
  - a source it needs only for part of its judgement is absent and the rest found nothing
    (I3 without effects cannot check shipments; I5 without dlq cannot place unapplied
    records), while an anomaly found in the sources present is reported as invalid;
  - the evidence it needs exists nowhere in the history: no effect whose cause's
    correlation id is known (I6), no raw payload to validate (I8), no lag sample after
    the heal (I7), no acknowledged request at all (I1).
An invariant over a set that happens to be empty holds: no request failed, so none left a
phantom (I4 valid, ``failed_ops: 0``); a pipeline without a fulfillment consumer ships
nothing, so nothing shipped before paid (I3 valid, ``shipments: 0``). Whether the run as a
whole was meaningful (traffic during an effective fault) is the stats checker's question,
and it is part of every verdict, so a vacuous run is inconclusive whatever the others say.

Detection is kept apart from policy: checkers report what occurred (redeliveries, dead
letters, recovery time); what a pipeline is allowed lives in ``observations.py``
(``SUBSCRIPTIONS``, ``REQUIRED_EFFECTS``), the schema registry and the scenario
(expectations, recovery budget).
"""
