"""The model section of a recipe: a timm model, its scaling knobs and swapped layers.

`architecture` names what shapes the network (the key of cached speeds and costs).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from rsearch.spec import layers, pretrained_spec
from rsearch.spec.base import Strict
from rsearch.spec.names import check_model_name


class ModelConfig(Strict):
    """Architecture: a timm model and the ResNet-family scaling knobs."""

    name: str = "resnet18"
    """timm model name (`timm.list_models()`), built with pretrained=False."""
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    """Dropout before the classifier."""
    drop_path_rate: float = Field(0.0, ge=0.0, lt=1.0)
    """Stochastic depth: the drop probability of the last block (linear in depth)."""
    small_stem: bool = False
    """Replace the stem with a 3x3 stride-1 conv and no max-pool (for 32-64 px inputs)."""
    depth_multiplier: float = Field(1.0, gt=0.0, le=8.0)
    """Multiplies the blocks per stage (ResNet family; rounded up, at least 1 a stage)."""
    width_multiplier: float = Field(1.0, gt=0.0, le=8.0)
    """Multiplies the channels of every stage (ResNet family)."""
    layers: list[int] | None = None
    """Explicit blocks per stage, e.g. [3, 24, 36, 3] (ResNet-RS-200); overrides depth."""
    pretrained: str | None = None
    """Local weights file to start from (fine-tuning): a timm checkpoint (a state dict, or one
    under `state_dict`/`state_dict_ema`/`model`) or an rsearch checkpoint (file or directory).
    Nothing is downloaded. A classifier for another class count is re-made. A relative path
    is made absolute against the working directory when the recipe is read."""
    frozen_stages: int | None = Field(None, ge=0, le=4)
    """Fine-tuning: freeze the stem (0) and the first N stages (1-4) of a ResNet-family model:
    no gradients, batch norm on its running statistics; null freezes nothing."""
    patch_size: int | None = Field(None, ge=1, le=256)
    """Patch size of a ViT or MLP-Mixer (timm's vision_transformer and mlp_mixer families);
    defaults to the model's own. Must divide every image size of the run (4 px at 32 px)."""
    norm_layer: str | None = None
    """timm norm layer replacing the model's own (batchnorm, groupnorm, evonorm_s0, ...; see
    rsearch.spec.layers for which model families take which); null keeps the model's."""
    norm_groups: int | None = Field(None, ge=1)
    """Groups of a grouped norm_layer (groupnorm, evonorm_s*); null is timm's 32."""
    act_layer: str | None = None
    """timm activation replacing the model's own (relu, silu, gelu, mish, ...); null keeps it."""

    @model_validator(mode="before")
    @classmethod
    def _renamed_checkpoint(cls, data: Any) -> Any:
        return pretrained_spec.renamed_checkpoint(data)

    @field_validator("pretrained", mode="before")
    @classmethod
    def _local_file(cls, value: Any) -> Any:
        return pretrained_spec.local_file(value)

    @field_validator("norm_layer")
    @classmethod
    def _accepted_norm(cls, norm: str | None, info: ValidationInfo) -> str | None:
        layers.check_norm_name(norm)
        problem = layers.norm_problem(info.data["name"], norm) if "name" in info.data else None
        if problem:
            raise ValueError(problem)
        return norm

    @field_validator("norm_groups")
    @classmethod
    def _grouped_norm(cls, groups: int | None, info: ValidationInfo) -> int | None:
        problem = layers.groups_problem(info.data.get("norm_layer"), groups)
        if problem and "norm_layer" in info.data:
            raise ValueError(problem)
        return groups

    @field_validator("act_layer")
    @classmethod
    def _accepted_act(cls, act: str | None, info: ValidationInfo) -> str | None:
        layers.check_act_name(act)
        if "name" in info.data and "norm_layer" in info.data:
            problem = layers.act_problem(info.data["name"], info.data["norm_layer"], act)
            if problem:
                raise ValueError(problem)
        return act

    @field_validator("name")
    @classmethod
    def _known_model(cls, name: str) -> str:
        return check_model_name(name)

    @field_validator("layers")
    @classmethod
    def _positive_layers(cls, layers: list[int] | None) -> list[int] | None:
        if layers is not None and (not layers or any(n < 1 for n in layers)):
            raise ValueError("layers must list at least one stage, each with >= 1 block")
        return layers


ARCHITECTURE = (
    "name",
    "small_stem",
    "depth_multiplier",
    "width_multiplier",
    "layers",
)
"""The model fields that shape the architecture. Dropout and stochastic depth scale
activations (no multiply-add is counted for them) and weights do not change a count."""


LAYER_FIELDS = ("patch_size", "norm_layer", "norm_groups", "act_layer")
"""Model fields that swap layers or patches: part of the architecture when set (unset, they
leave the keys of speeds and costs recorded before they existed unchanged)."""


def architecture(model: ModelConfig) -> str:
    """The fields of a model section that shape its architecture, as JSON."""
    fields = model.model_dump(mode="json", include=set(ARCHITECTURE + LAYER_FIELDS))
    for name in LAYER_FIELDS:
        if fields[name] is None:
            del fields[name]
    return json.dumps(fields, sort_keys=True)
