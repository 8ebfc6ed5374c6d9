"""timm.create_model with user-facing errors: every model of a run is created here."""

from __future__ import annotations

from typing import Any

import timm
from torch import nn

from rsearch.spec.names import suggest
from rsearch.train.errors import TrainInputError


def create(name: str, **kwargs: Any) -> nn.Module:
    """timm.create_model(name, pretrained=False, **kwargs) with user-facing errors."""
    if not timm.is_model(name):
        raise TrainInputError(f"timm has no model {name!r}{suggest(name, timm.list_models())}")
    try:
        return timm.create_model(name, pretrained=False, **kwargs)
    except TypeError as e:  # a keyword the model's constructor does not take
        raise TrainInputError(
            f"timm model {name!r} cannot be built with {sorted(kwargs)}: {e}"
        ) from e
