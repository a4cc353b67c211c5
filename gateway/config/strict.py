"""The base of every config model: unknown keys are refused and a loaded config is immutable."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A frozen model that forbids unknown keys, so a typo is an error with its path."""

    model_config = ConfigDict(extra="forbid", frozen=True)
