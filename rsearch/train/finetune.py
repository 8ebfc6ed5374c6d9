"""Fine-tuning knobs: frozen stages (model.frozen_stages) and a lower backbone LR
(optim.backbone_lr_scale), each built on timm's own helpers.

Freezing uses timm.utils.freeze: parameters stop taking gradients and batch norms become
timm's FrozenBatchNorm2d, which always normalises with the pretrained running statistics (so
the training loop's model.train() cannot wake them). Frozen parameters are in no optimizer
group (timm's group builders skip parameters without gradients), so weight decay never
shrinks them; the EMA copy averages constant values. A resumed run rebuilds the model frozen
the same way before its checkpoint loads.
"""

from __future__ import annotations

from typing import Any

from timm.models.resnet import ResNet
from timm.optim import param_groups_layer_decay, param_groups_weight_decay
from timm.utils import freeze
from torch import nn

from rsearch.spec.recipe import OptimConfig
from rsearch.train.errors import TrainInputError

STEM = ("conv1", "bn1")
"""A timm ResNet's stem modules that hold weights (act1 and maxpool hold none)."""


def freeze_stages(model: nn.Module, stages: int | None, name: str) -> None:
    """Freeze a ResNet's stem and its first `stages` stages, in place (None: nothing).

    Raises:
        TrainInputError: the model is not a timm ResNet, or has fewer stages.
    """
    if stages is None:
        return
    if not isinstance(model, ResNet):
        raise TrainInputError(
            f"model.frozen_stages applies to the ResNet family (timm's ResNet class: resnet*, "
            f"resnext*, seresnet*, ...); {name!r} is a {type(model).__name__}: leave "
            "frozen_stages unset and lower its early layers' LR with optim.layer_decay instead"
        )
    count = len(model.feature_info) - 1  # feature_info[0] is the stem
    if stages > count:
        raise TrainInputError(f"model.frozen_stages is {stages} but {name!r} has {count} stages")
    stem = [m for m in STEM if isinstance(getattr(model, m, None), nn.Module)]
    freeze(model, stem + [f"layer{i}" for i in range(1, stages + 1)])


def backbone_groups(model: nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
    """timm's parameter groups with the backbone's LR scaled by optim.backbone_lr_scale.

    The groups are timm's (weight decay off for biases and norms, and layer_decay's per-layer
    `lr_scale` when set) split into the classifier's and the rest; the rest's lr_scale (1
    without layer_decay) is multiplied by backbone_lr_scale, which timm's LR schedules apply.
    The classifier's groups come first, so param_groups[0] carries optim.lr's schedule.
    """
    assert cfg.backbone_lr_scale is not None
    no_decay = getattr(model, "no_weight_decay", None)
    skip = set(no_decay()) if callable(no_decay) else set()
    if cfg.layer_decay is not None:
        groups = param_groups_layer_decay(
            model,
            weight_decay=cfg.weight_decay,
            no_weight_decay_list=skip,
            layer_decay=cfg.layer_decay,
        )
    else:
        groups = param_groups_weight_decay(
            model, weight_decay=cfg.weight_decay, no_weight_decay_list=skip
        )
    head_ids = {id(p) for p in _classifier(model).parameters()}
    heads, backbone = [], []
    for group in groups:
        params = list(group["params"])
        rest = {k: v for k, v in group.items() if k != "params"}
        scale = rest.pop("lr_scale", 1.0)
        head = [p for p in params if id(p) in head_ids]
        body = [p for p in params if id(p) not in head_ids]
        if head:
            heads.append({**rest, "params": head, "lr_scale": scale})
        if body:
            backbone.append({**rest, "params": body, "lr_scale": scale * cfg.backbone_lr_scale})
    if not heads:
        raise TrainInputError(
            "optim.backbone_lr_scale needs a classifier that trains; this model's is frozen "
            "or has no parameters"
        )
    return heads + backbone


def _classifier(model: nn.Module) -> nn.Module:
    get = getattr(model, "get_classifier", None)
    head = get() if callable(get) else None
    if not isinstance(head, nn.Module):
        raise TrainInputError(
            f"optim.backbone_lr_scale needs timm's get_classifier(); {type(model).__name__} "
            "has none"
        )
    return head
