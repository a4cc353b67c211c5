"""The declared route table: the only paths, methods and query parameters the gateway serves.

Deny by default. A request reaches the upstream only through a route declared
here (the model operations) or in the YAML (``passthrough_routes``), matched
by method and by whole path segments: ``/v1/models/{id}`` matches one segment,
never a ``/``; ``/v1beta/models/{model}:generateContent`` matches one segment that
ends in the literal suffix, the parameter being the (non-empty) rest, which may not
hold the suffix's first character (``a:b:generateContent`` is no model ``a:b``:
servers disagree on which ``:`` starts the verb). The path is read from the raw request target and brought to
one canonical spelling first:

- repeated slashes collapse and a trailing slash is dropped (they change no
  route's meaning, and ``/v1//chat/completions/`` has always been policed);
- a percent-escape of an ordinary path character is decoded (``%76`` is ``v``);
- an escaped ``/``, ``\\``, ``.`` or ``%``, a literal backslash, a ``.`` or
  ``..`` segment, a control or non-ASCII byte: 400, never "normalised", since
  servers disagree on what they mean and that disagreement is the attack.

What goes upstream is the route's canonical path and the query parameters the
route declares, re-encoded; never the client's spelling of either. A route's
query declaration is ``name`` (any value) or ``name=value`` (required, exactly
that value). The query parameter in which the route's API family carries the
client's credential (Gemini's ``?key=``) is taken out of the query, handed to
authentication and never forwarded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qsl, urlencode

from gateway.errors import InvalidRequestError, MethodNotAllowedError, NotFoundError
from gateway.protocols import NO_PARAMS, OPERATIONS, Operation, ProtocolName

# RFC 3986 pchar without pct-encoded: what a canonical segment may hold. Templates are stricter
# (letters, digits, '-._~:@'), so that no literal segment looks like a glob.
_SEGMENT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@")
# Escapes that are decoded: those of ordinary characters, except '.' (dot segments) and '%'.
_DECODABLE = _SEGMENT_CHARS - {"."}
_ESCAPE = re.compile(rb"%([0-9A-Fa-f]{2})")
_TEMPLATE_SEGMENT = re.compile(
    r"^(\{[a-z_][a-z0-9_]*\}(?:[A-Za-z0-9\-._~:@]+)?|[A-Za-z0-9\-_~:@][A-Za-z0-9\-._~:@]*)$"
)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
OPERATION_PATHS = frozenset(OPERATIONS)
# A template segment: a literal (name None), a parameter (suffix ''), or a parameter then a literal suffix.
_Segment = tuple[str | None, str]


class PassthroughSpec(Protocol):
    """What the YAML declares of a passthrough route (``gateway.config.schema.PassthroughRoute``)."""

    @property
    def path(self) -> str: ...
    @property
    def methods(self) -> Sequence[str]: ...
    @property
    def protocol(self) -> ProtocolName: ...
    @property
    def query(self) -> Sequence[str]: ...


class NonCanonicalPathError(InvalidRequestError):
    """A request path whose meaning servers disagree on (dot segments, escaped separators)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The request path is not allowed: {reason}.", code="invalid_path")


def canonical_path(raw: bytes) -> str:
    """The one spelling of a raw request path (bytes, before ``?``); NonCanonicalPathError if it has none."""
    if not raw.startswith(b"/"):
        raise NonCanonicalPathError("it must start with '/'")
    if b"%" in raw:

        def decode(match: re.Match[bytes]) -> bytes:
            char = chr(int(match.group(1), 16))
            if char not in _DECODABLE:
                raise NonCanonicalPathError(f"'%{match.group(1).decode()}' encodes a separator or dot")
            return char.encode()

        raw = _ESCAPE.sub(decode, raw)
        if b"%" in raw:
            raise NonCanonicalPathError("a '%' that is not a valid escape")
    try:
        path = raw.decode("ascii")
    except UnicodeDecodeError:
        raise NonCanonicalPathError("non-ASCII bytes") from None
    segments = [segment for segment in path.split("/") if segment]
    for segment in segments:
        if segment in (".", ".."):
            raise NonCanonicalPathError("dot segments")
        if not _SEGMENT_CHARS.issuperset(segment):
            raise NonCanonicalPathError("characters outside the path alphabet")
    return "/" + "/".join(segments)


@dataclass(frozen=True, slots=True)
class Route:
    """One declared route: a path template, its methods, its protocol and what it is.

    ``operation`` is set for model operations (the policies read and rewrite their
    bodies and responses); passthrough routes carry the ``passthrough`` operation:
    the account's block, quota and detector observation apply, the response body
    is relayed as the upstream wrote it.
    """

    name: str
    template: str
    methods: frozenset[str]
    operation: Operation
    query: frozenset[str] = frozenset()
    # From ``query``, once: the names accepted, and those required with their one value.
    query_names: frozenset[str] = field(init=False, repr=False, compare=False)
    required_query: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "query_names", frozenset(entry.partition("=")[0] for entry in self.query))
        required = {name: value for name, sep, value in (e.partition("=") for e in self.query) if sep}
        object.__setattr__(self, "required_query", required)

    @property
    def protocol(self) -> ProtocolName:
        return self.operation.protocol

    @property
    def is_model_operation(self) -> bool:
        return self.operation.name != "passthrough"

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(s for s in self.template.split("/") if s)

    def matchers(self) -> tuple[_Segment, ...]:
        """Each segment as (parameter name or None, literal text or the parameter's suffix)."""
        out: list[_Segment] = []
        for segment in self.segments:
            if segment.startswith("{"):
                close = segment.index("}")
                out.append((segment[1:close], segment[close + 1 :]))
            else:
                out.append((None, segment))
        return tuple(out)


