"""`chaos explore`: generated fault schedules over the whole catalogue, shrunk to a minimal scenario.

    strategy  FaultSpace (the catalogue laid over one target) and trial_schedules (Hypothesis)
    trial     one schedule run as an ordinary scenario on shared infra; what it found
    shrink    Search: Hypothesis generation and shrinking, each failure confirmed k times
    writer    the minimal schedule as a scenario module `chaos run` reproduces
    session   explore(): the whole session, from spec to written module
"""

from harness.explore.session import ExploreOptions, ExploreResult, explore, parse_budget, prepare
from harness.explore.shrink import Search, SearchResult
from harness.explore.strategy import INHERENT, FaultSpace, Skipped, TrialSchedule, parse_kinds, trial_schedules
from harness.explore.trial import TrialOutcome, TrialRunner, scenario_of
from harness.explore.writer import module_source, write_scenario

__all__ = [
    "INHERENT", "ExploreOptions", "ExploreResult", "FaultSpace", "Search", "SearchResult", "Skipped", "TrialOutcome",
    "TrialRunner", "TrialSchedule", "explore", "module_source", "parse_budget", "parse_kinds", "prepare", "scenario_of",
    "trial_schedules", "write_scenario",
]
