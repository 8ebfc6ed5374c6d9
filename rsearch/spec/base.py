"""The strict pydantic base every spec model derives from."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A pydantic model that refuses unknown keys and validates on assignment.

    Field docstrings become descriptions, so `rsearch show` and the docs can explain each knob.
    """

    model_config = ConfigDict(
        extra="forbid",
        validate_assignment=True,
        use_attribute_docstrings=True,
        frozen=False,
    )
