# The chaos pytest plugin registers itself through the pytest11 entry point once the
# package is installed (`pip install -e .`). What lives here is this repository's own test
# suite policy: which tier a bare `pytest` runs.
#
# Tiers. A bare `pytest` (the configured testpaths) runs the core tier: the harness's unit and
# property tests, its infrastructure tests, and one real-infrastructure scenario per fault family,
# invariant and article story, within the ten minutes CI gives the README's test command. Modules
# marked `extended` (every broken variant under explore, each relay variant, the Go example,
# signals on infrastructure of their own, the further case studies) run after it in CI
# (`pytest --tier extended`, .ci/run). Naming files or folders runs everything named, whatever
# its tier; `--tier core|extended|all` says it explicitly.
from __future__ import annotations

import pytest

TIERS = ("core", "extended", "all")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--tier", choices=TIERS, default=None,
        help="core: what a bare `pytest` runs (about 8 minutes); extended: the modules marked `extended`; "
             "all: both. Default: core when no path is given, all when files or folders are named")


def pytest_configure(config: pytest.Config) -> None:
    # Resolved once here, where the command line is known: pytest-xdist hands this option to its
    # workers, whose own argument list would otherwise look as if paths had been named.
    if config.option.tier is None:
        config.option.tier = "core" if config.args_source is pytest.Config.ArgsSource.TESTPATHS else "all"


def pytest_report_header(config: pytest.Config) -> str:
    return f"tier: {config.option.tier} (`--tier core|extended|all`; see conftest.py)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tier = config.option.tier
    if tier == "all":
        return
    want_extended = tier == "extended"
    keep = [i for i in items if (i.get_closest_marker("extended") is not None) == want_extended]
    dropped = [i for i in items if (i.get_closest_marker("extended") is not None) != want_extended]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