@dataclass(frozen=True, slots=True)
class RouteMatch:
    route: Route
    path: str  # the canonical path: what the policies see and the upstream receives
    query: str  # the declared query parameters, re-encoded ('' when none)
    params: Mapping[str, str] = field(default_factory=dict)  # what the template's parameters matched
    credential: str | None = field(default=None, repr=False)  # the client's, from the query (never forwarded)

    @property
    def path_qs(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path


def validate_template(template: str) -> str:
    """``template`` if it is a well-formed route template (whole segments, ``{name}`` parameters)."""
    if not template.startswith("/") or template != "/" + "/".join(s for s in template.split("/") if s):
        raise ValueError("must start with '/' and have no empty segments or trailing '/'")
    for segment in template.split("/")[1:]:
        if segment in (".", "..") or not _TEMPLATE_SEGMENT.match(segment):
            raise ValueError(
                f"segment '{segment}' is neither a literal of path characters nor a '{{name}}' parameter "
                "(globs are not supported: a parameter matches exactly one segment)"
            )
    return template


def operation_routes() -> list[Route]:
    """The model operations: POST only, with the query parameters each operation declares."""
    return [
        Route(op.name, op.path, frozenset({"POST"}), op, frozenset(op.query)) for op in OPERATIONS.values()
    ]


def config_routes(passthrough: Iterable[PassthroughSpec]) -> list[Route]:
    """The model operations and the YAML's passthrough routes (``passthrough_routes``)."""
    routes = operation_routes()
    for spec in passthrough:
        operation = Operation("passthrough", spec.path, spec.protocol)
        routes.append(Route(spec.path, spec.path, frozenset(spec.methods), operation, frozenset(spec.query)))
    return routes


class RouteTable:
    """Resolves (method, raw path, raw query) to a declared route, or the error the client gets."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)
        self._exact: dict[str, Route] = {}
        self._templated: dict[int, list[tuple[Route, tuple[_Segment, ...]]]] = {}
        for route in self.routes:
            matchers = route.matchers()
            if any(name is not None for name, _ in matchers):
                self._templated.setdefault(len(matchers), []).append((route, matchers))
            else:
                if route.template in self._exact:
                    raise ValueError(f"route {route.template} is declared twice")
                self._exact[route.template] = route
        for candidates in self._templated.values():
            # The most literal template wins (`{model}:generateContent` before `{model}`), whatever the
            # order of declaration.
            candidates.sort(key=lambda entry: -sum(len(text) for _, text in entry[1]))

    def find(self, path: str) -> Route | None:
        """The route whose template matches canonical ``path`` (literal routes win over templated)."""
        found = self.match(path)
        return found[0] if found is not None else None

    def match(self, path: str) -> tuple[Route, Mapping[str, str]] | None:
        """The route matching canonical ``path`` and what its parameters matched."""
        route = self._exact.get(path)
        if route is not None:
            return route, NO_PARAMS
        segments = path.split("/")[1:]
        for candidate, matchers in self._templated.get(len(segments), ()):
            params = _bind(matchers, segments)
            if params is not None:
                return candidate, params
        return None

    def resolve(self, method: str, raw_path: bytes, raw_query: bytes) -> RouteMatch:
        path = canonical_path(raw_path)
        found = self.match(path)
        if found is None:
            raise NotFoundError(f"Unknown path {path}.", code="unknown_route")
        route, params = found
        if method not in route.methods:
            allowed = ", ".join(sorted(route.methods))
            raise MethodNotAllowedError(
                f"{path} accepts {allowed} only.", code="method_not_allowed", headers={"allow": allowed}
            )
        query, credential = _declared_query(route, raw_query)
        return RouteMatch(route, path, query, params, credential)


def _bind(matchers: tuple[_Segment, ...], segments: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for (name, text), segment in zip(matchers, segments, strict=True):
        if name is None:
            if segment != text:
                return None
        elif not text:
            params[name] = segment
        else:
            value = segment[: -len(text)]
            if not segment.endswith(text) or not value or text[0] in value:
                return None
            params[name] = value
    return params


def _declared_query(route: Route, raw_query: bytes) -> tuple[str, str | None]:
    """The declared query parameters re-encoded, and the credential taken out of them (if any)."""
    required = route.required_query
    if not raw_query and not required:
        return "", None
    pairs: list[tuple[str, str]] = []
    if raw_query:
        try:
            pairs = parse_qsl(raw_query.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            raise InvalidRequestError("The query string is malformed.", code="invalid_query") from None
    credential: str | None = None
    credential_name = route.operation.adapter.credential_query
    if credential_name is not None:
        credentials = [value for name, value in pairs if name == credential_name]
        if len(credentials) > 1:
            raise InvalidRequestError(
                f"The query parameter '{credential_name}' is given more than once.",
                param=credential_name,
                code="invalid_query",
            )
        if credentials:
            credential = credentials[0]
            pairs = [(name, value) for name, value in pairs if name != credential_name]
    seen: set[str] = set()
    for name, value in pairs:
        if name not in route.query_names:
            accepted = ", ".join(sorted(route.query)) or "none"
            raise InvalidRequestError(
                f"Unknown query parameter '{name}' for {route.template} (accepted: {accepted}).",
                param=name,
                code="unknown_parameter",
            )
        if name in required and (value != required[name] or name in seen):
            raise InvalidRequestError(
                f"The query parameter '{name}' must be '{required[name]}' (once) for {route.template}.",
                param=name,
                code="invalid_value",
            )
        seen.add(name)
    for name, value in required.items():
        if name not in seen:
            raise InvalidRequestError(
                f"{route.template} requires the query parameter '{name}={value}'.",
                param=name,
                code="missing_required_parameter",
            )
    return (urlencode(pairs) if pairs else ""), credential
