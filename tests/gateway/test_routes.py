"""The declared route table: canonical paths, whole-segment matching, methods, query parameters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config.loader import load_config_text
from gateway.config.schema import GatewayConfig, PassthroughRoute
from gateway.errors import ConfigError, InvalidRequestError, MethodNotAllowedError, NotFoundError
from gateway.routes import RouteTable, canonical_path, config_routes, validate_template

TABLE = RouteTable(
    config_routes(GatewayConfig.model_fields["passthrough_routes"].get_default(call_default_factory=True))
)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        (b"/v1/chat/completions", "/v1/chat/completions"),
        (b"/v1//chat/completions/", "/v1/chat/completions"),
        (b"//v1///chat//completions//", "/v1/chat/completions"),
        (b"/%76%31/chat/completions", "/v1/chat/completions"),
        (b"/v1/models/ft%3Agpt-4o%3Aacme", "/v1/models/ft:gpt-4o:acme"),
        (b"/v1/models/llama-3.1-8b", "/v1/models/llama-3.1-8b"),
        (b"/", "/"),
    ],
)
def test_canonical_spellings(raw: bytes, canonical: str) -> None:
    assert canonical_path(raw) == canonical


@pytest.mark.parametrize(
    "raw",
    [
        b"/v1/models/..%2Fchat%2Fcompletions",
        b"/v1/models/../chat/completions",
        b"/v1/models/x/../../chat/completions",
        b"/v1/models/%2e%2e/chat/completions",
        b"/v1/models/%2E%2E/chat/completions",
        b"/v1/./chat/completions",
        b"/v1/chat%2Fcompletions",
        b"/v1/chat%2fcompletions",
        b"/v1/chat%5Ccompletions",
        b"/v1/chat\\completions",
        b"/v1/models/%252e%252e",
        b"/v1/models/%",
        b"/v1/models/%zz",
        b"/v1/models/caf\xc3\xa9",
        b"/v1/models/a%00b",
        b"/v1/models/a%20b",
        b"v1/chat/completions",
    ],
)
def test_ambiguous_spellings_are_refused(raw: bytes) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        canonical_path(raw)
    assert caught.value.status == 400 and caught.value.code == "invalid_path"


@given(st.binary(max_size=64))
def test_a_canonical_path_is_a_fixed_point_and_never_holds_a_dot_segment(raw: bytes) -> None:
    try:
        path = canonical_path(b"/" + raw)
    except InvalidRequestError:
        return
    assert canonical_path(path.encode()) == path
    assert "/../" not in path + "/" and "/./" not in path + "/" and "//" not in path and "%" not in path


def test_parameters_match_exactly_one_segment() -> None:
    match = TABLE.resolve("GET", b"/v1/models/mock-small", b"")
    assert match.route.template == "/v1/models/{model}" and match.path == "/v1/models/mock-small"
    with pytest.raises(NotFoundError):
        TABLE.resolve("GET", b"/v1/models/a/b", b"")
    with pytest.raises(NotFoundError):
        TABLE.resolve("GET", b"/v1/models/a/chat/completions", b"")


def test_methods_are_declared_per_route() -> None:
    assert TABLE.resolve("POST", b"/v1/chat/completions", b"").route.is_model_operation
    for method in ("GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"):
        with pytest.raises(MethodNotAllowedError) as caught:
            TABLE.resolve(method, b"/v1/chat/completions", b"")
        assert caught.value.headers == {"allow": "POST"}
    with pytest.raises(MethodNotAllowedError):
        TABLE.resolve("DELETE", b"/v1/models/ft:gpt-4o:acme", b"")


def test_only_declared_query_parameters_are_forwarded_re_encoded() -> None:
    assert TABLE.resolve("POST", b"/v1/messages", b"beta=true").query == "beta=true"
    assert TABLE.resolve("POST", b"/v1/chat/completions", b"").path_qs == "/v1/chat/completions"
    with pytest.raises(InvalidRequestError) as caught:
        TABLE.resolve("POST", b"/v1/chat/completions", b"api-version=1")
    assert caught.value.param == "api-version"
    with pytest.raises(InvalidRequestError):
        TABLE.resolve("POST", b"/v1/messages", b"beta=true&x=%ZZ")


@pytest.mark.parametrize(
    "template",
    ["/v1/models/*", "/v1/models/**", "v1/models", "/v1//models", "/v1/models/", "/v1/../x", "/v1/{Model}"],
)
def test_templates_are_whole_segments(template: str) -> None:
    with pytest.raises(ValueError):
        validate_template(template)


def _config(routes: str) -> str:
    return f"""
