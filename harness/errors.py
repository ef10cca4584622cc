"""The one exception root of chaos-harness, and the exit code each branch maps to.

    ChaosError
    ├── UsageError            exit 4: bad command line, bad scenario or fault parameters
    │   ├── SpecError         exit 4: a target spec (TOML or Python) is incomplete or wrong
    │   ├── SchemaInvalid     exit 4: an Avro or JSON Schema does not parse (refused before it is sent)
    │   └── SchemaIncompatible exit 4: the schema registry refused a schema under the subject's compatibility
    ├── InfraError            exit 3: a real component could not be installed, started or reached
    │   ├── InstallError      `chaos infra install` could not fetch or build something
    │   ├── WaitTimeout       a readiness or drain condition did not hold before its deadline
    │   ├── ProcessExited     a process died while the harness waited for it to become ready
    │   ├── ToxiproxyError    the Toxiproxy API refused a request or did not answer
    │   ├── RegistryError     the schema registry did not answer, or answered something unplanned
    │   ├── BasePortLocked    another run or pytest session holds the lock of this base port
    │   └── PortInUse         a port of the layout is taken by a program that is not this infra
    ├── TargetError           exit 3: a process of the system under test misbehaved at start
    ├── IncompleteRun         exit 2: a stored run folder was interrupted or damaged; nothing to check
    └── InternalError         exit 5: a fault of the harness itself (a bug, an unwritable folder);
                              the CLI turns any unexpected exception into one, with a crash log

Every message says what happened, what was expected, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BasePortLocked",
    "ChaosError",
    "IncompleteRun",
    "InfraError",
    "InternalError",
    "InstallError",
    "PortInUse",
    "ProcessExited",
    "RegistryError",
    "SchemaIncompatible",
    "SchemaInvalid",
    "SpecError",
    "TargetError",
    "ToxiproxyError",
    "UsageError",
    "WaitTimeout",
]


class ChaosError(Exception):
    """Root of every error chaos-harness raises on purpose."""

    exit_code: int = 3


class UsageError(ChaosError):
    """The user asked for something that cannot be done as stated."""

    exit_code = 4


class SpecError(UsageError):
    """A target spec is incomplete or wrong: the message names the field and the fix."""


class InfraError(ChaosError):
    """A real component (Postgres, Kafka, Toxiproxy, Connect) failed."""

    exit_code = 3


class InstallError(InfraError):
    """Provisioning could not complete."""


class WaitTimeout(InfraError):
    """A condition did not hold before its deadline; carries the last observation."""

    def __init__(self, what: str, timeout_s: float, last: str, evidence: str = "") -> None:
        self.what = what
        self.timeout_s = timeout_s
        self.last = last
        self.evidence = evidence
        message = f"timed out after {timeout_s:.1f}s waiting for {what}; last observation: {last}"
        if evidence:
            message += f"\n--- evidence ---\n{evidence}"
        super().__init__(message)


class ProcessExited(InfraError):
    """A process exited while the harness waited for it: no point waiting out the deadline."""


class ToxiproxyError(InfraError):
    """The Toxiproxy API answered with an error or not at all."""


class TargetError(ChaosError):
    """A process of the system under test failed to start or crashed unexpectedly."""

    exit_code = 3


class IncompleteRun(ChaosError):
    """A run folder whose run did not finish (interrupted) or whose history cannot be read.

    Inconclusive, not broken: checking half a run would report invariants it never finished
    testing (an interrupted drain reads as "never recovered").
    """

    exit_code = 2


class InternalError(ChaosError):
    """Something the harness did not plan for; 5 keeps it apart from 1, "an invariant broke"."""

    exit_code = 5


class BasePortLocked(InfraError):
    """Another run or pytest session is using the infrastructure of this base port.

    Two runs on one infra would heal each other's faults and both report passes they did not earn.
    """


class PortInUse(InfraError):
    """A port of the topology's layout is taken by a program that is not this base port's infra."""


class SchemaInvalid(UsageError):
    """An Avro or JSON Schema that does not parse: refused locally, before any registry sees it."""


class SchemaIncompatible(UsageError):
    """The registry refused a schema (HTTP 409): it breaks the subject's compatibility level.

    ``status`` is the registry's HTTP status, ``messages`` what it said was incompatible.
    """

    def __init__(self, message: str, status: int, messages: tuple[str, ...] = ()) -> None:
        self.status = status
        self.messages = messages
        super().__init__(message)


class RegistryError(InfraError):
    """The schema registry did not answer in time, or answered with an error the harness did not plan for.

    ``status`` is the HTTP status when there was an answer (None when there was none).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)
