"""A small typed client of Confluent's Schema Registry API, and the local checks before it.

Vocabulary (Confluent's):
  subject        the name a schema's versions live under; with the default TopicNameStrategy
                 a topic's value schema is ``<topic>-value`` and its key schema ``<topic>-key``
  version        1, 2, ... per subject; an id is global and shared by identical schemas
  compatibility  what a new version must keep: BACKWARD (new readers read old data; the
                 default), FORWARD (old readers read new data), FULL (both), NONE (anything)

The registry decides compatibility itself (Apicurio, or a user's own Confluent registry); the
harness never re-implements those rules. What the harness does check, before sending, is that
a schema parses at all: fastavro's ``parse_schema`` for Avro and the jsonschema library's
``check_schema`` (for the schema's own draft) for JSON Schema. A schema that does not is refused
with one line (``SchemaInvalid``, exit 4) naming the subject, what is wrong, and how to fix it.

Every call has a timeout. A registry that refuses a schema as incompatible answers HTTP 409:
``register`` raises ``SchemaIncompatible`` (its ``status`` is 409), and ``check_compatibility``
returns a ``Compatibility`` verdict instead of raising.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from enum import Enum
from typing import Any

from harness.errors import RegistryError, SchemaIncompatible, SchemaInvalid, UsageError

__all__ = ["CompatibilityCheck", "CompatibilityLevel", "RegisteredSchema", "RegistryClient", "Schema", "SchemaType",
           "parse_schema", "validate_registry_url"]

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
_URL = re.compile(r"https?://[^\s/?#@]+(?::[0-9]{1,5})?(?:/[^\s?#]*)?")


class SchemaType(Enum):
    """The schema languages the harness registers (Confluent's ``schemaType``)."""

    AVRO = "AVRO"
    JSON = "JSON"


class CompatibilityLevel(Enum):
    BACKWARD = "BACKWARD"
    FORWARD = "FORWARD"
    FULL = "FULL"
    NONE = "NONE"


@dataclass(frozen=True, slots=True)
class Schema:
    """A schema's text and language; build it with ``parse_schema`` so it is known to parse."""

    text: str
    type: SchemaType


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    subject: str
    id: int  # global: identical schemas share it, and serializers put it in every record's header
    version: int


@dataclass(frozen=True, slots=True)
class CompatibilityCheck:
    compatible: bool
    messages: tuple[str, ...]  # why not, as the registry put it (empty when compatible)


def _one_line(text: str, limit: int = 240) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def parse_schema(text: str, schema_type: SchemaType, subject: str = "the schema") -> Schema:
    """``text`` as a Schema once it parses; SchemaInvalid (one line: what, and how to fix it) otherwise."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        if schema_type is SchemaType.AVRO and text.strip() and not text.strip().startswith(("{", "[", '"')):
            # A bare primitive name is valid Avro in its canonical form only when quoted.
            hint = f'quote a primitive type name (e.g. "\\"{_one_line(text, 20)}\\"") or give a JSON object'
        else:
            hint = "fix the JSON syntax"
        raise SchemaInvalid(f"{schema_type.value} schema for {subject} is not JSON ({exc.msg} at line {exc.lineno} "
                            f"column {exc.colno}); {hint}") from None
    if schema_type is SchemaType.AVRO:
        import fastavro
        from fastavro.schema import SchemaParseException, UnknownType

        try:
            # _write_hint=False: parse only; what fastavro adds for its own writer is not part of the schema.
            fastavro.parse_schema(raw, _write_hint=False)
        except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError, AttributeError) as exc:
            if isinstance(exc, UnknownType):
                what = f"unknown type {exc.name!r}"
            elif isinstance(exc, KeyError):
                what = f"a {exc.args[0]!r} attribute is missing"
            else:
                what = _one_line(str(exc) or type(exc).__name__)
            raise SchemaInvalid(f"AVRO schema for {subject} does not parse ({what}); fix it so that fastavro."
                                "parse_schema accepts it: every record needs a name and fields, each field a name "
                                "and a type, and named types must be defined before use") from None
    else:
        from jsonschema.exceptions import SchemaError
        from jsonschema.validators import validator_for

        if not isinstance(raw, (dict, bool)):
            raise SchemaInvalid(f"JSON schema for {subject} is a JSON {type(raw).__name__}, not a schema; give a JSON "
                                'object such as {"type": "object", "properties": {...}}')
        try:
            validator_for(raw).check_schema(raw)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
            raise SchemaInvalid(f"JSON schema for {subject} is not a valid JSON Schema at {where} "
                                f"({_one_line(exc.message)}); fix that keyword so the schema's draft "
                                f"({raw.get('$schema', 'latest') if isinstance(raw, dict) else 'latest'}) "
                                "accepts it") from None
    return Schema(text, schema_type)


def validate_registry_url(url: str, source: str = "--schema-registry") -> str:
    """``url`` when it is an http(s) URL of a registry's Confluent API; UsageError (exit 4, one line) otherwise.

    Nothing is trimmed: a URL with spaces around it is more likely a quoting mistake than a wish.
    """
    example = "http://127.0.0.1:8081 (Confluent) or http://127.0.0.1:8080/apis/ccompat/v7 (Apicurio)"
    if not _URL.fullmatch(url):
        raise UsageError(f"{source} {url[:80]!r} is not an http(s) URL without spaces, user info, query or "
                         f"fragment; give the base URL of a Confluent-compatible registry, such as {example}")
    try:
        port = urllib.parse.urlsplit(url).port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"{source} {url[:80]!r} has a port outside 1..65535; give one such as {example}")
    return url


class RegistryClient:
    """Confluent's Schema Registry API at ``base_url``, every call with a ``timeout_s`` deadline."""

    def __init__(self, base_url: str, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    # ---- transport -----------------------------------------------------------------------
    def _call(self, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
        """(status, decoded JSON) for any answer; RegistryError when there is none within the timeout."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Content-Type": _CONTENT_TYPE, "Accept": _CONTENT_TYPE})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310 - a URL the user gave
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise RegistryError(f"schema registry at {self.base_url} did not answer {method} {path} within "
                                f"{self.timeout_s}s ({exc}); is it running? (`chaos infra status`, or check the URL "
                                "given with --schema-registry)") from exc
        try:
            return status, json.loads(raw) if raw else None
        except json.JSONDecodeError:
            return status, raw.decode("utf-8", "replace")

    def _ok(self, method: str, path: str, body: object | None = None) -> Any:
        status, answer = self._call(method, path, body)
        if status >= 300:
            raise RegistryError(f"schema registry {method} {path} answered {status}: {_message(answer)}", status)
        return answer

    # ---- the API -------------------------------------------------------------------------
    def subjects(self) -> list[str]:
        return [str(s) for s in self._ok("GET", "/subjects")]

    def versions(self, subject: str) -> list[int]:
        return [int(v) for v in self._ok("GET", f"/subjects/{_quote(subject)}/versions")]

    def register(self, subject: str, schema: Schema) -> RegisteredSchema:
        """Register ``schema`` under ``subject`` (idempotent for the same schema); its id and version.

        SchemaIncompatible (``status`` 409) when it breaks the subject's compatibility level;
        SchemaInvalid when the registry itself cannot parse it.
        """
        parse_schema(schema.text, schema.type, subject)  # refused here, before anything is sent
        status, answer = self._call("POST", f"/subjects/{_quote(subject)}/versions", _body(schema))
        if status == 409:
            messages = _messages(answer)
            raise SchemaIncompatible(f"schema registry refused the {schema.type.value} schema for {subject} (HTTP 409): "
                                     f"{_one_line('; '.join(messages) or _message(answer))}; change the schema so the "
                                     "subject's compatibility level accepts it, or set a looser level for the subject",
                                     status, messages)
        if status == 422:
            raise SchemaInvalid(f"schema registry cannot parse the {schema.type.value} schema for {subject} (HTTP 422): "
                                f"{_one_line(_message(answer))}; fix the schema")
        if status >= 300:
            raise RegistryError(f"schema registry POST /subjects/{subject}/versions answered {status}: "
                                f"{_message(answer)}", status)
        schema_id = int(answer["id"])
        found = self._ok("POST", f"/subjects/{_quote(subject)}", _body(schema))  # what version that id is here
        return RegisteredSchema(subject, schema_id, int(found["version"]))

    def check_compatibility(self, subject: str, schema: Schema, version: str = "latest") -> CompatibilityCheck:
        """Would ``schema`` be accepted under ``subject``'s level against ``version``? Nothing is registered.

        A subject with no versions yet accepts anything: there is nothing to be compatible with.
        """
        parse_schema(schema.text, schema.type, subject)
        path = f"/compatibility/subjects/{_quote(subject)}/versions/{_quote(version)}?verbose=true"
        status, answer = self._call("POST", path, _body(schema))
        if status == 404 and not self._has_versions(subject):
            return CompatibilityCheck(True, ())
        if status == 409:
            return CompatibilityCheck(False, _messages(answer))
        if status == 422:
            raise SchemaInvalid(f"schema registry cannot parse the {schema.type.value} schema for {subject} (HTTP 422): "
                                f"{_one_line(_message(answer))}; fix the schema")
        if status >= 300:
            raise RegistryError(f"schema registry POST {path} answered {status}: {_message(answer)}", status)
        compatible = bool(answer.get("is_compatible"))
        return CompatibilityCheck(compatible, () if compatible else _messages(answer))

    def set_compatibility(self, subject: str | None, level: CompatibilityLevel) -> None:
        """Set ``subject``'s level, or the registry's global one (``None``)."""
        path = "/config" if subject is None else f"/config/{_quote(subject)}"
        self._ok("PUT", path, {"compatibility": level.value})

    def compatibility(self, subject: str | None = None) -> CompatibilityLevel:
        """The level of ``subject``, or the registry's global one (``None``)."""
        path = "/config" if subject is None else f"/config/{_quote(subject)}"
        answer = self._ok("GET", path)
        return CompatibilityLevel(answer.get("compatibilityLevel") or answer.get("compatibility"))

    def delete_subject(self, subject: str) -> None:
        """Soft- then hard-delete ``subject`` (a missing one is no error): tests and runs clean up after themselves."""
        for suffix in ("", "?permanent=true"):
            status, answer = self._call("DELETE", f"/subjects/{_quote(subject)}{suffix}")
            if status >= 300 and status != 404:
                raise RegistryError(f"schema registry DELETE /subjects/{subject}{suffix} answered {status}: "
                                    f"{_message(answer)}", status)

    def _has_versions(self, subject: str) -> bool:
        status, _ = self._call("GET", f"/subjects/{_quote(subject)}/versions")
        return status == 200


def _body(schema: Schema) -> dict[str, str]:
    # Confluent's default schemaType is AVRO; some registries reject the field for it, so it is sent only for JSON.
    return {"schema": schema.text} if schema.type is SchemaType.AVRO else {"schema": schema.text, "schemaType": "JSON"}


def _quote(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _message(answer: Any) -> str:
    if isinstance(answer, dict):
        return str(answer.get("message") or answer.get("detail") or answer)[:300]
    return str(answer)[:300]


def _messages(answer: Any) -> tuple[str, ...]:
    if isinstance(answer, dict):
        raw = answer.get("messages")
        if isinstance(raw, list) and raw:
            return tuple(str(m)[:500] for m in raw[:10])
        if answer.get("message"):
            return (str(answer["message"])[:500],)
    return ()