upstreams: [{{name: u, url: "http://127.0.0.1:1"}}]
tiers: {{default: {{}}}}
{routes}
"""


def test_the_old_glob_key_is_refused_with_its_replacement() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(_config('passthrough_paths: ["/v1/models/*"]'))
    assert "passthrough_routes" in str(caught.value)


@pytest.mark.parametrize(
    ("routes", "key"),
    [
        ('passthrough_routes: [{path: "/v1/models/*", methods: [GET]}]', "passthrough_routes[0].path"),
        ('passthrough_routes: [{path: "/v1/x", methods: []}]', "passthrough_routes[0].methods"),
        ('passthrough_routes: [{path: "/v1/x", methods: [TRACE]}]', "passthrough_routes[0].methods[0]"),
        ('passthrough_routes: [{path: "/v1/chat/completions", methods: [POST]}]', "passthrough_routes"),
        (
            'passthrough_routes: [{path: "/v1/a/{x}", methods: [GET]}, {path: "/v1/a/{y}", methods: [GET]}]',
            "passthrough_routes",
        ),
    ],
)
def test_bad_passthrough_routes_are_refused_naming_the_key(routes: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(_config(routes))
    assert caught.value.path == key


def test_an_operator_route_is_served_with_its_methods_only() -> None:
    loaded = load_config_text(
        _config('passthrough_routes: [{path: "/v1/files/{id}", methods: [GET, DELETE]}]')
    )
    table = RouteTable(config_routes(loaded.gateway.passthrough_routes))
    assert table.resolve("DELETE", b"/v1/files/f-1", b"").path == "/v1/files/f-1"
    with pytest.raises(NotFoundError):
        table.resolve("GET", b"/v1/models", b"")  # replacing the list drops the defaults
    assert PassthroughRoute(path="/v1/x", methods=["GET"]).protocol == "openai"


def test_a_parameter_may_end_in_a_literal_suffix_within_its_segment() -> None:
    assert validate_template("/v1beta/models/{model}:generateContent")
    for bad in ("/v1beta/models/{model}*", "/v1/{a}{b}", "/v1/{a}:x{b}", "/v1/x:{a}"):
        with pytest.raises(ValueError):
            validate_template(bad)
    match = TABLE.resolve("POST", b"/v1beta/models/gemini-2.5-flash:generateContent", b"")
    assert match.route.name == "generateContent" and match.params == {"model": "gemini-2.5-flash"}
    for path in (
        b"/v1beta/models/:generateContent",
        b"/v1beta/models/a:b:generateContent",
        b"/v1beta/models/x",
    ):
        assert TABLE.find(path.decode()) is None or TABLE.find(path.decode()).name != "generateContent"  # type: ignore[union-attr]


def test_the_most_literal_template_wins_whatever_the_order() -> None:
    passthrough = PassthroughRoute.model_validate({"path": "/v1/models/{model}", "methods": ["GET"]})
    table = RouteTable(list(reversed(config_routes([passthrough]))))
    assert table.find("/v1/models/gemini:generateContent").name == "generateContent"  # type: ignore[union-attr]
    assert table.find("/v1/models/gpt-4o").name == "/v1/models/{model}"  # type: ignore[union-attr]


def test_required_query_values_and_the_credential_parameter() -> None:
    stream = b"/v1beta/models/g:streamGenerateContent"
    match = TABLE.resolve("POST", stream, b"key=secret&alt=sse")
    assert (match.query, match.credential, match.path_qs) == (
        "alt=sse",
        "secret",
        stream.decode() + "?alt=sse",
    )
    assert "secret" not in repr(match)
    for query, param in (
        (b"", "alt"),
        (b"alt=json", "alt"),
        (b"alt=sse&alt=sse", "alt"),
        (b"key=a&key=b", "key"),
    ):
        with pytest.raises(InvalidRequestError) as caught:
            TABLE.resolve("POST", stream, query)
        assert caught.value.param == param
    # Only Gemini routes carry a key in the query: elsewhere it is an unknown parameter, never a credential.
    with pytest.raises(InvalidRequestError):
        TABLE.resolve("POST", b"/v1/chat/completions", b"key=secret")


def test_a_passthrough_route_cannot_take_an_operations_shape() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(
            _config('passthrough_routes: [{path: "/v1beta/models/{m}:generateContent", methods: [GET]}]')
        )
    assert "model operation" in str(caught.value)
