"""A small Toxiproxy v2 API client where every call has a timeout.

The PyPI client toxiproxy-python has no request timeouts and keeps host and port as
class globals; a chaos harness must never hang on its own control plane, so this one
uses urllib with an explicit timeout on each call and raises ToxiproxyError with the
API's own answer.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import Enum
from typing import Any

from harness.errors import ToxiproxyError
from harness.infra._http import call_json

__all__ = ["Proxy", "Stream", "ToxiproxyClient"]


class Stream(Enum):
    UPSTREAM = "upstream"  # client -> service
    DOWNSTREAM = "downstream"  # service -> client


@dataclass(frozen=True, slots=True)
class Proxy:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[str, ...]


class ToxiproxyClient:
    def __init__(self, base_url: str, timeout_s: float = 3.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str, body: object | None = None) -> Any:
        return call_json(self.base_url, method, path, body, timeout_s=self.timeout_s, service="Toxiproxy",
                         error=ToxiproxyError, hint="is the infra up? Run `chaos infra status`.")

    def version(self) -> str:
        request = urllib.request.Request(self.base_url + "/version")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
                return response.read().decode().strip()
        except (urllib.error.URLError, OSError) as exc:
            raise ToxiproxyError(f"Toxiproxy at {self.base_url} is not answering: {exc}") from exc

    def proxies(self) -> dict[str, Proxy]:
        raw = self._call("GET", "/proxies")
        return {name: _proxy(p) for name, p in raw.items()}

    def create(self, name: str, listen: str, upstream: str) -> Proxy:
        return _proxy(self._call("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream, "enabled": True}))

    def delete(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{_quote(name)}")

    def set_enabled(self, name: str, enabled: bool) -> Proxy:
        return _proxy(self._call("POST", f"/proxies/{_quote(name)}", {"enabled": enabled}))

    def add_toxic(self, proxy: str, name: str, kind: str, stream: Stream, toxicity: float, attributes: dict[str, int]) -> None:
        self._call(
            "POST",
            f"/proxies/{_quote(proxy)}/toxics",
            {"name": name, "type": kind, "stream": stream.value, "toxicity": toxicity, "attributes": attributes},
        )

    def update_toxic(self, proxy: str, name: str, toxicity: float | None = None,
                     attributes: dict[str, int] | None = None) -> None:
        """Change a toxic in place (the PyPI client cannot): e.g. raise a latency mid-fault."""
        body: dict[str, object] = {}
        if toxicity is not None:
            body["toxicity"] = toxicity
        if attributes is not None:
            body["attributes"] = attributes
        self._call("POST", f"/proxies/{_quote(proxy)}/toxics/{_quote(name)}", body)

    def toxics(self, proxy: str) -> list[dict[str, Any]]:
        """The toxics on one proxy as the API reports them (name, type, stream, toxicity, attributes)."""
        return list(self._call("GET", f"/proxies/{_quote(proxy)}/toxics") or ())

    def remove_toxic(self, proxy: str, name: str) -> None:
        self._call("DELETE", f"/proxies/{_quote(proxy)}/toxics/{_quote(name)}")

    def reset(self) -> None:
        """Enable every proxy and remove every toxic: the heal-all."""
        self._call("POST", "/reset")


def _quote(name: str) -> str:
    import urllib.parse

    return urllib.parse.quote(name, safe="")


def _proxy(raw: dict[str, Any]) -> Proxy:
    return Proxy(
        name=raw["name"],
        listen=raw["listen"],
        upstream=raw["upstream"],
        enabled=bool(raw["enabled"]),
        toxics=tuple(t["name"] for t in raw.get("toxics") or ()),
    )
