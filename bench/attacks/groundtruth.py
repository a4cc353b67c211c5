"""The mock toy model's true logits and output layer, to score an extraction against."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gateway.mock.generation import last_user_text, prompt_text
from gateway.mock.text import answer_text, tokenize
from gateway.mock.toymodel import toy_model


def true_relative_logits(prompt: str, token_ids: Sequence[int]) -> np.ndarray:
    """z_S - z_reference at the first output position of a one-message chat request with ``prompt``."""
    body = {"messages": [{"role": "user", "content": prompt}]}
    text = prompt_text(body)
    first = tokenize(answer_text(last_user_text(body) or text))[0]
    model = toy_model()
    logits = model.logits(text, 0, model.token_id(first))[list(token_ids)]
    return logits - logits[0]


def true_output_rows(token_ids: Sequence[int]) -> np.ndarray:
    """The output layer's rows for ``token_ids`` relative to the first (tokens x hidden)."""
    rows = toy_model().W[list(token_ids)]
    return rows - rows[0]


def hidden_size() -> int:
    return toy_model().hidden


def vocabulary() -> list[str]:
    return list(toy_model().vocab)
