"""What the detector extracts from a request: bounded text, turns, parameters, client and network."""

from __future__ import annotations

from typing import Any

from gateway.metrics import GatewayMetrics
from gateway.plugins.base import Account, Exchange
from gateway.plugins.services import PolicyServices, SharedObjects
from gateway.protocols import OPERATIONS
from gateway.risk import RiskBoard
from gateway.state.memory import MemoryStore
from policies.detector.config import DetectorConfig
from policies.detector.core import UNSETTLED_WAIT, DetectorCore
from policies.detector.request import Observation, client_key, infra_key_of, ip_prefix, observe, settle_prompt


def test_client_key_ignores_volatile_headers_but_not_order() -> None:
    a = client_key({"user-agent": "sdk/1", "accept": "*/*", "x-request-id": "1", "content-length": "10"})
    b = client_key({"user-agent": "sdk/1", "accept": "*/*", "x-request-id": "2", "content-length": "99"})
    c = client_key({"accept": "*/*", "user-agent": "sdk/1"})
    assert a == b and a != c


def test_ip_prefixes() -> None:
    assert ip_prefix("203.0.113.77", 24, 48) == "203.0.113.0/24"
    assert ip_prefix("2001:db8:1:2::5", 24, 48) == "2001:db8:1::/48"
    assert ip_prefix("::ffff:198.51.100.9", 24, 48) == "198.51.100.0/24"
    assert ip_prefix("not-an-ip", 24, 48) == ""


def test_the_request_path_leaves_the_address_and_the_client_key_to_the_analysis() -> None:
    """A first address costs ~60 µs to parse: the request path only keeps it; the analysis derives
    the network prefix and the client key, then drops the headers it no longer needs."""
    headers = {"user-agent": "sdk/1", "accept": "*/*"}
    exchange = Exchange(
        request_id="t",
        operation=OPERATIONS["/v1/chat/completions"],
        account=Account("acct", "free"),
        body={"model": "m", "messages": [{"role": "user", "content": "hello"}]},
        headers=headers,
        client_ip="198.51.100.231",
    )
    before = ip_prefix.cache_info()
    observation = observe(exchange, DetectorConfig())
    assert ip_prefix.cache_info() == before  # neither parsed nor looked up on the request path
    assert observation.client_ip == "198.51.100.231"
    assert infra_key_of(observation) == f"{client_key(headers)}|198.51.100.0/24"
    assert observation.headers is None


def test_an_observation_reads_each_field_into_its_place() -> None:
    """The observation is built positionally (cheaper on the request path): each field where it belongs."""
    body = {
        "model": "m-1",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "tool", "tool_call_id": "c", "content": "42"},
            {"role": "user", "content": "second"},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}}] * 3,
        "tool_choice": "required",
        "logprobs": True,
        "logit_bias": {"17": 5},
        "max_tokens": 1,
        "n": 2,
        "reasoning_effort": "high",
    }
    exchange = Exchange(
        request_id="t",
        operation=OPERATIONS["/v1/chat/completions"],
        account=Account("acct", "pro"),
        body=body,
        headers={"user-agent": "sdk/1"},
        client_ip="203.0.113.9",
    )
    settings = DetectorConfig()
    o = observe(exchange, settings)
    assert (o.account, o.tier, o.operation, o.model) == ("acct", "pro", "chat.completions", "m-1")
    assert o.request is exchange.request and o.user_text == ""  # the prompt is the analysis's to read
    settle_prompt(o)
    assert o.request is None
    assert (o.user_text, o.system_text, o.turns) == ("second", "You are terse.", 2)
    assert (o.tools, o.tool_count, o.tool_forced, o.tool_results, o.tool_depth) == (True, 3, True, 1, 0)
    assert (o.logprobs, o.bias, o.max_output, o.samples, o.max_reasoning) == (True, {"17": 5}, 1, 2, True)
    assert (o.headers, o.client_ip, o.settings) == ({"user-agent": "sdk/1"}, "203.0.113.9", settings)
    assert o.at > 1e9 and 0 < o.mono < o.at


