"""The request view's readings of the prompt and the tool use are total: any JSON body, no exception.

The detector reads them in its background analysis, after the request was sent (policies.detector
.request.settle_prompt): a reading that raised there would lose the observation instead of refusing
the request, so every shape a client can send must read to something.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocols import OPERATIONS

OPS = sorted({op.name: op for op in OPERATIONS.values()}.values(), key=lambda op: op.name)
ROLES = st.sampled_from(["user", "system", "developer", "assistant", "tool", "model", "function", 7, None])
TYPES = st.sampled_from(["text", "input_text", "tool_result", "tool_use", "function_call_output", "image", 3])

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)


json_values = st.recursive(scalars, _containers, max_leaves=12)
parts = st.fixed_dictionaries(
    {},
    optional={"type": TYPES, "text": json_values, "content": json_values, "tool_use_id": json_values},
)
messages = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "role": ROLES,
            "content": json_values | st.lists(parts | json_values, max_size=4),
            "parts": st.lists(parts | json_values, max_size=3),
            "type": TYPES,
            "output": json_values,
        },
    )
    | json_values,
    max_size=5,
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "messages": messages | json_values,
        "input": messages | json_values,
        "contents": messages | json_values,
        "prompt": json_values | st.lists(st.text(max_size=10) | json_values, max_size=3),
        "system": json_values | st.lists(parts, max_size=2),
        "instructions": json_values,
        "systemInstruction": json_values,
        "system_instruction": json_values,
        "tools": json_values | st.lists(json_values, max_size=3),
        "tool_choice": json_values,
        "toolConfig": json_values,
        "previous_response_id": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(body=bodies, budget=st.integers(min_value=0, max_value=50))
def test_any_body_reads_to_a_prompt_and_a_tool_use(body: dict[str, Any], budget: int) -> None:
    for op in OPS:
        view = op.adapter.request_view(op.name, body, {"model": "m"})
        user, system, turns = view.conversation(budget)
        assert isinstance(user, str) and isinstance(system, str) and turns >= 0
        tools = view.tool_use()
        assert tools.tools >= 0 and tools.results >= 0 and tools.depth >= 0
