"""The order service's schema gate: register each event schema before publishing it, refuse what the registry refuses.

With ``CHAOS_SCHEMA_REGISTRY_URL`` set (the ``schema_registry`` variant, ``targets.variants``)
the service registers its v1 event schema (JSON Schema) under ``<topic>-value`` with
BACKWARD compatibility when it starts, as "use a schema registry from day one" says. When
its producer code starts writing another version (the drift hook, ``targets.drift``), it
registers that schema first; the registry judges compatibility and answers 409 for a
breaking change. The service then refuses the new version and keeps writing v1, logging
the refusal at ERROR: the mistake is caught at registration, before any consumer sees it,
and nothing is lost.

Standard library only (Confluent's REST API, which Apicurio serves), every call with a timeout.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request

from targets.drift import drifted, report_refused

__all__ = ["SchemaGate", "event_schema"]

log = logging.getLogger("schema-gate")
_TIMEOUT_S = 5.0
_CONTENT = "application/vnd.schemaregistry.v1+json"
_V1_FIELDS = {"event_id": "string", "type": "string", "order_id": "string", "seq": "integer",
              "schema_version": "integer", "correlation_id": "string", "occurred_at": "string",
              "customer": "string", "amount_cents": "integer"}


def event_schema(sample: dict[str, object]) -> str:
    """The JSON Schema of an event shaped like ``sample``: every field it has, required, typed as in v1."""
    props = {name: {"type": _V1_FIELDS.get(name, "integer" if isinstance(value, int) else "string")}
             for name, value in sample.items()}
    return json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "properties": props,
                       "required": sorted(props)}, sort_keys=True)


class SchemaGate:
    """What the producer may write: the drifted payload if its schema registered, else the v1 payload."""

    def __init__(self, registry_url: str, topic: str) -> None:
        self.base = registry_url.rstrip("/")
        self.subject = f"{topic}-value"
        self.refused = 0  # events written as v1 because their new version was refused
        self._verdicts: dict[str, bool] = {}  # schema text -> registered (True) or refused (False)
        self._lock = threading.Lock()

    def _call(self, method: str, path: str, body: object) -> tuple[int, str]:
        req = urllib.request.Request(f"{self.base}{path}", data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": _CONTENT, "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp:  # noqa: S310 - the harness's registry
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode("utf-8", "replace")

    def start(self, v1_sample: bytes) -> None:
        """Register v1, then make the subject BACKWARD compatible; raises if the registry is unusable."""
        if not self._register(event_schema(json.loads(v1_sample))):
            raise RuntimeError(f"schema registry refused the v1 event schema under {self.subject}")
        subject = urllib.parse.quote(self.subject, safe="")
        status, text = self._call("PUT", f"/config/{subject}", {"compatibility": "BACKWARD"})
        if status >= 300:
            raise RuntimeError(f"schema registry refused BACKWARD for {self.subject}: HTTP {status} {text[:200]}")

    def _register(self, schema: str) -> bool:
        with self._lock:
            if schema in self._verdicts:
                return self._verdicts[schema]
            subject = urllib.parse.quote(self.subject, safe="")
            status, text = self._call("POST", f"/subjects/{subject}/versions", {"schemaType": "JSON", "schema": schema})
            ok = status < 300
            if status == 409:
                log.error("schema refused by the registry (HTTP 409, incompatible with %s under BACKWARD): %s; "
                          "writing v1 instead", self.subject, text[:300])
            elif not ok:
                # Anything else (registry down, a 5xx) is not a verdict on the schema: ask again next time.
                log.warning("schema registration failed (HTTP %s): %s", status, text[:300])
                return False
            self._verdicts[schema] = ok
            return ok

    def payload(self, v1: bytes) -> bytes:
        """``v1`` as the producer currently writes it, unless that version's schema was refused."""
        out = drifted(v1)
        if out is v1:
            return v1
        if self._register(event_schema(json.loads(out))):
            return out
        with self._lock:
            self.refused += 1
            report_refused(self.refused)
        return v1