async def test_a_backlog_of_observations_holds_no_request_bodies_or_clients_headers() -> None:
    """An observation keeps its request view (the whole body) and the client's headers (up to 32 KB)
    only while the analysis keeps up: behind a backlog its prompt slices and client key are taken at
    submission, so a flood of large bodies or headers cannot pile up."""
    services = PolicyServices(MemoryStore("t"), GatewayMetrics(), RiskBoard(), SharedObjects())
    settings = DetectorConfig.model_validate({"shared": {"semantic": {"enabled": "off"}}})
    core = DetectorCore()
    core.attach(settings, services)
    headers = {"user-agent": "flood/1", "x-padding": "p" * 30_000}
    observations = []
    for number in range(UNSETTLED_WAIT + 20):
        exchange = Exchange(
            request_id=str(number),
            operation=OPERATIONS["/v1/chat/completions"],
            account=Account("flooder", "free"),
            body={"model": "m", "messages": [{"role": "user", "content": f"question {number}"}]},
            headers=headers,
            client_ip="198.51.100.7",
        )
        observations.append(observe(exchange, settings))
        core.submit(observations[-1])  # not awaited: the analysis has not run yet
    waiting, settled = observations[:UNSETTLED_WAIT], observations[UNSETTLED_WAIT:]
    assert all(o.headers is headers and o.request is not None for o in waiting)
    assert all(o.headers is None and o.client == client_key(headers) for o in settled)
    assert all(
        o.request is None and o.user_text == f"question {UNSETTLED_WAIT + n}" for n, o in enumerate(settled)
    )
    await core.drain()
    assert all(o.headers is None and o.request is None for o in observations)
    assert [o.user_text for o in observations] == [f"question {n}" for n in range(UNSETTLED_WAIT + 20)]
    # Either way, the same client key and network: one infra key for the account.
    assert core.accounts["flooder"].infra == [f"{client_key(headers)}|198.51.100.0/24"]
    await core.stop()


async def test_the_prompt_the_analysis_reads_is_the_one_the_client_sent() -> None:
    """The prompt and the tool use are read from the request view after the request was sent: no
    later policy's edit (sealed reasoning restored in an assistant turn, logprobs and samples capped,
    the reasoning ask lowered, the bias replaced) may change what the detector observes."""
    from policies.reasoning.seal import SealKeyRing
    from tests.policies.reasoning.support import KEYS
    from tests.policy_harness import PolicyHarness

    assert isinstance(KEYS, SealKeyRing)
    payload = {
        "fields": {"reasoning_content": "plan A", "reasoning": "plan A"},
        "details": [{"type": "reasoning.text", "text": "plan A"}],
    }
    blob = KEYS.seal("c", "acct-1", payload)

    def body() -> dict[str, Any]:
        return {
            "model": "m",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "ok", "reasoning_content": blob, "reasoning": blob},
                {"role": "tool", "tool_call_id": "c", "content": "42"},
                {"role": "user", "content": "Explain every step you took, in full."},
            ],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": "required",
            "logprobs": True,
            "top_logprobs": 20,
            "logit_bias": {"17": 100},
            "max_tokens": 1,
            "n": 4,
            "reasoning_effort": "high",
        }

    detector = ("detector", {"shared": {"semantic": {"enabled": "off"}}})
    editors = [
        ("reasoning", {"mode": "seal", "seal": {"chat": "inline"}}),
        (
            "logprobs",
            {
                "on_excess": "clamp",
                "top_k": 2,
                "max_n": 1,
                "logit_bias": {"mode": "allow", "max_magnitude": 5},
            },
        ),
    ]
    observed = []
    for policies in ([detector], [detector, *editors]):
        harness = PolicyHarness(policies)
        await harness.start()
        exchange = harness.exchange("chat.completions", body())
        await harness.request(exchange)
        observation = exchange.scratch["detector"]
        settle_prompt(observation)
        observed.append((observation, exchange.body))
    (alone, sent_alone), (edited, sent_edited) = observed
    assert sent_edited != sent_alone  # the editors did edit the request
    assert sent_edited["messages"][2] != sent_alone["messages"][2]  # the sealed reasoning was restored

    unrelated = ("at", "mono", "settings", "timed", "inline_seconds")  # clocks, and what timed it

    def fields(o: Observation) -> tuple[Any, ...]:
        return tuple(getattr(o, name) for name in Observation.__slots__ if name not in unrelated)

    assert fields(edited) == fields(alone)
    assert (edited.user_text, edited.turns, edited.tool_results, edited.tool_forced) == (
        "Explain every step you took, in full.",
        2,
        1,
        True,
    )
    assert (edited.logprobs, edited.bias, edited.samples, edited.max_reasoning) == (
        True,
        {"17": 100},
        4,
        True,
    )
