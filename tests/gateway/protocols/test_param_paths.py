"""The field check names the exact place of a bad value, however deep (paths are made only on error)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import InvalidRequestError
from gateway.protocols.params import Param, check_value, json_kind, param

SHAPE = param(
    "object",
    fields={
        "messages": param("array", items=param("object", fields={"n": param("integer", minimum=1)})),
        "grid": param("array", items=param("array", items=param("number"))),
        "bias": param("object", values=param("number"), key_pattern=r"\d+"),
    },
)


@pytest.mark.parametrize(
    ("value", "where", "code"),
    [
        ({"messages": [{}, {"n": 1}, {"n": "2"}]}, "body.messages[2].n", "invalid_type"),
        ({"messages": [{"n": 0}]}, "body.messages[0].n", "integer_below_min_value"),
        ({"grid": [[1.0, 2], [3, True]]}, "body.grid[1][1]", "invalid_type"),
        ({"grid": [[1.0], "x"]}, "body.grid[1]", "invalid_type"),
        ({"bias": {"12": 1, "7": "up"}}, "body.bias.7", "invalid_type"),
        ({"bias": {"12": 1, "x7": 1}}, "body.bias", "invalid_value"),
        ({"messages": {"n": 1}}, "body.messages", "invalid_type"),
        ([], "body", "invalid_type"),
    ],
)
def test_a_bad_value_is_named_by_its_whole_path(value: Any, where: str, code: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check_value("body", value, SHAPE)
    assert caught.value.param == where
    assert caught.value.code == code
    assert f"'{where}'" in caught.value.message


def test_a_large_valid_value_passes() -> None:
    check_value("body", {"messages": [{"n": i + 1} for i in range(500)], "grid": [[1, 2.5]] * 50}, SHAPE)


def test_number_accepts_integers_but_never_booleans() -> None:
    number = param("number")
    assert number.accepts("integer") and number.accepts("number") and not number.accepts("boolean")
    check_value("x", 3, number)
    with pytest.raises(InvalidRequestError):
        check_value("x", True, number)
    assert not param("integer").accepts("number")


class _Text(str):
    pass


def test_subclasses_of_json_types_keep_their_kind() -> None:
    assert json_kind(_Text("a")) == "string"
    assert json_kind(True) == "boolean" and json_kind(1) == "integer" and json_kind(None) == "null"
    assert isinstance(SHAPE, Param)
