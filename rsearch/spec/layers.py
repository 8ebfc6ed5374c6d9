"""Which normalisation and activation layers each timm model family accepts (no torch import).

A recipe may swap a model's norm layer (`model.norm_layer`, with `model.norm_groups` for the
grouped ones) and activation (`model.act_layer`) for one of timm's, by the names timm's
factories know (`timm.layers.get_norm_layer`, `get_norm_act_layer`, `get_act_layer`). Only
two families take them as constructor arguments in a form that swaps every layer:

- timm's ResNet (module `timm.models.resnet`: resnet*, resnext*, seresnet*, ...) builds a norm
  and a separate activation, so it takes a plain norm layer and any activation.
- ResNetV2 (module `timm.models.resnetv2`: resnetv2_*) builds fused norm + activation layers,
  so it also takes EvoNorm B*/S* (Liu et al., 2020) and filter response norm; EvoNorms and
  FRN-TLU carry their own nonlinearity, so an act_layer next to them would change nothing.

Which models belong to which family is read from timm's registry once per timm version and
cached beside the model names (rsearch.spec.names), so `rsearch validate` imports no torch.
The training core checks the built model's class again (rsearch.train.layers).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import metadata

from rsearch.spec.names import _write_atomically, cache_dir, suggest

FAMILY_MODULES = ("resnet", "resnetv2")
"""timm model modules whose models take norm_layer/act_layer (ResNet and ResNetV2 classes)."""

PLAIN_NORMS = ("batchnorm", "groupnorm", "groupnorm1", "layernorm2d", "rmsnorm2d")
"""Norms timm's get_norm_layer and get_norm_act_layer both build, with a separate activation."""

FUSED_NORMS_WITH_ACT = ("frn",)
"""Norm-act layers (ResNetV2 only) that apply the recipe's act_layer."""

SELF_ACTIVATED_NORMS = (
    "evonorm_b0",
    "evonorm_b1",
    "evonorm_b2",
    "evonorm_s0",
    "evonorm_s0a",
    "evonorm_s1",
    "evonorm_s1a",
    "evonorm_s2",
    "evonorm_s2a",
    "frntlu",
)
"""Norm-act layers (ResNetV2 only) with their own nonlinearity: act_layer does not apply."""

GROUPED_NORMS = (
    "groupnorm",
    "evonorm_s0",
    "evonorm_s0a",
    "evonorm_s1",
    "evonorm_s1a",
    "evonorm_s2",
    "evonorm_s2a",
)
"""Norms that split channels into model.norm_groups groups (timm's default: 32)."""

NORMS_BY_FAMILY: dict[str, tuple[str, ...]] = {
    "resnet": PLAIN_NORMS,
    "resnetv2": PLAIN_NORMS + FUSED_NORMS_WITH_ACT + SELF_ACTIVATED_NORMS,
}
"""model.norm_layer choices each family builds and trains (measured with timm 1.0.31)."""

ALL_NORMS = NORMS_BY_FAMILY["resnetv2"]

ACTIVATIONS = (
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "celu",
    "selu",
    "prelu",
    "silu",
    "swish",
    "mish",
    "gelu",
    "gelu_tanh",
    "quick_gelu",
    "hard_swish",
    "hard_sigmoid",
    "hard_mish",
    "tanh",
    "sigmoid",
)
"""model.act_layer choices: timm's get_act_layer names that build into both families."""

OWN_SELF_ACTIVATED_NORM: dict[str, str] = {
    "resnetv2_50d_evos": "evonorm_s0",
    "resnetv2_50d_frn": "frntlu",
}
"""ResNetV2 models whose own norm layer (norm_layer unset) has its own nonlinearity."""


@lru_cache(maxsize=1)
def model_families() -> dict[str, str]:
    """Model name -> family ('resnet' or 'resnetv2') of the installed timm, cached per version."""
    path = cache_dir() / f"timm-{metadata.version('timm')}-layer-families.json"
    try:
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            return {str(k): str(v) for k, v in data.items()}
    except (OSError, ValueError):
        pass
    import timm  # deferred: seconds to import, needed once per timm version

    families = {
        str(name): module for module in FAMILY_MODULES for name in timm.list_models(module=module)
    }
    _write_atomically(path, json.dumps(families, sort_keys=True))
    return families


def family_of(model_name: str) -> str | None:
    """The norm/act family of a timm model name (a weight tag after '.' ignored), or None."""
    return model_families().get(model_name.split(".", 1)[0])


def check_norm_name(norm: str | None) -> str | None:
    """Return norm when some family accepts it; raise ValueError naming the closest otherwise."""
    return _known("norm layer", norm, list(ALL_NORMS))


def check_act_name(act: str | None) -> str | None:
    """Return act when it is a known activation; raise ValueError naming the closest otherwise."""
    return _known("activation", act, list(ACTIVATIONS))


def _known(kind: str, name: str | None, options: list[str]) -> str | None:
    if name is not None and name not in options:
        hint = suggest(name, options)
        raise ValueError(f"unknown {kind} {name!r}{hint}; choose one of {options}")
    return name


def norm_problem(model_name: str, norm: str | None) -> str | None:
    """Why model_name cannot take norm as model.norm_layer (None when it can)."""
    if norm is None:
        return None
    family = family_of(model_name)
    if family is None:
        return (
            f"{model_name!r} does not take a norm_layer; timm's ResNet (resnet*, resnext*, ...) "
            "and ResNetV2 (resnetv2_*) models do"
        )
    if norm not in NORMS_BY_FAMILY[family]:
        return (
            f"{norm!r} is a fused norm-activation layer that only ResNetV2 models (resnetv2_*) "
            f"take; {model_name!r} accepts {list(NORMS_BY_FAMILY[family])}"
        )
    return None


def act_problem(model_name: str, norm: str | None, act: str | None) -> str | None:
    """Why model_name with norm cannot take act as model.act_layer (None when it can)."""
    if act is None:
        return None
    if family_of(model_name) is None:
        return (
            f"{model_name!r} does not take an act_layer; timm's ResNet (resnet*, resnext*, ...) "
            "and ResNetV2 (resnetv2_*) models do"
        )
    effective = norm or OWN_SELF_ACTIVATED_NORM.get(model_name.split(".", 1)[0])
    if effective in SELF_ACTIVATED_NORMS:
        return (
            f"the norm layer {effective!r} has its own nonlinearity, so act_layer would change "
            "nothing; leave act_layer unset, or use it with "
            f"{list(PLAIN_NORMS + FUSED_NORMS_WITH_ACT)}"
        )
    return None


def groups_problem(norm: str | None, groups: int | None) -> str | None:
    """Why norm_groups cannot go with norm (None when it can)."""
    if groups is not None and norm not in GROUPED_NORMS:
        return f"norm_groups applies to the grouped norm layers {list(GROUPED_NORMS)}, not {norm!r}"
    return None
