"""Validation of `model.pretrained`: a local weights file, never something to download.

timm's own `pretrained=True` fetches weights from the Hugging Face hub; rsearch never does
(trials run on nodes that may have no network, and a search must start from one known file).
So a boolean, a URL or a hub name is refused here, with the way to get a local file instead.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from rsearch.spec.names import timm_names

_DOWNLOAD_HINT = (
    "rsearch never downloads weights: fetch the file once (e.g. timm.create_model(NAME, "
    "pretrained=True) and torch.save(model.state_dict(), PATH)) and name its local path"
)
_HUB_PREFIXES = ("hf-hub:", "hf_hub:", "timm/")
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".tar")


def renamed_checkpoint(data: Any) -> Any:
    """A model section with the deprecated `checkpoint` key moved to `pretrained`.

    `model.checkpoint` was this field's name before fine-tuning knobs joined it; resolved
    specs of older runs still write `checkpoint: null`, which is dropped without a word.

    Raises:
        ValueError: both names are given.
    """
    if not isinstance(data, dict) or "checkpoint" not in data:
        return data
    data = dict(data)
    old = data.pop("checkpoint")
    if old is None:
        return data
    if data.get("pretrained") is not None:
        raise ValueError(
            "model.checkpoint is the old name of model.pretrained; give only pretrained"
        )
    warnings.warn(
        "model.checkpoint is deprecated and will be removed: rename it to model.pretrained",
        FutureWarning,
        stacklevel=2,
    )
    data["pretrained"] = old
    return data


def local_file(value: Any) -> Any:
    """The pretrained value as an absolute local path, or a ValueError saying what is wrong.

    The path is made absolute against the working directory when the recipe is first read,
    so every trial of a search opens the same file whatever directory it runs in.
    """
    if value is None or not isinstance(value, str | bool):
        return value  # pydantic's own type error
    if isinstance(value, bool):
        raise ValueError(
            f"model.pretrained names a local weights file, not {str(value).lower()}; "
            + _DOWNLOAD_HINT
        )
    if "://" in value:
        raise ValueError(f"model.pretrained {value!r} is a URL; {_DOWNLOAD_HINT}")
    path = Path(value).expanduser()
    if not path.exists() and _looks_like_hub_name(value):
        raise ValueError(
            f"model.pretrained {value!r} names timm's hub weights, not a local file; "
            + _DOWNLOAD_HINT
        )
    return str(path.absolute())


def _looks_like_hub_name(value: str) -> bool:
    if value.startswith(_HUB_PREFIXES):
        return True
    # "resnet50" or "resnet50.a1_in1k": a timm model (with a weights tag), no file by that name.
    if "/" in value or value.lower().endswith(_WEIGHT_SUFFIXES):
        return False
    return value.split(".", 1)[0] in timm_names().models
