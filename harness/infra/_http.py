"""JSON over HTTP to the harness's own control planes (Toxiproxy, Kafka Connect), always with a timeout.

A chaos harness must never hang on its own control plane: every call has a deadline, and
a failure raises the caller's error type naming the service, the call, and what to check.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from harness.errors import InfraError

__all__ = ["call_json"]


def call_json(base_url: str, method: str, path: str, body: object | None, *, timeout_s: float, service: str,
              error: type[InfraError], hint: str, detail_chars: int = 300) -> Any:
    """``method path`` with an optional JSON body; the decoded JSON answer, or None when empty."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - loopback only
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")[:detail_chars]
        raise error(f"{service} {method} {path} answered {exc.code}: {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise error(f"{service} at {base_url} did not answer {method} {path} within {timeout_s}s ({exc}); {hint}") from exc
    return json.loads(raw) if raw else None
